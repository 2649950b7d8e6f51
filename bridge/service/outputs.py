"""Where the service's work goes: the responder (the blocks, on the routers), the [notify]
notifications and the [http] server (/metrics, /health and the status page). The last two
subscribe to the service's feed (what happened); the responder publishes on it.

Each is built from the configuration (bridge.service.parts), started, replaced at a reload and
stopped here; bridge.service decides when, because the order matters (see there).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bridge.config import Config
from bridge.service.parts import make_notifications, make_responder
from responder.feed import Feed

log = logging.getLogger("snort-bridge")


class Outputs:
    def __init__(self, feed: Feed, clock: Callable[[], float] = time.time):
        self.feed = feed
        self.clock = clock  # the service's steady wall clock (plumbing.steadyclock), for the responder
        self.web = None  # [http]: /metrics, /health and the status page (bridge.watching.web)
        self.notifications = None  # bridge.notify: [notify] through apprise
        self.responder = None

    # start

    def start_web(self, service, config: Config) -> None:
        """The [http] server, showing ``service`` (bridge.watching.web reads its state for the status page)."""
        from bridge.watching.web import start_web  # prometheus_client is loaded only with [http]

        self.web = start_web(service, config)

    def start_notifications(self, config: Config) -> None:
        self.notifications = make_notifications(config, self.pending_blocks)
        if self.notifications is not None:
            self.notifications.start(self.feed)

    def start_responder(self, config: Config) -> None:
        self.responder = make_responder(config, self.feed, self.clock)

    # reload

    def replace_responder(self, config: Config) -> None:
        self._stop_responder()
        self.start_responder(config)

    def reconfigure_web(self, config: Config) -> None:
        if self.web is not None:
            self.web.reconfigure(config)

    def replace_notifications(self, notifications) -> None:
        """``notifications`` (built for the new configuration, or None) instead of the running ones,
        which are stopped; the new ones carry over what those knew (routers down, silent files),
        so nothing is told twice."""
        previous = self.notifications
        self._stop_notifications()
        self.notifications = notifications
        if notifications is not None:
            if previous is not None:
                notifications.carry_over(previous)
            notifications.start(self.feed)

    # stop

    def stop(self) -> int:
        """Stop all, in the reverse order of their start; the number of blocks still pending."""
        pending = self._stop_responder()
        self._stop_notifications()
        self._stop_web()
        return pending

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

    # reporting

    def pending_blocks(self, router: str) -> int | None:
        """For "router up" messages (from the notify thread): blocks still to send to ``router``."""
        responder = self.responder
        if responder is None:
            return None
        return next((s.pending for s in responder.status() if s.name == router), None)

    def routers_text(self) -> str:
        if self.responder is None:
            return "no routers"
        statuses = self.responder.status()
        up = sum(1 for s in statuses if s.connected)
        return f"{len(statuses)} router(s), {up} connected"
