"""``provision --check``'s essentials for the running service: /health and the status page warn
when a router's drop rules are missing, disabled, on another list or below an accept rule, or its
firewall logging to the bridge is gone.

Off the alert path: one background thread checks the SSH routers one after the other, with the
routers' own connect and command timeouts, at most every ``interval`` seconds, started when a
page or /health asks and the last results are older than that. Asking never waits for a router.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from responder.config import RouterConfig
from responder.errors import RouterError
from responder.provision.apply import ReadBackError, open_ssh, read_back, runner
from responder.provision.drift import Finding, check
from responder.provision.items import Item, watched_items

log = logging.getLogger("snort-bridge")

CHECK_INTERVAL = 600.0  # seconds between two rounds of checks; drift is rare and each check logs in

Checker = Callable[[RouterConfig, Sequence[Item]], list[Finding]]


def check_over_ssh(cfg: RouterConfig, items: Sequence[Item]) -> list[Finding]:
    connection = open_ssh(cfg)
    try:
        return check(items, read_back(runner(connection, cfg.command_timeout), items))
    finally:
        connection.close()


class ProvisionWatch:
    def __init__(
        self,
        routers: Sequence[RouterConfig],
        remote_logging: bool,
        *,
        interval: float = CHECK_INTERVAL,
        checker: Checker = check_over_ssh,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.routers = [r for r in routers if r.transport == "ssh"]  # over the API: not checked
        self.remote_logging = remote_logging
        self.interval = interval
        self.checker = checker
        self.clock = clock
        self._lock = threading.Lock()
        self._warnings: dict[str, list[str]] = {}
        self._checked_at: float | None = None
        self._thread: threading.Thread | None = None

    def reconfigure(self, routers: Sequence[RouterConfig], remote_logging: bool) -> None:
        """A reload: check the new routers at the next request."""
        with self._lock:
            self.routers = [r for r in routers if r.transport == "ssh"]
            self.remote_logging = remote_logging
            self._warnings = {
                name: lines for name, lines in self._warnings.items() if name in {r.name for r in routers}
            }
            self._checked_at = None

    def warnings(self) -> list[str]:
        """The last results, one sentence per drift; starts a new round when they are stale."""
        with self._lock:
            stale = self._checked_at is None or self.clock() - self._checked_at >= self.interval
            if stale and (self._thread is None or not self._thread.is_alive()) and self.routers:
                self._checked_at = self.clock()  # a failing round is not retried on every request
                self._thread = threading.Thread(target=self._round, name="provision-check", daemon=True)
                self._thread.start()
            return [line for name in sorted(self._warnings) for line in self._warnings[name]]

    def wait(self, timeout: float) -> bool:
        """For tests: True once the round in progress (if any) has finished."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _round(self) -> None:
        with self._lock:
            routers, remote_logging = list(self.routers), self.remote_logging
        for cfg in routers:
            items = watched_items(cfg.list, cfg.block_in, remote_logging)
            try:
                findings = self.checker(cfg, items)
            except (RouterError, ReadBackError) as exc:
                # an unreachable router is /health's problem already; keep what we knew
                log.debug("router %s: provisioning not checked: %s", cfg.name, exc)
                continue
            lines = [
                f"router {cfg.name} provisioning: {f.line} (or snort-bridge provision {cfg.name} --apply)"
                for f in findings
                if f.drift
            ]
            with self._lock:
                self._warnings[cfg.name] = lines
