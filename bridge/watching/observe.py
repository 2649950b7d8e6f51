"""What the IPS did, kept for /metrics, /health and the status page: a subscriber of Service.feed.

``Observer`` is called in the publisher's thread (the alert path, the router workers), so each
call only updates prometheus_client metrics (thread-safe, a lock and an add) and a few bounded
in-memory records under one short lock. Everything slower (the ledger, the routers' status,
files on disk, tzspd's metrics) is read when a page is asked for, on the HTTP server's threads.

Labels come from bounded sets only: ``source`` is a configured path (or "syslog" / "pcap" /
"other"), ``router`` a configured router, ``reason`` one of bridge.events.DECISION_REASONS.
"""

from __future__ import annotations

import collections
import fnmatch
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from bridge.events import DECISION_REASONS
from responder.feed import (
    Decided,
    EntryApplied,
    EntryRefused,
    EntryRemoved,
    FloodGuardChanged,
    LineRead,
    RouterChanged,
    StateTrouble,
)

STATE_FILES = ("ledger", "positions")  # the tzsp_ips_state_writable{file} labels
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
MAX_WAITING_BLOCKS = 10_000  # addresses whose block latency is still being measured
RECENT_DECISIONS = 50
HISTORY_MINUTES = 6 * 60  # per-minute alert and block counts kept for the chart
ACTIONS = ("block", "ignore")


@dataclass(frozen=True)
class RecentDecision:
    at: float
    action: str
    reason: str
    target: str  # the blocked address, or "" (shown on the page, never a metric label)
    src: str
    dst: str
    sid: str
    msg: str
    why: str


@dataclass
class RouterSeen:
    up: bool
    since: float
    error: str | None = None


class SourceLabels:
    """Maps a LineRead.source to a bounded label: the configured path (or glob) it came from."""

    def __init__(self, paths: Iterable[str]):
        self.paths = tuple(paths)
        self._cache: dict[str, str] = {}

    def __call__(self, source: str) -> str:
        label = self._cache.get(source)
        if label is not None:
            return label
        if source.startswith("udp:"):
            label = "syslog"
        elif source.startswith("pcap:"):
            label = "pcap"
        else:
            label = next((p for p in self.paths if source == p or fnmatch.fnmatchcase(source, p)), "other")
        if len(self._cache) < 1024:  # peers of the syslog listener vary: the cache stays bounded
            self._cache[source] = label
        return label


