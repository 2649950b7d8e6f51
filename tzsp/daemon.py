"""tzspd: receive TZSP from a MikroTik router and write a libpcap stream for Snort or tcpdump.

    tzspd --allow 192.0.2.1/32 | snort -c snort.lua -r /dev/stdin --daq-batch-size 1
    tzspd --allow 192.0.2.1/32 --exec 'snort -c snort.lua -r /dev/stdin --daq-batch-size 1'

This module is main and the event loop (signals, timers, shutdown); the command line (the
parser and its checks) is tzsp.daemon_options, the receive path tzsp.receiver, the outputs
tzsp.output (its consumer processes tzsp.consumer), the counters tzsp.stats.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import sys
import time
from dataclasses import dataclass

from plumbing.sdnotify import Notifier

from .consumer import Consumer
from .daemon_options import build_parser, check_arguments
from .fanout import record_splitter
from .fdwrite import enlarge_pipe
from .linktypes import linktype_name
from .output import ExecSink, OutputError, ReaderGone, RotatingFileSink, StreamSink
from .pcap import global_header
from .receiver import AllowList, Policy, Receiver, open_socket
from .stats import Counters, format_json, format_text

log = logging.getLogger("tzspd")

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE = 0, 1, 2
CONSUMER_PLACEHOLDER = "{consumer}"  # in --exec: the consumer's number, 1..N
SHUTDOWN_DRAIN_FLUSHES = 64
WAIT_SLICE = 0.05  # longest blocking receive: how late timers and an ill-timed signal are seen  # on SIGTERM, take at most this many full buffers from the socket


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = "tzspd: "
        if record.levelno >= logging.ERROR:
            prefix += "error: "
        elif record.levelno >= logging.WARNING:
            prefix += "warning: "
        return prefix + record.getMessage()


def setup_logging(quiet: bool, verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.ERROR if quiet else logging.DEBUG if verbose else logging.INFO)


@dataclass
class Control:
    """What signal handlers ask the loop to do (they only set flags; the loop acts)."""

    stop: bool = False
    report: bool = False
    reload: bool = False


def install_signals(control: Control) -> None:
    """Handlers for SIGINT/SIGTERM (stop), SIGUSR1 (report) and SIGHUP (reload the --exec consumers). Python installs them without
    SA_RESTART, so a signal interrupts the blocking receive (EINTR) and the loop sees the flag
    at once; one that lands just before the receive begins waits at most WAIT_SLICE."""

    def stop(_signum, _frame):
        control.stop = True

    def report(_signum, _frame):
        control.report = True

    def reload(_signum, _frame):
        control.reload = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGUSR1, report)
    signal.signal(signal.SIGHUP, reload)


def _label(index: int, count: int) -> str:
    return f"{index + 1}/{count}" if count > 1 else ""


def make_sink(args: argparse.Namespace, header: bytes, stats: Counters):
    if args.exec_command is not None:
        argv = shlex.split(args.exec_command)
        consumers = [
            Consumer(
                [part.replace(CONSUMER_PLACEHOLDER, str(i + 1)) for part in argv],
                header,
                stats,
                args.exec_buffer,
                backoff=args.exec_backoff,
                label=_label(i, args.fanout),
                env=dict(os.environ, TZSPD_CONSUMER=str(i + 1), TZSPD_CONSUMERS=str(args.fanout)),
            )
            for i in range(args.fanout)
        ]
        return ExecSink(consumers, record_splitter(args.linktype, args.fanout))
    if args.rotate_size is not None or args.rotate_interval is not None:
        size = None if args.rotate_size is None else max(1, int(args.rotate_size * 1_000_000))
        return RotatingFileSink(args.output, header, stats, size, args.rotate_interval)
    if args.output == "-":
        if os.isatty(1):
            raise OutputError("refusing to write pcap to a terminal: pipe it (| tcpdump -n -r -) or use -o FILE")
        enlarge_pipe(1)
        return StreamSink(1, header, stats)
    try:
        return StreamSink.open_file(args.output, header, stats)
    except OSError as error:
        raise OutputError(f"cannot open {args.output}: {error.strerror or error}") from None


class Reporter:
    def __init__(self, stats: Counters, as_json: bool):
        self.stats = stats
        self.as_json = as_json

    def __call__(self) -> None:
        snapshot = self.stats.snapshot()
        line = format_json(snapshot) if self.as_json else "tzspd: stats: " + format_text(snapshot)
        try:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        except OSError:
            pass


class Periodic:
    """Run ``action`` every ``interval`` seconds of the loop's monotonic clock."""

    def __init__(self, interval: float, action, now: float):
        self.interval = interval
        self.action = action
        self.next = now + interval

    def due(self, now: float) -> float:
        """Run the action if its time has come; returns seconds until the next run."""
        if now >= self.next:
            self.action()
            self.next = max(self.next + self.interval, now + self.interval / 2)
        return self.next - now


