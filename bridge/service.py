"""`snort-bridge run` (the service) and `snort-bridge scan --pcap FILE|-`.

run: a follower thread reads the alert files (and [scan] files of RouterOS firewall log lines),
a listener thread receives firewall log lines by UDP syslog; both only put what they read on one
queue. The main thread takes from it and does all the work (bridge.pipeline), because the policy
is not thread-safe, then commits each followed line. The responder's workers (one per router) do
the SSH. Signals only set flags: SIGHUP re-reads the configuration (a bad one is refused and the
running one kept), SIGTERM/SIGINT stop cleanly (what was read is handled, positions saved,
pending blocks stay in the ledger for the next start). systemd: READY once everything is started,
WATCHDOG from the processing loop, STATUS with the counts.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import ipaddress
import logging
import os
import queue
import signal
import sys
import threading
import time
from typing import Dict, List, Optional, Tuple

from bridge.config import Config, ConfigError, load_config
from bridge.events import Origin
from bridge.follow import Follower, Line
from bridge.hostaddrs import host_addresses, router_addresses
from bridge.pipeline import Pipeline, build_policy
from bridge.scan import ScanDetector
from bridge.syslog_listener import SyslogListener
from responder.feed import NO_FEED, Feed
from tzsp.receiver import AllowList
from tzsp.sdnotify import Notifier

log = logging.getLogger("snort-bridge")

QUEUE_SIZE = 10_000
PASS_MAX = 64  # queued inputs (a followed batch is up to 256 lines) per pass: one ledger commit
BATCHES_IN_FLIGHT = 16  # batches of followed lines read ahead of the processing loop
TICK = 0.2  # seconds: how often the loop looks at signals, the watchdog and the clock
STATUS_INTERVAL = 10.0
RESYNC_INTERVAL = 30.0  # seconds between comparisons of the policy's blocks with the ledger
FIREWALL = "firewall"  # the "format" of a followed file of RouterOS firewall log lines


# -- logging to stderr (journald) ------------------------------------------------------------


class _Formatter(logging.Formatter):
    """``snort-bridge: message``; under journald with the syslog level prefix it understands."""

    _LEVELS = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}

    def __init__(self, journal: bool):
        super().__init__()
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        if self.journal:
            return f"<{self._LEVELS.get(record.levelno, 6)}>{text}"
        label = "" if record.levelno == logging.INFO else record.levelname.lower() + ": "
        return f"snort-bridge: {label}{text}"


class _PassHandler(logging.StreamHandler):
    """The processing loop's INFO lines go into a buffer it flushes after each pass and each
    tick (and logging at exit): a storm's thousands of BLOCK lines cost a few writes, not one
    each. Warnings, errors and other threads' lines are written at once, as usual."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + self.terminator)
            if record.levelno >= logging.WARNING or record.thread != threading.main_thread().ident:
                self.stream.flush()
        except Exception:  # noqa: BLE001 -- as StreamHandler does
            self.handleError(record)


def flush_log() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()