class Observer:
    """Subscribe it to a Feed: ``feed.subscribe(observer)``."""

    def __init__(
        self,
        sources: Sequence[str],
        routers: Sequence[str],
        *,
        registry: CollectorRegistry | None = None,
        clock=time.time,
    ):
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=False)
        self.clock = clock
        self.started = clock()
        self.label = SourceLabels(sources)
        self.routers = tuple(routers)
        r = self.registry
        self.lines = Counter(
            "tzsp_ips_alert_lines", "Lines read from alert files (and firewall logs)", ["source"], registry=r
        )
        self.alerts = Counter("tzsp_ips_alerts", "Alerts parsed from those lines", ["source"], registry=r)
        self.unparsable = Counter(
            "tzsp_ips_unparsable_lines", "Lines that were not a readable alert", ["source"], registry=r
        )
        self.decisions = Counter(
            "tzsp_ips_decisions", "Policy decisions by action and reason", ["action", "reason"], registry=r
        )
        self.router_errors = Counter(
            "tzsp_ips_router_errors",
            "Connections lost or refused, and entries a router refused",
            ["router", "kind"],
            registry=r,
        )
        self.entries_applied = Counter(
            "tzsp_ips_entries_applied", "Address-list entries a router took", ["router"], registry=r
        )
        self.latency = Histogram(
            "tzsp_ips_block_latency_seconds",
            "From the alert line handled to the entry applied on the router",
            ["router"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.guard_trips = Counter("tzsp_ips_flood_guard_trips", "Times the flood guard stopped blocking", registry=r)
        self.state_writable = Gauge(
            "tzsp_ips_state_writable",
            "1 while the state file can be written; 0 while the bridge goes on from memory",
            ["file"],
            registry=r,
        )
        for what in STATE_FILES:
            self.state_writable.labels(what).set(1)
        for source in self.label.paths:
            for metric in (self.lines, self.alerts, self.unparsable):
                metric.labels(source)
        for action in ACTIONS:
            for reason in DECISION_REASONS:
                self.decisions.labels(action, reason)
        for router in self.routers:
            self.latency.labels(router)
            self.entries_applied.labels(router)
            for kind in ("connection", "refused"):
                self.router_errors.labels(router, kind)

        self._lock = threading.Lock()
        self._waiting: collections.OrderedDict[object, tuple[float, set]] = collections.OrderedDict()
        self.recent: collections.deque[RecentDecision] = collections.deque(maxlen=RECENT_DECISIONS)
        self._minutes: collections.deque[list[int]] = collections.deque(
            maxlen=HISTORY_MINUTES
        )  # [minute, alerts, blocks]
        self.last_line: dict[str, float] = {}  # source label -> when its last line was handled
        self.router_seen: dict[str, RouterSeen] = {}
        self.guard_event: FloodGuardChanged | None = None
        self.state_trouble: dict[str, str] = {}  # state file -> what is wrong with it now

    def reconfigure(self, sources: Sequence[str], routers: Sequence[str]) -> None:
        """After a reload: label the new files, wait for the new routers."""
        self.label = SourceLabels(sources)
        self.routers = tuple(routers)

    # -- the subscriber ----------------------------------------------------------------------------

    def __call__(self, event: object) -> None:
        handler = self._HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    def _line(self, event: LineRead) -> None:
        source = self.label(event.source)
        self.lines.labels(source).inc()
        with self._lock:
            self.last_line[source] = event.at
            if event.outcome == "alert":
                self._bump(event.at, 1)
        if event.outcome == "alert":
            self.alerts.labels(source).inc()
        elif event.outcome == "unparsable":
            self.unparsable.labels(source).inc()

    def _decided(self, event: Decided) -> None:
        decision = event.decision
        action = getattr(decision, "action", "ignore")
        reason = getattr(decision, "reason", "") or "other"
        if reason not in DECISION_REASONS:
            reason = "other"
        self.decisions.labels(action if action in ACTIONS else "ignore", reason).inc()
        alert = getattr(decision, "alert", None)
        target = getattr(decision, "target", None)
        recent = RecentDecision(
            at=event.at,
            action=action,
            reason=reason,
            target=str(target or ""),
            src=str(getattr(alert, "src", "") or ""),
            dst=str(getattr(alert, "dst", "") or ""),
            sid=f"{getattr(alert, 'gid', '')}:{getattr(alert, 'sid', '')}" if alert is not None else "",
            msg=str(getattr(alert, "msg", "") or ""),
            why=str(getattr(decision, "why", "")),
        )
        with self._lock:
            self.recent.append(recent)
            if action == "block" and target is not None:
                self._bump(event.at, 2)
                self._waiting[target] = (event.at, set(self.routers))
                self._waiting.move_to_end(target)
                while len(self._waiting) > MAX_WAITING_BLOCKS:
                    self._waiting.popitem(last=False)

    def _applied(self, event: EntryApplied) -> None:
        self.entries_applied.labels(event.router).inc()
        with self._lock:
            waiting = self._waiting.get(event.address)
            if waiting is None or event.router not in waiting[1]:
                return  # a refresh, a catch-up after a restart, or a manual block: no alert started it
            decided_at, routers = waiting
            routers.discard(event.router)
            if not routers:
                del self._waiting[event.address]
        self.latency.labels(event.router).observe(max(0.0, event.at - decided_at))

    def _refused(self, event: EntryRefused) -> None:
        self.router_errors.labels(event.router, "refused").inc()

    def _router(self, event: RouterChanged) -> None:
        if not event.up:
            self.router_errors.labels(event.router, "connection").inc()
        with self._lock:
            self.router_seen[event.router] = RouterSeen(event.up, event.at, event.error)

    def _guard(self, event: FloodGuardChanged) -> None:
        if event.tripped:
            self.guard_trips.inc()
        with self._lock:
            self.guard_event = event

    def _state(self, event: StateTrouble) -> None:
        if event.damaged:
            return  # set aside and rebuilt already: news for the notifications, not a state of health
        if event.what in STATE_FILES:
            self.state_writable.labels(event.what).set(1 if event.ok else 0)
        with self._lock:
            if event.ok:
                self.state_trouble.pop(event.what, None)
            else:
                self.state_trouble[event.what] = event.text

    def state_problems(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self.state_trouble[what] for what in sorted(self.state_trouble))

    _HANDLERS = {
        LineRead: _line,
        Decided: _decided,
        EntryApplied: _applied,
        EntryRefused: _refused,
        EntryRemoved: lambda self, event: None,
        RouterChanged: _router,
        FloodGuardChanged: _guard,
        StateTrouble: _state,
    }

    def _bump(self, at: float, column: int) -> None:
        """Count one alert (column 1) or block (column 2) in its minute; lock held."""
        minute = int(at // 60)
        minutes = self._minutes
        if not minutes or minutes[-1][0] < minute:
            minutes.append([minute, 0, 0])
            minutes[-1][column] += 1
            return
        for row in reversed(minutes):  # an event a little late lands in its own minute
            if row[0] == minute:
                row[column] += 1
                return
            if row[0] < minute:
                return

    # -- reading (HTTP threads) -------------------------------------------------------------------

    def per_minute(self, now: float, minutes: int) -> list[tuple[int, int, int]]:
        """(minute, alerts, blocks) for each of the last ``minutes`` minutes, oldest first, gaps as 0."""
        last = int(now // 60)
        with self._lock:
            counts = {row[0]: (row[1], row[2]) for row in self._minutes}
        return [(m, *counts.get(m, (0, 0))) for m in range(last - minutes + 1, last + 1)]

    def recent_decisions(self) -> list[RecentDecision]:
        with self._lock:
            return list(reversed(self.recent))

    def routers_seen(self) -> dict[str, RouterSeen]:
        with self._lock:
            return {name: RouterSeen(s.up, s.since, s.error) for name, s in self.router_seen.items()}

    def last_lines(self) -> dict[str, float]:
        with self._lock:
            return dict(self.last_line)
