"""[scan] routers: a thread per router follows its own firewall log over a connection of its own
(responder.transport.log_stream), keeps what is new (bridge.scan.router_log) and hands each line
to the service's queue. A lost connection is retried with backoff; the router being down is the
router worker's to report, so it is logged here once per outage.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from bridge.config import Config
from bridge.scan.router_log import ApiGate, SshGate
from responder.errors import RouterError
from responder.sync.backoff import Backoff
from responder.transport.log_stream import log_stream

log = logging.getLogger("snort-bridge")

READ_WAIT = 0.5  # seconds a read waits for a line; the stop flag is looked at in between


class RouterLogs:
    """``put(router, line, received_at)`` for each new firewall log line of each followed router."""

    def __init__(self, put: Callable[[str, str, float], None]) -> None:
        self._put = put
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self.routers: tuple[str, ...] = ()

    def start(self, config: Config) -> None:
        if config.scan is None or not config.scan.routers:
            return
        by_name = {router.name: router for router in config.routers}
        self._stopping = threading.Event()
        self.routers = tuple(config.scan.routers)
        for name in self.routers:
            thread = threading.Thread(
                target=self._follow, args=(by_name[name], self._stopping), name=f"log-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads = []
        self.routers = ()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def describe(self) -> str:
        return f"the firewall log of {', '.join(self.routers)}" if self.routers else ""

    def _follow(self, router, stopping: threading.Event) -> None:
        stream = log_stream(router)
        gate = ApiGate() if router.transport == "api" else SshGate()
        backoff = Backoff(base=1.0, cap=30.0)
        down = False
        while not stopping.is_set():
            try:
                uptime, backlog = stream.open()
                self._hand_on(router.name, gate.opened(uptime, backlog, time.time()))
                if down:
                    log.info("router %s: following its firewall log again", router.name)
                down = False
                backoff.reset()
                while not stopping.is_set():
                    self._hand_on(router.name, gate.take(stream.read(READ_WAIT)))
            except RouterError as exc:
                stream.close()
                if not down:
                    log.warning("router %s: its firewall log cannot be followed: %s; retrying", router.name, exc)
                down = True
                stopping.wait(backoff.next_delay())
            except Exception:  # noqa: BLE001 -- one router's follower must not take the service down
                stream.close()
                log.exception("router %s: following its firewall log failed; retrying", router.name)
                stopping.wait(backoff.next_delay())
        stream.close()

    def _hand_on(self, router: str, entries) -> None:
        now = time.time()
        for entry in entries:
            self._put(router, entry.line, now)
