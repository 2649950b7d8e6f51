"""Feed events in, messages out: what to tell the people on call, and when. Pure: no sockets, no threads.

Events fall into kinds (blocks, unblocks, routers, the flood guard, sensors, Snort restarts, state files). Per kind, the first
event after a quiet ``min_interval`` goes out once it has settled (``SETTLE``, a couple of seconds,
so the first instants of a burst make one message);
whatever comes within ``min_interval`` after a message is gathered and sent as one digest when the
interval is over. A kind's storm thus gives one message per ``min_interval``, and different kinds
never hold each other up: a router going down is not queued behind a storm of blocks.

The same event is never told twice: a router reported down while already known to be down (a new
worker after a reload) is dropped, a router "up" is only told after a "down", and a silent sensor
is told once per silence, a flood guard's resume only after its trip.
"""

from __future__ import annotations

import fnmatch
import glob
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bridge.notify.messages import (
    BlockBatch,
    GuardBatch,
    Message,
    RouterBatch,
    RouterNews,
    RouterState,
    SensorBatch,
    SensorChanged,
    UnblockBatch,
    Voice,
)
from bridge.notify.restarts import RestartBatch, SnortRestarted, TzspdUnreachable, tell_restarts
from bridge.notify.state import StateBatch, tell_state
from responder.feed import BlockLifted, Decided, FloodGuardChanged, RouterChanged, StateTrouble

MAX_SENSORS = 1024  # files tracked for silence, globs' matches included: bounded whatever appears on disk
SETTLE = 2.0  # seconds a kind's first event waits for company before it goes out


@dataclass
class _Window:
    last_sent: float = float("-inf")
    first_at: float | None = None  # when the oldest event still to tell arrived
    batch: object = None


# -- the digester ------------------------------------------------------------------------------


