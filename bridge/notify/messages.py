"""The messages themselves: what each kind gathers until it is told, and the words a person acts on.

Pure, like the digester that decides when: ``Voice`` turns a gathered batch into a ``Message``
(title and plain-text body) that says what happened, to whom, why, where, until when, and the
command that undoes it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bridge.notify.text import listing, plural, span, utc
from responder.feed import BlockLifted, Decided, FloodGuardChanged

TOP = 10  # rules and addresses named in a digest
TRACKED = 1000  # distinct addresses / rules counted per digest; more are summed as "others"


@dataclass(frozen=True)
class Message:
    kind: str  # "block" | "unblock" | "router" | "flood_guard" | "sensor" | "snort" | "test"
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


class BlockBatch:
    def __init__(self) -> None:
        self.count = 0
        self.first: Decided | None = None
        self.rules: Counter = Counter()
        self.rule_text: dict[str, str] = {}
        self.addresses: Counter = Counter()
        self.others = 0  # blocks of addresses beyond TRACKED distinct ones
        self.sensors: dict[str, None] = {}
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


class UnblockBatch:
    def __init__(self) -> None:
        self.count = 0
        self.lifted: dict[object, BlockLifted] = {}  # address -> the latest lift
        self.others = 0

    def add(self, event: BlockLifted) -> None:
        if event.address in self.lifted or len(self.lifted) < TRACKED:
            self.lifted[event.address] = event
        else:
            self.others += 1
        self.count += 1


@dataclass
class RouterState:
    up: bool
    since: float
    error: str | None = None
    pending: int | None = None  # up: what was waiting for it as it connected


@dataclass
class RouterNews:
    changes: int = 0
    was: RouterState | None = None  # the state last told (None: never told)
    now: RouterState | None = None
    first_down: float | None = None  # the first "down" within the window


class RouterBatch:
    def __init__(self) -> None:
        self.news: dict[str, RouterNews] = {}
        self.count = 0


class SensorBatch:
    def __init__(self) -> None:
        self.news: dict[str, SensorChanged] = {}  # latest per source
        self.changes: Counter = Counter()
        self.count = 0


class GuardBatch:
    def __init__(self) -> None:
        self.changes: list[FloodGuardChanged] = []  # trips and resumes, in order (at most 2 per quiet minute)
        self.count = 0


# -- the words -----------------------------------------------------------------------------------


class Voice:
    """Renders batches as messages for one host and its routers."""

    def __init__(
        self,
        host: str = "",
        routers: Sequence[str] = (),
        pending_blocks: Callable[[str], int | None] = lambda router: None,
    ) -> None:
        self.host = host
        self.routers = tuple(routers)
        self.pending_blocks = pending_blocks

    def title(self, text: str) -> str:
        return f"tzsp-ips{'@' + self.host if self.host else ''}: {text}"

    def where(self) -> str:
        return listing(self.routers) if self.routers else "no router (decisions are only logged)"

    def tell_blocks(self, batch: BlockBatch, now: float) -> Message:
        if batch.count == 1:
            return self.tell_one_block(batch.first)
        lines = [
            f"{plural(batch.count, 'block')} on {self.where()} between {utc(batch.started, date=False)} "
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
            lines.append(
                f"  ... {plural(distinct - min(distinct, TOP), 'more address', 'more addresses')}"
                + (f" and {plural(batch.others, 'block')} of addresses not counted one by one" if batch.others else "")
            )
        lines += [
            "",
            f"Sensors: {listing(batch.sensors)}",
            "Undo one: snort-bridge unblock ADDR; all blocks in force: snort-bridge list",
        ]
        return Message(
            "block",
            self.title(
                f"{plural(batch.count, 'block')} "
                + (f"in {span(batch.ended - batch.started)}" if batch.ended - batch.started >= 1 else "at once")
            ),
            "\n".join(lines),
            "warning",
            batch.count,
        )

    def tell_one_block(self, event: Decided) -> Message:
        decision = event.decision
        alert = decision.alert
        until = event.at + decision.block_for
        flow = ""
        if alert.src is not None and alert.dst is not None:
            ports = (
                (f":{alert.sport}", f":{alert.dport}")
                if alert.sport is not None and alert.dport is not None
                else ("", "")
            )
            flow = f"{alert.proto or ''} {alert.src}{ports[0]} -> {alert.dst}{ports[1]}".strip()
        priority = f" (priority {alert.priority})" if alert.priority is not None else ""
        lines = [
            f"Blocked {decision.target} on {self.where()} until {utc(until)} ({span(decision.block_for)}).",
            "",
            f"Rule:     {alert.gid_sid} {alert.msg}{priority}",
            f"Why:      {decision.why}",
        ]
        if decision.attribution:
            lines.append(f"Attacker: {decision.attribution}")
        if flow:
            lines.append(f"Alert:    {flow}")
        lines += [
            f"Sensor:   {alert.origin}",
            f"At:       {utc(event.at)}",
            "",
            f"Undo:     snort-bridge unblock {decision.target}",
        ]
        return Message("block", self.title(f"blocked {decision.target} ({alert.msg})"), "\n".join(lines), "warning")

    def tell_unblocks(self, batch: UnblockBatch, now: float) -> Message:
        lines = [
            f"{address} unblocked at {utc(lift.at, date=False)}, {span(lift.was_until - lift.at)} before its end "
            f"({utc(lift.was_until, date=False)}); removed from {self.where()}"
            for address, lift in list(batch.lifted.items())[:TOP]
        ]
        more = len(batch.lifted) - min(len(batch.lifted), TOP)
        if more or batch.others:
            lines.append(f"... and {plural(more + batch.others, 'more address', 'more addresses')}")
        lines += [
            "",
            "By `snort-bridge unblock`. A new alert from it may block it again; "
            "to keep it from being blocked, add it to [policy] protected. Blocks in force: snort-bridge list",
        ]
        if len(batch.lifted) == 1 and not batch.others:
            [address] = batch.lifted
            title = f"unblocked {address}"
        else:
            title = f"{plural(len(batch.lifted) + batch.others, 'address', 'addresses')} unblocked"
        return Message("unblock", self.title(title), "\n".join(lines), "info", batch.count)

    def tell_routers(self, batch: RouterBatch, now: float) -> Message | None:
        lines, downs, ups = [], [], []
        for name, news in batch.news.items():
            state = news.now
            if news.was is not None and news.was.up == state.up and news.changes > 1:
                # told before; it went away and came back (or the reverse) within the interval
                lines.append(
                    f"{name} is {'up' if state.up else 'DOWN'} again after {plural(news.changes, 'change')} "
                    f"(flapping) since {utc(news.was.since, date=False)}"
                    + (f"; last error: {state.error}" if not state.up and state.error else "")
                )
            elif state.up:
                ups.append(name)
                down_since = (
                    news.was.since
                    if news.was is not None and not news.was.up
                    else news.first_down
                    if news.first_down is not None
                    else state.since
                )
                pending = state.pending if state.pending is not None else self.pending_blocks(name)
                catching = (
                    f"; {plural(pending, 'pending block')} catching up now"
                    if pending
                    else "; nothing pending"
                    if pending == 0
                    else ""
                )
                lines.append(
                    f"{name} is reachable again after {span(state.since - down_since)} down "
                    f"(since {utc(down_since, date=False)}){catching}"
                    + (f" [{news.changes} changes]" if news.changes > 1 else "")
                )
            else:
                downs.append(name)
                lines.append(
                    f"{name} is UNREACHABLE since {utc(state.since)}: {state.error or 'no answer'}"
                    + (f" [{news.changes} changes]" if news.changes > 1 else "")
                )
        if downs:
            lines += [
                "",
                "Blocks for a router that is down wait in the ledger and are sent when it is back. "
                "Check: snort-bridge routers",
            ]
        if len(batch.news) == 1:
            [name] = batch.news
            title = f"router {name} " + ("down" if downs else "up" if ups else "flapping")
        else:
            title = f"routers: {len(downs)} down, {len(ups)} up" + (
                f", {len(batch.news) - len(downs) - len(ups)} flapping"
                if len(batch.news) > len(downs) + len(ups)
                else ""
            )
        return Message("router", self.title(title), "\n".join(lines), "failure" if downs else "success", batch.count)

    def tell_guard(self, batch: GuardBatch, now: float) -> Message:
        lines = []
        for change in batch.changes[-TOP:]:
            if change.tripped:
                lines.append(f"{utc(change.at)}: {change.description}")
                if change.rolled_back:
                    lines.append(f"  rolled back: {listing(map(str, change.rolled_back), TOP)}")
            else:
                lines.append(f"{utc(change.at)}: {self._resumed(change)}")
        last = batch.changes[-1]
        if last.tripped:
            lines += [
                "",
                "New blocks are held until a quiet minute; alerts are still logged. "
                "Blocks in force: snort-bridge list; block by hand: snort-bridge block ADDR",
            ]
            return Message(
                "flood_guard",
                self.title("FLOOD GUARD tripped: blocking stopped"),
                "\n".join(lines),
                "failure",
                batch.count,
            )
        lines += [
            "",
            "New alerts block again. The addresses held back were not blocked: those that keep attacking "
            "are blocked by their next alert; the others are in the log (journalctl -u snort-bridge | grep "
            "'FLOOD GUARD'). Blocks in force: snort-bridge list",
        ]
        tripped_too = " tripped and" if any(change.tripped for change in batch.changes) else ""
        return Message(
            "flood_guard",
            self.title(
                f"FLOOD GUARD{tripped_too} cleared: blocking resumed after "
                f"{self._held_for(last)}; {plural(last.held, 'block decision')} held back"
            ),
            "\n".join(lines),
            "success",
            batch.count,
        )

    @staticmethod
    def _held_for(resume: FloodGuardChanged) -> str:
        return span(resume.at - resume.since) if resume.since is not None else "a quiet minute"

    def _resumed(self, resume: FloodGuardChanged) -> str:
        since = f" (it held since {utc(resume.since, date=False)})" if resume.since is not None else ""
        how = "a reload replaced it" if "reload" in resume.description else "a quiet minute passed"
        return (
            f"blocking resumed after {self._held_for(resume)}{since}: {how}; "
            f"{plural(resume.held, 'block decision')} held back meanwhile"
        )

    def tell_sensors(self, batch: SensorBatch, now: float) -> Message:
        lines, silent = [], 0
        for source, change in batch.news.items():
            flapped = f" [{batch.changes[source]} changes]" if batch.changes[source] > 1 else ""
            if change.silent:
                silent += 1
                lines.append(
                    f"{source}: no line for {span(change.at - change.since)}, the last at {utc(change.since)}{flapped}"
                )
            else:
                lines.append(f"{source}: lines again since {utc(change.at)}{flapped}")
        if silent:
            lines += [
                "",
                "Is Snort running, and is TZSP still arriving? Check: systemctl status snort tzspd; "
                "or the network may just be quiet (raise [notify] silent_after)",
            ]
        title = (
            f"sensor silent: {listing(batch.news, 2)}"
            if silent == len(batch.news)
            else f"sensor back: {listing(batch.news, 2)}"
            if not silent
            else f"{silent} sensor(s) silent, {len(batch.news) - silent} back"
        )
        return Message("sensor", self.title(title), "\n".join(lines), "warning" if silent else "success", batch.count)


def test_message(host: str = "") -> Message:
    return Message(
        "test",
        f"tzsp-ips{'@' + host if host else ''}: test message",
        "This is a test from `snort-bridge notify test`: this address receives tzsp-ips notifications.",
    )
