"""`snort-bridge check [--json] [FILE|-]`: how each alert line parses and what the policy decides.

Like fail2ban-regex for filters: feed it alert lines (a file, or stdin), see per line the parsed
fields, the decision (block whom, or ignore) and why, including how the attacker end was chosen.
A line that is not an alert is reported with its number and the check goes on. The policy runs
on the alerts' own clock where they carry a time (blocks end, repeat offenders escalate). ``check_lines``
is the pure core; the command around it is ``bridge.cli.check``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from bridge.decide.policy import Policy
from bridge.events import Alert, Decision, Origin
from bridge.parsers import UnparsableLine, parse_line
from responder.routeros.duration import format_duration

JSON_KEYS = (
    "format", "gid", "sid", "rev", "msg", "priority", "classification", "proto",
    "src", "sport", "dst", "dport", "decision", "target", "why", "attribution", "line",
    "block_for", "duration",
)  # fmt: skip


@dataclass(frozen=True)
class CheckedLine:
    """One input line: its number, and either the alert with its decision or why it is no alert."""

    number: int
    decision: Decision | None = None
    error: str | None = None
    noise: bool = False

    @property
    def alert(self) -> Alert | None:
        return self.decision.alert if self.decision else None


def check_lines(
    lines: Iterable[bytes | str],
    policy: Policy,
    source: str = "-",
    fmt: str = "auto",
    clock: Callable[[], float] = time.time,
) -> Iterator[CheckedLine]:
    """Parse and decide each line in turn (the policy keeps its state across lines, as in `run`)."""
    offset = 0
    for number, raw in enumerate(lines, start=1):
        size = len(raw)
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        text = text.rstrip("\r\n")
        origin = Origin(source, offset, number)
        offset += size
        if not text.strip():
            continue
        try:
            alert = parse_line(text, origin, fmt)
        except UnparsableLine as exc:
            yield CheckedLine(number, error=exc.reason, noise=exc.noise)
            continue
        yield CheckedLine(number, decision=policy.decide(alert, _alert_time(alert) or clock()))


def as_json(item: CheckedLine) -> dict[str, object]:
    """The --json object of an alert line: exactly JSON_KEYS."""
    decision = item.decision
    assert decision is not None
    alert = decision.alert
    return {
        "format": alert.format,
        "gid": alert.gid,
        "sid": alert.sid,
        "rev": alert.rev,
        "msg": alert.msg,
        "priority": alert.priority,
        "classification": alert.classification,
        "proto": alert.proto,
        "src": _address(alert.src),
        "sport": alert.sport,
        "dst": _address(alert.dst),
        "dport": alert.dport,
        "decision": decision.action,
        "target": _address(decision.target),
        "why": decision.why,
        "attribution": decision.attribution,
        "line": item.number,
        "block_for": decision.block_for if decision.action == "block" else None,  # seconds
        "duration": _duration(decision),  # "16h: 3rd offence; rule 1:1000122 sets 1h; ×16"
    }


def as_text(item: CheckedLine) -> str:
    """Two lines per alert (what parsed, what was decided), one per non-alert."""
    if item.decision is None:
        kind = "skipped" if item.noise else "NOT PARSED"
        return f"line {item.number}: {kind}: {item.error}"
    alert, decision = item.alert, item.decision
    assert alert is not None
    ends = f"{_endpoint(alert.src, alert.sport)} -> {_endpoint(alert.dst, alert.dport)}"
    extra = f" [{alert.classification}]" if alert.classification else ""
    parsed = (
        f"line {item.number}: {alert.format} {alert.gid}:{alert.sid}:{alert.rev} {json.dumps(alert.msg, ensure_ascii=False)}"
        f"{extra} priority {alert.priority if alert.priority is not None else '-'} {alert.proto or '-'} {ends}"
    )
    verdict = f"BLOCK {decision.target}" if decision.action == "block" else "ignore"
    duration = f"\n     duration {_duration(decision)}" if decision.action == "block" else ""
    return f"{parsed}\n  => {verdict}: {decision.why}{duration}"


class Tally:
    """Counts for the closing summary line, without keeping every line."""

    def __init__(self) -> None:
        self.alerts = 0
        self.unparsable = 0
        self.blocked: dict[str, None] = {}  # ordered set

    def add(self, item: CheckedLine) -> None:
        if item.decision is None:
            self.unparsable += 0 if item.noise else 1
            return
        self.alerts += 1
        if item.decision.action == "block":
            self.blocked[str(item.decision.target)] = None

    def __str__(self) -> str:
        blocked = ", ".join(self.blocked) or "nobody"
        return f"{self.alerts} alert(s), {self.unparsable} unparsable line(s); blocked: {blocked}"


# -- the subcommand ---------------------------------------------------------------------------


def _alert_time(alert: Alert) -> float | None:
    """The alert's own time: a file of alerts over days replays with its blocks ending and repeat
    offenders escalating as they did, not as if every line arrived this second."""
    if alert.time is None:
        return None
    try:
        return alert.time.timestamp()
    except (OverflowError, ValueError, OSError):
        return None


def _duration(decision: Decision) -> str | None:
    if decision.action != "block":
        return None
    text = format_duration(decision.block_for)
    return f"{text}: {decision.duration_why}" if decision.duration_why else text


def _address(value: object) -> str | None:
    return None if value is None else str(value)


def _endpoint(address: object, port: int | None) -> str:
    if address is None:
        return "-"
    text = f"[{address}]" if ":" in str(address) and port is not None else str(address)
    return f"{text}:{port}" if port is not None else text