def serve(receiver: Receiver, sink, control: Control, report, timers=()) -> None:
    """The event loop: wait for datagrams inside the receive call itself (no poll), wake at
    least every WAIT_SLICE for timers, signals and the consumers; drain; report; stop."""
    receiver.wait_at_most(WAIT_SLICE)
    direct = getattr(sink, "direct_fd", None) is not None
    next_housekeeping = 0.0
    while not control.stop:
        if direct:  # stdout or one file: the batcher writes by itself
            receiver.pump(sink, WAIT_SLICE)
        else:
            fds = getattr(sink, "direct_fds", None)  # --exec consumers all running: the same
            if fds:
                receiver.pump_consumers(sink, fds, WAIT_SLICE)
            else:  # rotation, or a consumer restarting: Python writes (and holds)
                receiver.drain(sink, wait=True)
        now = time.monotonic()
        if now >= next_housekeeping:
            waits = [timer.due(now) for timer in timers]
            wanted = sink.tick(now)
            if wanted is not None:
                waits.append(wanted)
            next_housekeeping = now + max(0.0, min(waits, default=WAIT_SLICE))
        if control.report:
            control.report = False
            report()
        if control.reload:
            control.reload = False
            reload = getattr(sink, "reload", None)
            if reload is not None:
                reload()
                next_housekeeping = 0.0
            else:
                log.info("SIGHUP: nothing to reload without --exec")
    receiver.drain(sink, max_flushes=SHUTDOWN_DRAIN_FLUSHES)


def start_metrics(listen: str, stats: Counters, sink):
    """--metrics: the HTTP server on its own threads (OSError when it cannot listen)."""
    from .metrics import start_metrics_server  # prometheus_client is loaded only when asked for

    server = start_metrics_server(listen, stats, sink)
    log.info("metrics on http://%s:%d/metrics", *server.address[:2])
    return server


def main(argv: list | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    setup_logging(args.quiet, args.verbose)
    try:
        allow = AllowList.parse(args.allow) if args.allow else None
    except ValueError as error:
        parser.error(str(error))
    stats = Counters()
    report = Reporter(stats, args.stats_json)
    policy = Policy(linktype=args.linktype, nanosecond=args.nanosecond, snaplen=args.snaplen)
    header = global_header(policy.linktype, policy.nanosecond, policy.snaplen)

    try:
        sock, info = open_socket(args.listen, args.port, args.rcvbuf)
    except OSError as error:
        log.error("cannot listen on [%s]:%d: %s", args.listen, args.port, error.strerror or error)
        return EXIT_USAGE
    try:
        sink = make_sink(args, header, stats)
    except OutputError as error:
        log.error("%s", error)
        sock.close()
        return EXIT_USAGE

    # Handlers first: "listening on" tells whoever watches the log that signals are answered now.
    control = Control()
    install_signals(control)
    log.info(
        "listening on [%s]:%d, link type %s (%d), writing to %s",
        info.bound[0],
        info.bound[1],
        linktype_name(policy.linktype),
        policy.linktype,
        args.exec_command or args.output,
    )
    if info.rcvbuf_granted < info.rcvbuf_requested:
        log.warning(
            "receive buffer is %d bytes, %d requested: raise net.core.rmem_max "
            "(sysctl -w net.core.rmem_max=%d) or give tzspd CAP_NET_ADMIN, or bursts will be dropped",
            info.rcvbuf_granted,
            info.rcvbuf_requested,
            info.rcvbuf_requested,
        )
    if allow is None:
        log.warning(
            "no --allow given: accepting TZSP from any sender; spoofed datagrams "
            "could make the IPS block whom the spoofer chooses"
        )
    if not info.kernel_timestamps:
        log.info("kernel receive timestamps unavailable; using the time each batch is read")

    receiver = Receiver(sock, policy, allow, stats, kernel_timestamps=info.kernel_timestamps)
    notifier = Notifier()
    now = time.monotonic()
    timers = []
    if args.stats_interval:
        timers.append(Periodic(args.stats_interval, report, now))
    if notifier.watchdog_interval:
        timers.append(
            Periodic(
                notifier.watchdog_interval,
                lambda: notifier.notify("WATCHDOG=1", f"STATUS=received {stats.received}, written {stats.written}"),
                now,
            )
        )
    status = EXIT_OK
    metrics = None
    try:
        if args.metrics:
            metrics = start_metrics(args.metrics, stats, sink)
        sink.start()
        notifier.ready(f"listening on port {info.bound[1]}")
        serve(receiver, sink, control, report, timers)
        notifier.stopping()
    except ReaderGone as error:
        log.error("%s; stopping", error)
        status = EXIT_RUNTIME
    except OSError as error:  # e.g. the consumer command cannot be run
        log.error("%s", error)
        status = EXIT_USAGE if stats.received == 0 else EXIT_RUNTIME
    except OutputError as error:
        log.error("%s; stopping", error)
        status = EXIT_RUNTIME
    finally:
        if metrics is not None:
            metrics.stop()
        try:
            sink.close()
        except (OSError, OutputError) as error:
            log.error("closing the output: %s", error)
        sock.close()
        if not args.quiet:
            report()
    return status


if __name__ == "__main__":
    sys.exit(main())
