"""What the router printed versus the desired items (pure): per item present, missing or different,
each drift with the exact command that fixes it; and what a run of the script changed.

``printed`` maps each menu to its rows in the router's order (``print terse``; a settings menu's
``print`` as one row), from responder.routeros.printed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from responder.provision.items import Item
from responder.provision.render import (
    add_command,
    move_to_top_command,
    remove_command,
    remove_duplicates_command,
    set_command,
    where,
)
from responder.routeros.printed import Row

Printed = Mapping[str, Sequence[Row]]

OK, MISSING, DIFFERENT, DUPLICATE, MISPLACED, UNWANTED, DISABLED = (
    "ok",
    "missing",
    "different",
    "duplicate",
    "misplaced",
    "unwanted",
    "disabled",
)
_COMMA_SETS = frozenset({"policy", "topics", "tcp-flags", "connection-state"})  # order-free; '!x' in policy = lacks x
_TRUE, _FALSE = frozenset({"yes", "true"}), frozenset({"no", "false"})


@dataclass(frozen=True)
class Finding:
    item: Item
    state: str  # ok | missing | different | duplicate | misplaced | unwanted | disabled
    detail: str = ""
    fix: str | None = None

    @property
    def drift(self) -> bool:
        return self.state != OK

    @property
    def line(self) -> str:
        text = f"{self.state}: {self.item.what}"
        if self.detail:
            text += f" ({self.detail})"
        if self.fix:
            text += f"; fix: {self.fix}"
        return text


def read_commands(items: Iterable[Item]) -> list[tuple[str, str]]:
    """(menu, command) that print what the check needs, each menu once."""
    seen: dict[str, str] = {}
    for item in items:
        if item.menu not in seen:
            seen[item.menu] = f"{item.menu} print" if item.singleton else f"{item.menu} print terse"
    return list(seen.items())


def same(prop: str, have: str | None, want: str) -> bool:
    """Equal as RouterOS means it: policy and topics as sets, addresses parsed, yes/true alike."""
    if have is None:
        return False
    if prop in _COMMA_SETS:
        if prop == "policy":
            return {p for p in have.split(",") if p and not p.startswith("!")} == set(want.split(","))
        return set(have.split(",")) == set(want.split(","))
    if want in _TRUE or want in _FALSE:
        return have in (_TRUE if want in _TRUE else _FALSE)
    if have == want:
        return True
    for parse in (ipaddress.ip_address, lambda text: ipaddress.ip_network(text, strict=False)):
        try:
            return parse(have) == parse(want)
        except ValueError:
            continue
    return False


def _matching(item: Item, rows: Sequence[Row]) -> list[tuple[int, Row]]:
    return [(pos, row) for pos, row in enumerate(rows) if all(row.get(k, None) == v for k, v in item.key)]


def _differences(item: Item, row: Row) -> list[tuple[str, str | None, str]]:
    return [
        (name, row.fields.get(name), want) for name, want in item.props if not same(name, row.fields.get(name), want)
    ]


def _accept_above(item: Item, rows: Sequence[Row], position: int) -> Row | None:
    for row in rows[:position]:
        if row.get("chain") == item.top_of and row.get("action") == "accept":
            return row
    return None


def _shown(value: str | None) -> str:
    return "(none)" if value is None else (value or '""')


def check_item(item: Item, printed: Printed) -> Finding:
    rows = printed.get(item.menu, ())
    if item.singleton:
        row = rows[0] if rows else Row(None, "", {})
        diffs = _differences(item, row)
        if not diffs:
            return Finding(item, OK)
        detail = ", ".join(f"{name} is {_shown(have)}, expected {want}" for name, have, want in diffs)
        return Finding(item, DIFFERENT, detail, set_command(item, tuple((n, w) for n, _, w in diffs)))
    found = _matching(item, rows)
    if item.absent:
        if not found:
            return Finding(item, OK, "absent")
        return Finding(item, UNWANTED, f"{len(found)} left from another setting", remove_command(item))
    if not found:
        return Finding(item, MISSING, "", add_command(item))
    position, row = found[0]
    diffs = _differences(item, row)
    if diffs:
        detail = ", ".join(f"{name} is {_shown(have)}, expected {want}" for name, have, want in diffs)
        return Finding(item, DIFFERENT, detail, set_command(item, tuple((n, w) for n, _, w in diffs)))
    if row.disabled:
        return Finding(item, DISABLED, "", f"{item.menu} enable [{item.menu} find {where(item.key)}]")
    if len(found) > 1 and item.can_duplicate:
        return Finding(item, DUPLICATE, f"{len(found)} entries", remove_duplicates_command(item))
    if item.top_of:
        accept = _accept_above(item, rows, position)
        if accept is not None:
            what = f"rule #{accept.index}" if accept.index is not None else "a rule"
            detail = f"below the accept {what} of chain {item.top_of}"
            return Finding(
                item, MISPLACED, detail, move_to_top_command(item.menu, f"[{item.menu} find {where(item.key)}]")
            )
    return Finding(item, OK)


def check(items: Iterable[Item], printed: Printed) -> list[Finding]:
    return [check_item(item, printed) for item in items]


def changes(items: Iterable[Item], before: Printed, after: Printed) -> list[str]:
    """What a run changed, one line per item that changed; empty when nothing did."""
    lines = []
    for item in items:
        if item.singleton:
            old = (before.get(item.menu) or [Row(None, "", {})])[0]
            new = (after.get(item.menu) or [Row(None, "", {})])[0]
            diffs = [
                (n, old.fields.get(n), new.fields.get(n))
                for n, _ in item.props
                if old.fields.get(n) != new.fields.get(n)
            ]
            if diffs:
                lines.append(f"set {item.what}: " + ", ".join(f"{n} {_shown(a)} -> {_shown(b)}" for n, a, b in diffs))
            continue
        old_rows, new_rows = before.get(item.menu, ()), after.get(item.menu, ())
        old, new = _matching(item, old_rows), _matching(item, new_rows)
        if not old and new:
            lines.append(f"added {item.what}")
            continue
        if old and not new:
            lines.append(f"removed {item.what}")
            continue
        if not old:
            continue
        (old_pos, old_row), (new_pos, new_row) = old[0], new[0]
        names = [n for n, _ in item.props]
        diffs = [
            (n, old_row.fields.get(n), new_row.fields.get(n))
            for n in names
            if old_row.fields.get(n) != new_row.fields.get(n)
        ]
        if diffs:
            lines.append(f"changed {item.what}: " + ", ".join(f"{n} {_shown(a)} -> {_shown(b)}" for n, a, b in diffs))
        if len(new) < len(old):
            lines.append(f"removed {len(old) - len(new)} duplicate(s) of {item.what}")
        if old_row.disabled and not new_row.disabled:
            lines.append(f"enabled {item.what}")
        if item.top_of and _accept_above(item, old_rows, old_pos) and not _accept_above(item, new_rows, new_pos):
            lines.append(f"moved {item.what} above the accept rules of chain {item.top_of}")
    return lines
