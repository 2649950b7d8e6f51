"""Feed events in, messages out: what to tell the people on call, and when. Pure: no sockets, no threads.

Events fall into kinds (blocks, unblocks, routers, the flood guard, sensors). Per kind, the first
event after a quiet ``min_interval`` goes out once it has settled (``SETTLE``, a couple of seconds,
so a burst's first instants and the same address leaving several routers make one message);
whatever comes within ``min_interval`` after a message is gathered and sent as one digest when the
interval is over. A kind's storm thus gives one message per ``min_interval``, and different kinds
never hold each other up: a router going down is not queued behind a storm of blocks.

The same event is never told twice: a router reported down while already known to be down (a new
worker after a reload) is dropped, a router "up" is only told after a "down", and a silent sensor
is told once per silence.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from bridge.notify.text import listing, plural, span, utc
from responder.feed import BlockLifted, Decided, FloodGuardChanged, RouterChanged

SETTLE = 2.0  # seconds a kind's first event waits for company before it goes out
TOP = 10  # rules and addresses named in a digest
TRACKED = 1000  # distinct addresses / rules counted per digest; more are summed as "others"


@dataclass(frozen=True)
class Message:
    kind: str  # "block" | "unblock" | "router" | "flood_guard" | "sensor" | "test"
    title: str
    body: str
    severity: str = "info"  # info | success | warning | failure (apprise's notify types)
    events: int = 1  # how many events it tells of


@dataclass(frozen=True)
class SensorChanged:
    """A followed alert file fell silent for ``silent_after`` (``silent``), or spoke again."""

    source: str
    silent: bool
    at: float
    since: float  # the last line before the silence


# -- what each kind gathers until its message goes out ----------------------------------------


class _Blocks:
    def __init__(self) -> None:
        self.count = 0
        self.first: Optional[Decided] = None
        self.rules: Counter = Counter()
        self.rule_text: Dict[str, str] = {}
        self.addresses: Counter = Counter()
        self.others = 0  # blocks of addresses beyond TRACKED distinct ones
        self.sensors: Dict[str, None] = {}
        self.started = self.ended = 0.0
        self.longest_until = 0.0

    def add(self, event: Decided) -> None:
        decision = event.decision
        alert = decision.alert
        self.count += 1
        if self.first is None:
            self.first, self.started = event, event.at
        self.ended = event.at
        self.longest_until = max(self.longest_until, event.at + decision.block_for)
        rule = alert.gid_sid
        if rule in self.rules or len(self.rules) < TRACKED:
            self.rules[rule] += 1
            self.rule_text.setdefault(rule, alert.msg)
        if decision.target in self.addresses or len(self.addresses) < TRACKED:
            self.addresses[decision.target] += 1
        else:
            self.others += 1
        if len(self.sensors) < TRACKED:
            self.sensors.setdefault(alert.origin.source, None)


class _Unblocks:
    def __init__(self) -> None:
        self.count = 0
        self.lifted: Dict[object, BlockLifted] = {}  # address -> the latest lift
        self.others = 0

    def add(self, event: BlockLifted) -> None:
        if event.address in self.lifted or len(self.lifted) < TRACKED:
            self.lifted[event.address] = event
        else:
            self.others += 1
        self.count += 1


@dataclass
class _RouterState:
    up: bool
    since: float
    error: Optional[str] = None
    pending: Optional[int] = None  # up: what was waiting for it as it connected


@dataclass
class _RouterNews:
    changes: int = 0
    was: Optional[_RouterState] = None  # the state last told (None: never told)
    now: Optional[_RouterState] = None
    first_down: Optional[float] = None  # the first "down" within the window


class _Routers:
    def __init__(self) -> None:
        self.news: Dict[str, _RouterNews] = {}
        self.count = 0


class _Sensors:
    def __init__(self) -> None:
        self.news: Dict[str, SensorChanged] = {}  # latest per source
        self.changes: Counter = Counter()
        self.count = 0


class _Guard:
    def __init__(self) -> None:
        self.trips: List[FloodGuardChanged] = []
        self.count = 0


@dataclass
class _Window:
    last_sent: float = float("-inf")
    first_at: Optional[float] = None  # when the oldest event still to tell arrived
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
        silent_after: Optional[float] = None,
        host: str = "",
        settle: float = SETTLE,
        pending_blocks: Callable[[str], Optional[int]] = lambda router: None,
    ) -> None:
        self.events = frozenset(events)
        self.min_interval = min_interval
        self.settle = min(settle, min_interval)
        self.routers = tuple(routers)
        self.host = host
        self.pending_blocks = pending_blocks
        self.silent_after = silent_after if "sensor_silent" in self.events else None
        self._last_line: Dict[str, float] = {source: now for source in sensors}
        self._silent: Dict[str, bool] = {source: False for source in sensors}
        self._router: Dict[str, _RouterState] = {}  # what was last told (or learnt) per router
        self._windows: Dict[str, _Window] = {}
        self.suppressed = 0  # events that repeated what is already known

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
            return "flood_guard" in self.events and event.tripped
        return False

    def offer(self, event: object, now: float) -> None:
        if not self.wants(event):
            return
        if isinstance(event, Decided):
            self._batch("block", _Blocks, now).add(event)
        elif isinstance(event, BlockLifted):
            self._batch("unblock", _Unblocks, now).add(event)
        elif isinstance(event, FloodGuardChanged):
            batch = self._batch("flood_guard", _Guard, now)
            batch.trips.append(event)
            batch.count += 1
        elif isinstance(event, RouterChanged):
            self._router_changed(event, now)

    def lines_seen(self, last_line: Dict[str, float], now: float) -> None:
        """The latest line time per followed file (kept by the shell without queueing every line)."""
        if self.silent_after is None:
            return
        for source, at in last_line.items():
            if source not in self._last_line or at <= self._last_line[source]:
                continue
            self._last_line[source] = at
            if self._silent[source]:
                self._silent[source] = False
                self._sensor(SensorChanged(source, False, at, since=at), now)

    # -- out ---------------------------------------------------------------------------------

    def due(self, now: float) -> List[Message]:
        """The messages whose time has come."""
        self._check_silence(now)
        out = []
        for kind, window in self._windows.items():
            if window.first_at is None:
                continue
            if now >= max(window.first_at + self.settle, window.last_sent + self.min_interval):
                out.append(self._render(kind, window, now))
        return [m for m in out if m is not None]

    def flush(self, now: float) -> List[Message]:
        """Everything still gathered (at stop): nothing that happened is left untold."""
        out = [self._render(kind, w, now) for kind, w in self._windows.items() if w.first_at is not None]
        return [m for m in out if m is not None]

    def next_due(self, now: float) -> Optional[float]:
        """When ``due`` may next have something (for the shell's sleep)."""
        times = [max(w.first_at + self.settle, w.last_sent + self.min_interval)
                 for w in self._windows.values() if w.first_at is not None]
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
        state = _RouterState(event.up, event.at, event.error, getattr(event, "pending", None))
        self._router[event.router] = state
        if known is None and event.up:
            return  # the first connection at start is not news
        if ("router_up" if event.up else "router_down") not in self.events:
            return
        batch = self._batch("router", _Routers, now)
        news = batch.news.setdefault(event.router, _RouterNews(was=known))
        news.changes += 1
        news.now = state
        if not event.up and news.first_down is None:
            news.first_down = event.at
        batch.count += 1

    def _check_silence(self, now: float) -> None:
        if self.silent_after is None:
            return
        for source, last in self._last_line.items():
            if not self._silent[source] and now - last >= self.silent_after:
                self._silent[source] = True
                self._sensor(SensorChanged(source, True, now, since=last), now)

    def _sensor(self, change: SensorChanged, now: float) -> None:
        batch = self._batch("sensor", _Sensors, now, settled=True)
        batch.news[change.source] = change
        batch.changes[change.source] += 1
        batch.count += 1

    def _render(self, kind: str, window: _Window, now: float) -> Optional[Message]:
        batch, window.batch, window.first_at = window.batch, None, None
        window.last_sent = now
        render = {"block": self._blocks, "unblock": self._unblocks, "router": self._routers,
                  "flood_guard": self._guard, "sensor": self._sensors}[kind]
        return render(batch, now)

    def _title(self, text: str) -> str:
        return f"tzsp-ips{'@' + self.host if self.host else ''}: {text}"

    def _where(self) -> str:
        return listing(self.routers) if self.routers else "no router (decisions are only logged)"

    # -- the messages ------------------------------------------------------------------------

    def _blocks(self, batch: _Blocks, now: float) -> Message:
        if batch.count == 1:
            return self._one_block(batch.first)
        lines = [
            f"{plural(batch.count, 'block')} on {self._where()} between {utc(batch.started, date=False)} "
            f"and {utc(batch.ended, date=False)}; the last ends by {utc(batch.longest_until)}.",
            "",
            "Top rules:",
            *[f"  {n:>6,}  {rule}  {batch.rule_text[rule]}" for rule, n in batch.rules.most_common(TOP)],
            "",
            "Top addresses:",
            *[f"  {n:>6,}  {address}" for address, n in batch.addresses.most_common(TOP)],
        ]
        distinct = len(batch.addresses)
        if distinct > TOP or batch.others:
            lines.append(f"  ... {plural(distinct - min(distinct, TOP), 'more address', 'more addresses')}"
                         + (f" and {plural(batch.others, 'block')} of addresses not counted one by one" if batch.others else ""))
        lines += ["", f"Sensors: {listing(batch.sensors)}",
                  "Undo one: snort-bridge unblock ADDR; all blocks in force: snort-bridge list"]
        return Message("block", self._title(f"{plural(batch.count, 'block')} in {span(batch.ended - batch.started)}"),
                       "\n".join(lines), "warning", batch.count)

    def _one_block(self, event: Decided) -> Message:
        decision = event.decision
        alert = decision.alert
        until = event.at + decision.block_for
        flow = ""
        if alert.src is not None and alert.dst is not None:
            ports = (f":{alert.sport}", f":{alert.dport}") if alert.sport is not None and alert.dport is not None else ("", "")
            flow = f"{alert.proto or ''} {alert.src}{ports[0]} -> {alert.dst}{ports[1]}".strip()
        priority = f" (priority {alert.priority})" if alert.priority is not None else ""
        lines = [
            f"Blocked {decision.target} on {self._where()} until {utc(until)} ({span(decision.block_for)}).",
            "",
            f"Rule:     {alert.gid_sid} {alert.msg}{priority}",
            f"Why:      {decision.why}",
        ]
        if decision.attribution:
            lines.append(f"Attacker: {decision.attribution}")
        if flow:
            lines.append(f"Alert:    {flow}")
        lines += [f"Sensor:   {alert.origin}", f"At:       {utc(event.at)}", "",
                  f"Undo:     snort-bridge unblock {decision.target}"]
        return Message("block", self._title(f"blocked {decision.target} ({alert.msg})"), "\n".join(lines), "warning")

    def _unblocks(self, batch: _Unblocks, now: float) -> Message:
        lines = [f"{address} unblocked at {utc(lift.at, date=False)}, {span(lift.was_until - lift.at)} before its end "
                 f"({utc(lift.was_until, date=False)}); removed from {self._where()}"
                 for address, lift in list(batch.lifted.items())[:TOP]]
        more = len(batch.lifted) - min(len(batch.lifted), TOP)
        if more or batch.others:
            lines.append(f"... and {plural(more + batch.others, 'more address', 'more addresses')}")
        lines += ["", "By `snort-bridge unblock`. A new alert from it may block it again; "
                  "to keep it from being blocked, add it to [policy] protected. Blocks in force: snort-bridge list"]
        if len(batch.lifted) == 1 and not batch.others:
            [address] = batch.lifted
            title = f"unblocked {address}"
        else:
            title = f"{plural(len(batch.lifted) + batch.others, 'address', 'addresses')} unblocked"
        return Message("unblock", self._title(title), "\n".join(lines), "info", batch.count)

    def _routers(self, batch: _Routers, now: float) -> Optional[Message]:
        lines, downs, ups = [], [], []
        for name, news in batch.news.items():
            state = news.now
            if news.was is not None and news.was.up == state.up and news.changes > 1:
                # told before; it went away and came back (or the reverse) within the interval
                lines.append(f"{name} is {'up' if state.up else 'DOWN'} again after {plural(news.changes, 'change')} "
                             f"(flapping) since {utc(news.was.since, date=False)}"
                             + (f"; last error: {state.error}" if not state.up and state.error else ""))
            elif state.up:
                ups.append(name)
                down_since = (news.was.since if news.was is not None and not news.was.up
                              else news.first_down if news.first_down is not None else state.since)
                pending = state.pending if state.pending is not None else self.pending_blocks(name)
                catching = (f"; {plural(pending, 'pending block')} catching up now" if pending
                            else "; nothing pending" if pending == 0 else "")
                lines.append(f"{name} is reachable again after {span(state.since - down_since)} down "
                             f"(since {utc(down_since, date=False)}){catching}"
                             + (f" [{news.changes} changes]" if news.changes > 1 else ""))
            else:
                downs.append(name)
                lines.append(f"{name} is UNREACHABLE since {utc(state.since)}: {state.error or 'no answer'}"
                             + (f" [{news.changes} changes]" if news.changes > 1 else ""))
        if downs:
            lines += ["", "Blocks for it are kept in the ledger and sent when it is back. Check: snort-bridge routers"]
        if len(batch.news) == 1:
            [name] = batch.news
            title = f"router {name} " + ("down" if downs else "up" if ups else "flapping")
        else:
            title = f"routers: {len(downs)} down, {len(ups)} up" + (f", {len(batch.news) - len(downs) - len(ups)} flapping"
                                                                    if len(batch.news) > len(downs) + len(ups) else "")
        return Message("router", self._title(title), "\n".join(lines), "failure" if downs else "success", batch.count)

    def _guard(self, batch: _Guard, now: float) -> Message:
        lines = []
        for trip in batch.trips[:TOP]:
            lines.append(f"{utc(trip.at)}: {trip.description}")
            if trip.rolled_back:
                lines.append(f"  rolled back: {listing(map(str, trip.rolled_back), TOP)}")
        lines += ["", "New blocks are held until a quiet minute; alerts are still logged. "
                  "Blocks in force: snort-bridge list; block by hand: snort-bridge block ADDR"]
        return Message("flood_guard", self._title("FLOOD GUARD tripped: blocking stopped"), "\n".join(lines),
                       "failure", batch.count)

    def _sensors(self, batch: _Sensors, now: float) -> Message:
        lines, silent = [], 0
        for source, change in batch.news.items():
            flapped = f" [{batch.changes[source]} changes]" if batch.changes[source] > 1 else ""
            if change.silent:
                silent += 1
                lines.append(f"{source}: no line for {span(change.at - change.since)}, the last at {utc(change.since)}{flapped}")
            else:
                lines.append(f"{source}: lines again since {utc(change.at)}{flapped}")
        if silent:
            lines += ["", "Is Snort running, and is TZSP still arriving? Check: systemctl status snort tzspd; "
                      "or the network may just be quiet (raise [notify] silent_after)"]
        title = (f"sensor silent: {listing(batch.news, 2)}" if silent == len(batch.news)
                 else f"sensor back: {listing(batch.news, 2)}" if not silent
                 else f"{silent} sensor(s) silent, {len(batch.news) - silent} back")
        return Message("sensor", self._title(title), "\n".join(lines), "warning" if silent else "success", batch.count)


def test_message(host: str = "") -> Message:
    return Message("test", f"tzsp-ips{'@' + host if host else ''}: test message",
                   "This is a test from `snort-bridge notify test`: this address receives tzsp-ips notifications.")