class Digester:
    """Decides what to send and when; the shell calls ``offer``, ``lines_seen`` and ``due``."""

    def __init__(
        self,
        events: Sequence[str],
        min_interval: float,
        *,
        now: float,
        routers: Sequence[str] = (),
        sensors: Sequence[str] = (),
        silent_after: float | None = None,
        host: str = "",
        settle: float = SETTLE,
        pending_blocks: Callable[[str], int | None] = lambda router: None,
    ) -> None:
        self.events = frozenset(events)
        self.min_interval = min_interval
        self.settle = min(settle, min_interval)
        self.voice = Voice(host, routers, pending_blocks)
        self.silent_after = silent_after if "sensor_silent" in self.events else None
        # A glob [[alerts]] path is one sensor until a file it matches speaks; from then on each
        # matching file is a sensor of its own (one silent sensor among many is what to tell).
        self._patterns = tuple(source for source in sensors if glob.has_magic(source))
        self._last_line: dict[str, float] = {source: now for source in sensors}
        self._silent: dict[str, bool] = {source: False for source in sensors}
        self._router: dict[str, RouterState] = {}  # what was last told (or learnt) per router
        self._guard_tripped = False  # a trip was told: its resume will be
        self._windows: dict[str, _Window] = {}
        self.suppressed = 0  # events that repeated what is already known

    def carry_over(self, previous: Digester) -> None:
        """After a reload: what the old one knew (routers down, silent files), so nothing is told twice."""
        self._router.update(previous._router)
        self._guard_tripped = previous._guard_tripped
        for source, last in previous._last_line.items():
            if source in self._last_line or (source not in previous._patterns and self._pattern_of(source)):
                self._last_line[source] = last
                self._silent[source] = previous._silent[source]
        for pattern in previous._patterns:
            if pattern in self._patterns and pattern not in previous._last_line:  # retired: its files speak
                self._retire(pattern, None, 0.0)

    # -- in ----------------------------------------------------------------------------------

    def wants(self, event: object) -> bool:
        """Cheap filter for the publisher's thread: is this event worth queueing?"""
        if isinstance(event, Decided):
            return "block" in self.events and event.decision.action == "block"
        if isinstance(event, RouterChanged):
            return bool(self.events & {"router_down", "router_up"})
        if isinstance(event, BlockLifted):
            return "unblock" in self.events
        if isinstance(event, FloodGuardChanged):
            return "flood_guard" in self.events
        if isinstance(event, (SnortRestarted, TzspdUnreachable)):  # from the tzspd poller, not the feed
            return "snort_restarted" in self.events
        if isinstance(event, StateTrouble):
            return "state" in self.events
        return False

    def offer(self, event: object, now: float) -> None:
        if not self.wants(event):
            return
        if isinstance(event, Decided):
            self._batch("block", BlockBatch, now).add(event)
        elif isinstance(event, BlockLifted):
            self._batch("unblock", UnblockBatch, now).add(event)
        elif isinstance(event, FloodGuardChanged):
            self._guard_changed(event, now)
        elif isinstance(event, RouterChanged):
            self._router_changed(event, now)
        elif isinstance(event, (SnortRestarted, TzspdUnreachable)):
            self._batch("snort", RestartBatch, now).add(event)
        elif isinstance(event, StateTrouble):
            self._batch("state", StateBatch, now).add(event)

    def lines_seen(self, last_line: dict[str, float], now: float) -> None:
        """The latest line time per followed file (kept by the shell without queueing every line)."""
        if self.silent_after is None:
            return
        for source, at in last_line.items():
            if source not in self._last_line:
                pattern = self._pattern_of(source)
                if pattern is None or len(self._last_line) >= MAX_SENSORS:
                    continue
                self._last_line[source], self._silent[source] = at, False
                self._retire(pattern, at if self._silent.get(pattern) else None, now)
                continue
            if at <= self._last_line[source]:
                continue
            self._last_line[source] = at
            if self._silent[source]:
                self._silent[source] = False
                self._sensor(SensorChanged(source, False, at, since=at), now)

    def _pattern_of(self, source: str) -> str | None:
        return next((p for p in self._patterns if fnmatch.fnmatchcase(source, p)), None)

    def _retire(self, pattern: str, spoke_at: float | None, now: float) -> None:
        """A file of ``pattern`` spoke: the pattern stops being a sensor (told back if it was silent)."""
        if pattern in self._last_line:
            del self._last_line[pattern]
            del self._silent[pattern]
        if spoke_at is not None:
            self._sensor(SensorChanged(pattern, False, spoke_at, since=spoke_at), now)

    # -- out ---------------------------------------------------------------------------------

    def due(self, now: float) -> list[Message]:
        """The messages whose time has come."""
        self._check_silence(now)
        out = []
        for kind, window in self._windows.items():
            if window.first_at is None:
                continue
            if now >= max(window.first_at + self.settle, window.last_sent + self.min_interval):
                out.append(self._render(kind, window, now))
        return [m for m in out if m is not None]

    def flush(self, now: float) -> list[Message]:
        """Everything still gathered (at stop): nothing that happened is left untold."""
        out = [self._render(kind, w, now) for kind, w in self._windows.items() if w.first_at is not None]
        return [m for m in out if m is not None]

    def next_due(self, now: float) -> float | None:
        """When ``due`` may next have something (for the shell's sleep)."""
        times = [
            max(w.first_at + self.settle, w.last_sent + self.min_interval)
            for w in self._windows.values()
            if w.first_at is not None
        ]
        if self.silent_after is not None:
            times += [at + self.silent_after for source, at in self._last_line.items() if not self._silent[source]]
        return min(times) if times else None

    # -- inside ------------------------------------------------------------------------------

    def _batch(self, kind: str, make: Callable[[], object], now: float, settled: bool = False):
        window = self._windows.setdefault(kind, _Window())
        if window.first_at is None:  # ``settled``: found by looking at the clock, nothing to wait for
            window.first_at, window.batch = (now - self.settle if settled else now), make()
        return window.batch

    def _router_changed(self, event: RouterChanged, now: float) -> None:
        known = self._router.get(event.router)
        if known is not None and known.up == event.up:
            self.suppressed += 1  # e.g. a new worker after a reload reports what we know
            return
        state = RouterState(event.up, event.at, event.error, getattr(event, "pending", None))
        self._router[event.router] = state
        if known is None and event.up:
            return  # the first connection at start is not news
        if ("router_up" if event.up else "router_down") not in self.events:
            return
        batch = self._batch("router", RouterBatch, now)
        news = batch.news.setdefault(event.router, RouterNews(was=known))
        news.changes += 1
        news.now = state
        if not event.up and news.first_down is None:
            news.first_down = event.at
        batch.count += 1

    def _guard_changed(self, event: FloodGuardChanged, now: float) -> None:
        if not event.tripped and not self._guard_tripped:
            self.suppressed += 1  # a resume whose trip was never told: a trip is always told
            return
        self._guard_tripped = event.tripped
        batch = self._batch("flood_guard", GuardBatch, now)
        batch.changes.append(event)
        batch.count += 1

    def _check_silence(self, now: float) -> None:
        if self.silent_after is None:
            return
        for source, last in self._last_line.items():
            if not self._silent[source] and now - last >= self.silent_after:
                self._silent[source] = True
                self._sensor(SensorChanged(source, True, now, since=last), now)

    def _sensor(self, change: SensorChanged, now: float) -> None:
        batch = self._batch("sensor", SensorBatch, now, settled=True)
        batch.news[change.source] = change
        batch.changes[change.source] += 1
        batch.count += 1

    def _render(self, kind: str, window: _Window, now: float) -> Message | None:
        batch, window.batch, window.first_at = window.batch, None, None
        window.last_sent = now
        voice = self.voice
        render = {
            "block": voice.tell_blocks,
            "unblock": voice.tell_unblocks,
            "router": voice.tell_routers,
            "flood_guard": voice.tell_guard,
            "sensor": voice.tell_sensors,
            "snort": lambda batch, now: tell_restarts(voice.title, batch, now),
            "state": lambda batch, now: tell_state(voice.title, batch, now),
        }[kind]
        return render(batch, now)