def setup_logging(verbose: bool = False, quiet: bool = False, buffered: bool = False) -> None:
    if buffered:
        stream = open(sys.stderr.fileno(), "w", buffering=1 << 16, closefd=False, errors="backslashreplace")
        handler: logging.StreamHandler = _PassHandler(stream)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(journal=bool(os.environ.get("JOURNAL_STREAM"))))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    for noisy in ("paramiko", "watchdog"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# -- the service --------------------------------------------------------------------------------


def followed_sources(config: Config) -> Dict[str, str]:
    """Absolute path -> alert format, or FIREWALL for [scan] files."""
    sources = {os.path.abspath(a.path): a.format for a in config.alerts}
    if config.scan is not None:
        for path in config.scan.files:
            sources.setdefault(os.path.abspath(path), FIREWALL)
    return sources


def make_detector(config: Config) -> Optional[ScanDetector]:
    scan = config.scan
    if scan is None:
        return None
    return ScanDetector(ports=scan.ports, window=scan.window, low_port_weight=scan.low_port_weight)


def make_responder(config: Config, feed: Feed = NO_FEED):
    if not config.routers:
        return None
    from responder.responder import Responder  # paramiko is only loaded when routers are configured

    responder = Responder(config, feed=feed)
    responder.start()
    return responder


def protected_addresses(config: Config) -> list:
    return [*router_addresses(config.routers), *host_addresses()]


def syslog_senders(config: Config) -> AllowList:
    """Who may send firewall log lines: scan.allow, else the configured routers' addresses."""
    assert config.scan is not None
    networks = tuple(config.scan.allow) or tuple(
        ipaddress.ip_network(address) for address in router_addresses(config.routers))
    if not networks:
        log.warning("scan.syslog: no router address and no scan.allow: every firewall log line will be ignored")
    return AllowList(networks)


class Service:
    def __init__(self, config: Config, *, notifier: Optional[Notifier] = None):
        _check_runnable(config)
        self.config = config
        self.notifier = notifier or Notifier()
        self.queue: "queue.Queue[tuple]" = queue.Queue(QUEUE_SIZE)
        self._batches_in_flight = threading.Semaphore(BATCHES_IN_FLIGHT)  # follower -> loop
        self._matched_formats: Dict[str, str] = {}
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._report = threading.Event()
        self.fatal: Optional[str] = None
        self.responder = None
        self.follower: Optional[Follower] = None
        self._follow_thread: Optional[threading.Thread] = None
        self._follow_stop = threading.Event()
        self.listener: Optional[SyslogListener] = None
        self.sources: Dict[str, str] = {}
        self.dropped_datagrams = 0
        self.pipeline: Optional[Pipeline] = None
        self.feed = Feed()  # what happened: metrics, notifications and the status page subscribe
        self.web = None  # [http]: /metrics, /health and the status page (bridge.web)
        self.notifications = None  # bridge.notify: [notify] through apprise

    # lifecycle

    def start(self) -> None:
        config = self.config
        from bridge.web import start_web  # prometheus_client is loaded only with [http]

        self.web = start_web(self, config)  # first: it sees every event from the start
        try:
            self.notifications = _build_notifications(config, self._pending_blocks)
            if self.notifications is not None:
                self.notifications.start(self.feed)  # before the routers: a router down at start is told
            self.responder = make_responder(config, self.feed)
            policy = build_policy(config, protect=protected_addresses(config))
            self.pipeline = Pipeline(policy, self.responder, make_detector(config), routers=len(config.routers),
                                     feed=self.feed)
            if self.responder is not None:
                self.pipeline.resync(self.responder.ledger, time.time())
            self._start_listener(config)
            self._start_follower(config)
        except BaseException:
            self._stop_responder()
            self._stop_notifications()
            self._stop_web()
            raise
        log.info("started: following %d file(s), %s, %s; %d block(s) in force",
                 len(self.sources), self._listening(), self._routers_text(), len(self.pipeline.noted))
        if not config.routers:
            log.warning("no [[routers]] configured: decisions are logged, nothing is blocked")
        self.notifier.ready(self.status_text())

    def request_stop(self, *_: object) -> None:
        self._stop.set()

    def request_reload(self, *_: object) -> None:
        self._reload.set()

    def request_report(self, *_: object) -> None:
        self._report.set()

    def run(self) -> int:
        """The processing loop, until a stop is asked for; then a clean stop. Returns the exit status."""
        assert self.pipeline is not None
        interval = self.notifier.watchdog_interval
        last_ping = last_status = last_resync = time.monotonic()
        try:
            while not self._stop.is_set() and self.fatal is None:
                try:
                    item = self.queue.get(timeout=TICK)
                except queue.Empty:
                    item = None
                if item is not None:
                    self._handle_pass(item)
                flush_log()
                now = time.monotonic()
                if interval is not None and now - last_ping >= interval:
                    self.notifier.watchdog()
                    last_ping = now
                if self._reload.is_set():
                    self._reload.clear()
                    self.reload()
                if self._report.is_set():  # SIGUSR1
                    self._report.clear()
                    log.info("status: %s", self.status_text())
                if now - last_status >= STATUS_INTERVAL:
                    self.notifier.status(self.status_text())
                    last_status = now
                self.pipeline.tick()  # a flood guard's quiet minute ends by the clock, not only at an alert
                if self.responder is not None and now - last_resync >= RESYNC_INTERVAL:
                    self.pipeline.resync(self.responder.ledger, time.time())
                    last_resync = now
        finally:
            self.stop()
        if self.fatal is not None:
            log.error("stopped: %s", self.fatal)
            return 1
        return 0

    def stop(self) -> None:
        self.notifier.stopping()
        self._stop_listener()
        self._stop_follower()
        pending = self._stop_responder()
        self._stop_notifications()
        self._stop_web()
        summary = self.pipeline.counts.summary() if self.pipeline else "nothing done"
        log.info("stopped: %s%s", summary, f"; {pending} block(s) still pending, kept in the ledger" if pending else "")

    # reload

    def reload(self) -> bool:
        """Re-read the configuration file; True if the new one is in force."""
        self.notifier.reloading()
        path = self.config.path
        try:
            new = load_config(path)
            _check_runnable(new)
            renotify = _notify_inputs(new) != _notify_inputs(self.config)
            notifications = _build_notifications(new, self._pending_blocks) if renotify else self.notifications
        except ConfigError as exc:
            log.error("reload refused, the running configuration stays in force: %s is not usable:\n  %s",
                      exc.path or path, "\n  ".join(exc.problems))
            self.notifier.ready(self.status_text())
            return False
        old = self.config
        assert self.pipeline is not None
        if new.scan is None or old.scan is None or new.scan.syslog != old.scan.syslog:
            try:
                self._stop_listener()
                self._start_listener(new)
            except OSError as exc:
                log.error("reload: %s; the firewall-log listener is off until the next reload", exc)
        elif self.listener is not None:
            self.listener.allow = syslog_senders(new)
        routers_changed = (new.routers, new.state_dir) != (old.routers, old.state_dir)
        if routers_changed or followed_sources(new) != self.sources:
            self._stop_follower()  # what it read is handled before anything is swapped
        if routers_changed:
            self._stop_responder()
            self.responder = make_responder(new, self.feed)
        if self.web is not None:
            self.web.reconfigure(new)
        pipeline = Pipeline(
            build_policy(new, protect=protected_addresses(new), previous=self.pipeline.policy),
            self.responder,
            make_detector(new) if new.scan != old.scan else self.pipeline.detector,
            routers=len(new.routers),
            feed=self.feed,
        )
        pipeline.counts = self.pipeline.counts
        old_guard = self.pipeline.policy.guard
        if pipeline.policy.guard is not old_guard:
            pipeline.guard_replaced(old_guard, time.time())  # a tripped guard dropped: blocking resumes
        if self.responder is not None:
            pipeline.resync(self.responder.ledger, time.time())
        self.pipeline = pipeline
        self.config = new
        if renotify:
            previous = self.notifications
            self._stop_notifications()
            self.notifications = notifications
            if notifications is not None:
                if previous is not None:
                    notifications.carry_over(previous)
                notifications.start(self.feed)
        if self.follower is None:
            self._start_follower(new)
        log.info("reloaded %s: following %d file(s), %s, %s, protected %s", path, len(self.sources), self._listening(),
                 self._routers_text(), ", ".join(map(str, new.policy.protected)) or "none")
        self.notifier.ready(self.status_text())
        return True

    # the work

    def _handle_pass(self, first: Optional[tuple]) -> None:
        """``first`` and whatever else is queued (up to PASS_MAX): the ledger's writes for all
        of them are one transaction; followed lines are committed only once it is durable, so
        a crash at any point re-reads (never loses) a line whose block was not recorded."""
        items = [first] if first is not None else []
        while len(items) < PASS_MAX:
            try:
                items.append(self.queue.get_nowait())
            except queue.Empty:
                break
        handled = []
        try:
            with self.responder.batch() if self.responder is not None else contextlib.nullcontext():
                for item in items:
                    handled += self._handle(item)
        except Exception as exc:  # noqa: BLE001 -- the ledger could not commit: stop, read them again at restart
            log.exception("the ledger could not record a pass of %d input(s)", len(items))
            self.fatal = f"the ledger cannot be written: {exc}"
            return
        for follower, lines in _by_follower(handled).items():
            follower.commit_all(lines)

    def _handle(self, item: tuple) -> List[Tuple[Line, Follower]]:
        """Handle one queued input; followed lines are returned, to be committed after the pass."""
        pipeline = self.pipeline
        assert pipeline is not None
        kind = item[0]
        if kind == "lines":
            _, lines, follower = item
            self._batches_in_flight.release()
            for line in lines:
                fmt = self.sources.get(line.path) or self._format_of(line.path)
                origin = Origin(line.path, line.offset, line.number)
                if fmt == FIREWALL:
                    pipeline.firewall_line(line.text, origin, time.time())
                else:
                    pipeline.alert_line(line.text, origin, fmt)
            return [(line, follower) for line in lines]
        elif kind == "syslog":
            _, text, peer, received_at = item
            pipeline.firewall_line(text, Origin(f"udp:{peer[0]}:{peer[1]}"), received_at)
        return []

    def _format_of(self, path: str) -> str:
        """The format of a file found by a glob ``[[alerts]] path`` (the first pattern it matches)."""
        fmt = self._matched_formats.get(path)
        if fmt is None:
            fmt = next((f for pattern, f in self.sources.items() if fnmatch.fnmatch(path, pattern)), "auto")
            self._matched_formats[path] = fmt
        return fmt

    def _drain(self) -> None:
        while not self.queue.empty() and self.fatal is None:
            self._handle_pass(None)

    # inputs

    def _start_follower(self, config: Config) -> None:
        self.sources = followed_sources(config)
        self._matched_formats = {}
        if not self.sources:
            return
        follower = Follower(list(self.sources), config.state_dir)
        follower.start()
        self.follower = follower
        self._follow_stop = threading.Event()
        self._follow_thread = threading.Thread(target=self._follow, args=(follower, self._follow_stop), name="follower", daemon=True)
        self._follow_thread.start()

    def _follow(self, follower: Follower, stopping: threading.Event) -> None:
        try:
            for lines in follower.batches():
                while not self._batches_in_flight.acquire(timeout=0.5):
                    if stopping.is_set():
                        return  # not committed: read again at the next start
                self.queue.put(("lines", lines, follower))
        except Exception as exc:  # noqa: BLE001 -- reported, and the service stops (systemd restarts it)
            log.exception("following the alert files failed")
            self.fatal = f"the follower failed: {exc}"

    def _stop_follower(self) -> None:
        follower, thread = self.follower, self._follow_thread
        if follower is None:
            return
        self._follow_stop.set()
        follower.stop()
        if thread is not None:
            thread.join(timeout=10)
        self._drain()  # lines read but not yet handled: handle and commit them now
        follower.flush()
        self.follower = self._follow_thread = None

    def _start_listener(self, config: Config) -> None:
        if config.scan is None or not config.scan.syslog:
            return
        self.listener = SyslogListener(config.scan.syslog, self._datagram_line, syslog_senders(config)).start()

    def _datagram_line(self, text: str, peer: Tuple[str, int], received_at: float) -> None:
        try:
            self.queue.put_nowait(("syslog", text, peer, received_at))
        except queue.Full:
            self.dropped_datagrams += 1
            if self.dropped_datagrams in (1, 100, 10_000):
                log.warning("processing is behind: %d firewall log line(s) dropped", self.dropped_datagrams)

    def _stop_listener(self) -> None:
        if self.listener is not None:
            self.listener.stop()
            self.listener = None

    def _stop_web(self) -> None:
        web, self.web = self.web, None
        if web is not None:
            web.stop()

    def _stop_responder(self) -> int:
        responder, self.responder = self.responder, None
        if responder is None:
            return 0
        pending = sum(status.pending for status in responder.status())
        if not responder.stop(timeout=5.0):
            log.warning("a router did not answer in time while stopping; its pending blocks stay in the ledger")
        return pending

    def _stop_notifications(self) -> None:
        notifications, self.notifications = self.notifications, None
        if notifications is not None:
            notifications.stop(timeout=5.0)  # what is gathered is told; a dead endpoint is not waited for

    def _pending_blocks(self, router: str) -> Optional[int]:
        """For "router up" messages (from the notify thread): blocks still to send to ``router``."""
        responder = self.responder
        if responder is None:
            return None
        return next((s.pending for s in responder.status() if s.name == router), None)

    # reporting

    def status_text(self) -> str:
        counts = self.pipeline.counts.summary() if self.pipeline else "starting"
        return f"{counts}; {self._routers_text()}"

    def _routers_text(self) -> str:
        if self.responder is None:
            return "no routers"
        statuses = self.responder.status()
        up = sum(1 for s in statuses if s.connected)
        return f"{len(statuses)} router(s), {up} connected"

    def _listening(self) -> str:
        if self.listener is None:
            return "no firewall-log listener"
        host, port = self.listener.bound
        return f"firewall log lines on udp {host}:{port}"


def _build_notifications(config: Config, pending_blocks):
    if config.notify is None:
        return None
    from bridge.notify.delivery import build_notifications  # apprise is loaded only with [notify]

    return build_notifications(config, pending_blocks=pending_blocks)


def _notify_inputs(config: Config) -> tuple:
    return config.notify, tuple(r.name for r in config.routers), tuple(a.path for a in config.alerts)


def _by_follower(handled) -> Dict[Follower, list]:
    grouped: Dict[Follower, list] = {}
    for line, follower in handled:
        grouped.setdefault(follower, []).append(line)
    return grouped


def _check_runnable(config: Config) -> None:
    if not config.alerts and config.scan is None:
        raise ConfigError(["alerts: nothing to follow; expected at least one [[alerts]] table or a [scan] table"], config.path)


def run_service(args: argparse.Namespace) -> int:
    from bridge.cli import config_path

    setup_logging(verbose=getattr(args, "verbose", False), buffered=True)
    config = load_config(config_path(args))  # ConfigError -> exit 2 with every problem, by cli.main
    service = Service(config)
    signal.signal(signal.SIGTERM, service.request_stop)
    signal.signal(signal.SIGINT, service.request_stop)
    signal.signal(signal.SIGHUP, service.request_reload)
    signal.signal(signal.SIGUSR1, service.request_report)  # before start(): its log line means "ready"
    try:
        service.start()
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    return service.run()


# -- snort-bridge scan --pcap FILE|- ----------------------------------------------------------


class _Interrupted(Exception):
    pass


def run_scan(args: argparse.Namespace) -> int:
    from bridge.cli import EXIT_FAILED, EXIT_OK, load_for
    from bridge.config import ScanConfig
    from bridge.scan_source import PcapStream, PcapStreamError, stream_probes

    setup_logging(verbose=args.verbose)
    config, note = load_for(args, optional=True)
    if note:
        log.info("%s", note)
    scan = config.scan or ScanConfig()
    detector = ScanDetector(ports=scan.ports, window=scan.window, low_port_weight=scan.low_port_weight, source_name=f"pcap:{args.pcap}")
    responder = None if args.dry_run else make_responder(config)
    pipeline = Pipeline(build_policy(config, protect=protected_addresses(config)), responder, detector, routers=len(config.routers))
    if responder is not None:
        pipeline.resync(responder.ledger, time.time())
    else:
        log.info("%s: detections are printed, nothing is blocked", "--dry-run" if args.dry_run else "no [[routers]] configured")

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
        from bridge.alert_out import AlertFileWriter  # a sensor: detections go to a file rsyslog forwards

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
    log.info("%d packets, %d probes, %d scans detected, %d blocks", packets, counts.probes, counts.detections, counts.blocks)
    return status


# -- registration -------------------------------------------------------------------------------


def register(subparsers: "argparse._SubParsersAction") -> None:
    run = subparsers.add_parser(
        "run",
        help="follow the alerts and block on the routers",
        description="The service: follow the alert files (and RouterOS firewall logs for the scan detector), "
        "decide, and block on every router. SIGHUP reloads the configuration, SIGTERM stops cleanly.",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="also log every decision that does not block")
    run.set_defaults(func=run_service)

    scan = subparsers.add_parser(
        "scan",
        help="detect port scans in a packet stream (--pcap FILE|-)",
        description="Read a pcap stream (tzspd's standard output, or under `tzspd --exec`) and detect port "
        "scans: distinct destination ports per source within [scan] window. Detections go through the "
        "policy and are blocked on the configured routers; without routers, or with --dry-run, they are printed.",
    )
    scan.add_argument("--pcap", required=True, metavar="FILE|-", help="pcap or pcapng file, or - for standard input")
    scan.add_argument("--dry-run", action="store_true", help="print detections and decisions, block nothing")
    scan.add_argument("--alerts", metavar="FILE",
                      help="also append each detection to FILE as a Snort 3 alert_json line (a sensor whose "
                           "alerts rsyslog forwards to the central snort-bridge run)")
    scan.add_argument("--wait", type=float, default=10.0, metavar="SECONDS",
                      help="at the end of the stream, wait this long for the routers to apply new blocks (default 10)")
    scan.add_argument("-v", "--verbose", action="store_true", help="also log decisions that do not block")
    scan.set_defaults(func=run_scan)
