"""The service's reading side: what fills the queue the processing loop takes from.

A follower thread reads the alert files (and [scan] files of RouterOS firewall log lines), a
listener thread receives firewall log lines by UDP syslog, a thread per [scan] router reads that
router's own log (bridge.service.router_logs). All only put what they read on one
bounded queue: the policy is not thread-safe, so all the work is done by the loop
(bridge.service). When the queue is full, the follower waits and the listener drops and counts.
"""

from __future__ import annotations

import fnmatch
import logging
import queue
import threading
from collections.abc import Callable

from bridge.config import Config
from bridge.follow.follower import Follower
from bridge.scan.syslog_listener import SyslogListener
from bridge.service.parts import followed_sources, syslog_senders
from bridge.service.router_logs import RouterLogs

log = logging.getLogger("snort-bridge")

QUEUE_SIZE = 10_000
BATCHES_IN_FLIGHT = 16  # batches of followed lines read ahead of the processing loop


class Inputs:
    """The follower and the listener, and the queue they fill: ``("lines", lines, follower)`` and
    ``("syslog", text, peer, received_at)``. ``failed(reason)`` is called from the follower thread
    when it cannot go on: the service stops (systemd restarts it)."""

    def __init__(self, failed: Callable[[str], None]):
        self.queue: queue.Queue[tuple] = queue.Queue(QUEUE_SIZE)
        self._batches_in_flight = threading.Semaphore(BATCHES_IN_FLIGHT)  # follower -> loop
        self._failed = failed
        self.sources: dict[str, str] = {}
        self._matched_formats: dict[str, str] = {}
        self.follower: Follower | None = None
        self._follow_thread: threading.Thread | None = None
        self._follow_stop = threading.Event()
        self.listener: SyslogListener | None = None
        self.dropped_datagrams = 0
        self.router_logs = RouterLogs(self._router_line)

    # followed files

    def start_follower(self, config: Config) -> None:
        self.sources = followed_sources(config)
        self._matched_formats = {}
        if not self.sources:
            return
        follower = Follower(list(self.sources), config.state_dir)
        follower.start()
        self.follower = follower
        self._follow_stop = threading.Event()
        self._follow_thread = threading.Thread(
            target=self._follow, args=(follower, self._follow_stop), name="follower", daemon=True
        )
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
            self._failed(f"the follower failed: {exc}")

    def batch_taken(self) -> None:
        """The loop took a batch of followed lines: the follower may read one more ahead."""
        self._batches_in_flight.release()

    def format_of(self, path: str) -> str:
        """The format of a followed line's file: as configured (FIREWALL for [scan] files), else as globbed."""
        return self.sources.get(path) or self._glob_format(path)

    def _glob_format(self, path: str) -> str:
        """The format of a file found by a glob ``[[alerts]] path`` (the first pattern it matches)."""
        fmt = self._matched_formats.get(path)
        if fmt is None:
            fmt = next((f for pattern, f in self.sources.items() if fnmatch.fnmatch(path, pattern)), "auto")
            self._matched_formats[path] = fmt
        return fmt

    def stop_follower(self, drain: Callable[[], None]) -> None:
        """Stop the follower; ``drain()`` handles and commits what it read, before its positions are saved."""
        follower, thread = self.follower, self._follow_thread
        if follower is None:
            return
        self._follow_stop.set()
        follower.stop()
        if thread is not None:
            thread.join(timeout=10)
        drain()  # lines read but not yet handled: handle and commit them now
        follower.flush()
        self.follower = self._follow_thread = None

    # firewall log lines by syslog

    def start_listener(self, config: Config) -> None:
        if config.scan is None or not config.scan.syslog:
            return
        self.listener = SyslogListener(config.scan.syslog, self._datagram_line, syslog_senders(config)).start()

    def _datagram_line(self, text: str, peer: tuple[str, int], received_at: float) -> None:
        try:
            self.queue.put_nowait(("syslog", text, peer, received_at))
        except queue.Full:
            self.dropped_datagrams += 1
            if self.dropped_datagrams in (1, 100, 10_000):
                log.warning("processing is behind: %d firewall log line(s) dropped", self.dropped_datagrams)

    def allow_senders(self, config: Config) -> None:
        """The running listener (if any) takes its senders from ``config``."""
        if self.listener is not None:
            self.listener.allow = syslog_senders(config)

    def stop_listener(self) -> None:
        if self.listener is not None:
            self.listener.stop()
            self.listener = None

    # firewall log lines read from the routers themselves ([scan] routers)

    def start_router_logs(self, config: Config) -> None:
        self.router_logs.start(config)

    def stop_router_logs(self) -> None:
        self.router_logs.stop()

    def _router_line(self, router: str, text: str, received_at: float) -> None:
        """From a router's log thread: wait for room (the router keeps its memory meanwhile)."""
        item = ("routerlog", text, router, received_at)
        while True:
            try:
                self.queue.put(item, timeout=0.5)
                return
            except queue.Full:
                if self.router_logs.stopping:
                    return

    def listening(self) -> str:
        followed = self.router_logs.describe()
        if self.listener is None:
            return followed or "no firewall-log listener"
        host, port = self.listener.bound
        return f"firewall log lines on udp {host}:{port}" + (f" and {followed}" if followed else "")
