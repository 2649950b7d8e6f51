"""`snort-bridge scan --pcap FILE|-`: detect port scans in a packet stream (tzspd's standard
output, or a file) and block the scanners like the service does, or print what would be blocked.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time

from bridge.pipeline import Pipeline, build_policy
from bridge.scan.detector import ScanDetector
from bridge.service.parts import make_responder, protected_addresses
from bridge.service.stderr_log import setup_logging

log = logging.getLogger("snort-bridge")


class _Interrupted(Exception):
    pass


def run_scan(args: argparse.Namespace) -> int:
    from bridge.cli import EXIT_FAILED, EXIT_OK, load_for
    from bridge.config import ScanConfig
    from bridge.scan.packet_source import PcapStream, PcapStreamError, stream_probes

    setup_logging(verbose=args.verbose)
    config, note = load_for(args, optional=True)
    if note:
        log.info("%s", note)
    scan = config.scan or ScanConfig()
    detector = ScanDetector(
        ports=scan.ports, window=scan.window, low_port_weight=scan.low_port_weight, source_name=f"pcap:{args.pcap}"
    )
    responder = None if args.dry_run else make_responder(config)
    pipeline = Pipeline(
        build_policy(config, protect=protected_addresses(config)), responder, detector, routers=len(config.routers)
    )
    if responder is not None:
        pipeline.resync(responder.ledger, time.time())
    else:
        log.info(
            "%s: detections are printed, nothing is blocked",
            "--dry-run" if args.dry_run else "no [[routers]] configured",
        )

    def interrupted(*_: object) -> None:
        raise _Interrupted()

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    packets = 0
    stream = PcapStream()
    status = EXIT_OK
    blocked = []
    try:
        fd = sys.stdin.fileno() if args.pcap == "-" else os.open(args.pcap, os.O_RDONLY)
    except OSError as exc:
        log.error("cannot read %s: %s", args.pcap, exc.strerror or exc)
        return EXIT_FAILED
    writer = None
    if args.alerts:
        from bridge.scan.alert_out import AlertFileWriter  # a sensor: detections go to a file rsyslog forwards

        try:
            writer = AlertFileWriter(args.alerts)
        except OSError as exc:
            log.error("cannot write %s: %s", args.alerts, exc.strerror or exc)
            return EXIT_FAILED
    try:
        for probe in stream_probes(fd, stream):
            packets += 1
            if probe is None:
                continue
            decision = pipeline.probe(probe)
            if decision is None:
                continue
            if writer is not None:
                writer.write(decision.alert)
            if decision.action == "block":
                blocked.append(decision.target)
            if responder is None:
                alert = decision.alert
                verdict = f"would block {decision.target}" if decision.action == "block" else "not blocking"
                print(f"SCAN {alert.src} -> {alert.dst}: {alert.msg} => {verdict}: {decision.why}", flush=True)
        if stream.pending:
            log.warning("the stream ended inside a packet record (%d bytes left over)", stream.pending)
    except PcapStreamError as exc:
        log.error("%s: %s", args.pcap, exc)
        status = EXIT_FAILED
    except _Interrupted:
        log.info("interrupted")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if args.pcap != "-":
            os.close(fd)
        if writer is not None:
            writer.close()
        if responder is not None:
            for address in blocked:  # give the routers a moment, so a one-shot run reports what happened
                responder.wait_settled(address, timeout=args.wait)
            pending = sum(s.pending for s in responder.status())
            responder.stop(timeout=5.0)
            if pending:
                log.warning("%d block(s) still pending, kept in the ledger for `snort-bridge run`", pending)
    counts = pipeline.counts
    log.info(
        "%d packets, %d probes, %d scans detected, %d blocks", packets, counts.probes, counts.detections, counts.blocks
    )
    return status


def register(subparsers: argparse._SubParsersAction) -> None:
    scan = subparsers.add_parser(
        "scan",
        help="detect port scans in a packet stream (--pcap FILE|-)",
        description="Read a pcap stream (tzspd's standard output, or under `tzspd --exec`) and detect port "
        "scans: distinct destination ports per source within [scan] window. Detections go through the "
        "policy and are blocked on the configured routers; without routers, or with --dry-run, they are printed.",
    )
    scan.add_argument("--pcap", required=True, metavar="FILE|-", help="pcap or pcapng file, or - for standard input")
    scan.add_argument("--dry-run", action="store_true", help="print detections and decisions, block nothing")
    scan.add_argument(
        "--alerts",
        metavar="FILE",
        help="also append each detection to FILE as a Snort 3 alert_json line (a sensor whose "
        "alerts rsyslog forwards to the central snort-bridge run)",
    )
    scan.add_argument(
        "--wait",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="at the end of the stream, wait this long for the routers to apply new blocks (default 10)",
    )
    scan.add_argument("-v", "--verbose", action="store_true", help="also log decisions that do not block")
    scan.set_defaults(func=run_scan)
