#!/usr/bin/env python3
"""Benchmark the built-in scan detector's input paths: packets/s and firewall log lines/s.

    python bench/bench_scan.py [--packets 200000] [--json]

Packets: the real captures of tests/data/captures (nmap SYN/FIN/NULL/XMAS/UDP scans, an ICMP
sweep, benign traffic) repeated to ``--packets`` frames with increasing timestamps, written once
as classic pcap and once as pcapng (by dpkt's writers), then fed to ``PcapStream`` in 64 KiB
chunks as ``snort-bridge scan --pcap -`` reads a pipe: records -> ``probe_from_frame`` ->
``ScanDetector.feed``. Lines: RouterOS firewall log lines as routeros-sim writes them for the
same scans (new-connection and stealth rules), through ``parse_firewall_line`` ->
``probe_from_firewall_event`` -> ``ScanDetector.feed``. Each figure is the best of 3 passes.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dpkt  # noqa: E402

from bridge.scan.detector import ScanDetector  # noqa: E402
from bridge.scan.packet_source import PcapStream  # noqa: E402
from bridge.scan.probes import probe_from_firewall_event, probe_from_frame  # noqa: E402
from bridge.scan.routeros_log import parse_firewall_line  # noqa: E402
from responder.sim.router.firewall import Firewall, decode_frame  # noqa: E402
from tzsp.capture_files import read_capture  # noqa: E402

CAPTURES = Path(__file__).resolve().parent.parent / "tests" / "data" / "captures"
CHUNK = 1 << 16


def frames(count: int) -> list:
    base = []
    for path in sorted(CAPTURES.iterdir()):
        _, records = read_capture(path)
        base += [frame for _, frame in records]
    return [(1_700_000_000.0 + i * 1e-4, base[i % len(base)]) for i in range(count)]


def written(packets: list, pcapng: bool) -> bytes:
    out = io.BytesIO()
    writer = dpkt.pcapng.Writer(out) if pcapng else dpkt.pcap.Writer(out)
    for stamp, frame in packets:
        writer.writepkt(frame, ts=stamp)
    return out.getvalue()


def stream_rate(data: bytes, packets: int) -> float:
    best = 0.0
    for _ in range(3):
        stream, detector = PcapStream(), ScanDetector()
        started = time.perf_counter()
        for start in range(0, len(data), CHUNK):
            for stamp, frame in stream.feed(data[start : start + CHUNK]):
                probe = probe_from_frame(stream.linktype, frame, stamp)
                if probe is not None:
                    detector.feed(probe)
        elapsed = time.perf_counter() - started
        assert stream.records == packets and detector.detections > 0
        best = max(best, packets / elapsed)
    return best


def log_lines(packets: list) -> list:
    """What the provisioned rules log for these packets (routeros-sim's firewall, no limit)."""
    from responder.sim.router.firewall import FilterRule, parse_tcp_flags

    firewall = Firewall()
    firewall.rules = [
        FilterRule(1, "input", "log", connection_state=("new",), log_prefix="tzsp-ips"),
        FilterRule(
            2,
            "input",
            "log",
            protocol=6,
            connection_state=("invalid",),
            tcp_flags=parse_tcp_flags("!ack,!rst"),
            log_prefix="tzsp-ips-stealth",
        ),
    ]
    lines = []
    for stamp, frame in packets:
        packet = decode_frame(frame)
        if packet is not None:
            verdict = firewall.handle(packet, stamp, "v7", lambda *_: False)
            lines += ["firewall,info " + message for message in verdict.messages]
    return lines


def line_rate(lines: list) -> float:
    best = 0.0
    for _ in range(3):
        detector = ScanDetector()
        started = time.perf_counter()
        for index, line in enumerate(lines):
            probe = probe_from_firewall_event(parse_firewall_line(line), index * 1e-3)
            if probe is not None:
                detector.feed(probe)
        best = max(best, len(lines) / (time.perf_counter() - started))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    packets = frames(args.packets)
    lines = log_lines(packets[: min(len(packets), 50_000)])
    result = {
        "machine": f"{platform.machine()} {platform.python_version()}",
        "packets": args.packets,
        "pcap_packets_per_s": round(stream_rate(written(packets, False), args.packets)),
        "pcapng_packets_per_s": round(stream_rate(written(packets, True), args.packets)),
        "firewall_lines": len(lines),
        "firewall_lines_per_s": round(line_rate(lines)),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>22}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
