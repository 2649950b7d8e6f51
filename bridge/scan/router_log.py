"""Which entries of a router's own log are new: each line reaches the detector once, across
disconnects and reboots of the router.

What identifies an entry:
- API: ``.id`` (``*1A``), increasing within one boot. A reconnect lists the memory again and
  takes what lies past the last id taken. A reboot empties the memory and starts the ids over:
  it shows as a later boot time (now - uptime), as the last id taken now naming another
  message, or as ids lower than it; then everything listed is new.
- SSH (``/log print follow``): no id; time and message (with topics) are the identity. A
  reconnect prints the memory again and what was seen is skipped. Two identical messages in the
  same second count once, which the distinct-port detector would not count twice anyway.

Pure: entries are anything with ``id``, ``time``, ``topics``, ``message``
(responder.transport.log_stream.RouterLogEntry). Bounded: ``SeenGate`` remembers ``REMEMBER`` keys.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

REMEMBER = 10_000  # keys an SshGate keeps: several times a router's memory-lines (1000 by default)
BOOT_SLACK = 5.0  # seconds of disagreement between our clock and the router's uptime we ignore


def _number(entry_id: str | None) -> int | None:
    try:
        return int(entry_id.lstrip("*"), 16) if entry_id else None
    except ValueError:
        return None


class ApiGate:
    """New entries from ``/log/print`` + ``/log/listen``, by ``.id`` within a boot."""

    def __init__(self) -> None:
        self.last: int | None = None
        self.last_key: tuple[str, str] | None = None
        self.booted_at: float | None = None

    def opened(self, uptime: float | None, backlog: Sequence[Any], now: float) -> list[Any]:
        """The entries of a fresh connection's listing (and listen) that were not taken before."""
        booted_at = None if uptime is None else now - uptime
        rebooted = self.booted_at is not None and booted_at is not None and booted_at - self.booted_at > BOOT_SLACK
        if booted_at is not None:
            self.booted_at = booted_at if self.booted_at is None or rebooted else self.booted_at
        if self.last is not None and not rebooted:
            same = next((e for e in backlog if _number(e.id) == self.last), None)
            numbers = [n for n in (_number(e.id) for e in backlog) if n is not None]
            rebooted = (same is not None and (same.topics, same.message) != self.last_key) or (
                bool(numbers) and max(numbers) < self.last  # the ids went back
            )
        if rebooted:
            self.last = self.last_key = None
        return self.take(backlog)

    def take(self, entries: Iterable[Any]) -> list[Any]:
        """Entries past the last one taken, in id order, each once."""
        fresh: dict[int, Any] = {}
        for entry in entries:
            number = _number(entry.id)
            if number is not None and (self.last is None or number > self.last):
                fresh.setdefault(number, entry)
        ordered = [fresh[n] for n in sorted(fresh)]
        if ordered:
            self.last = max(fresh)
            self.last_key = (ordered[-1].topics, ordered[-1].message)
        return ordered


class SshGate:
    """New lines from ``/log print follow``, by time, topics and message."""

    def __init__(self, remember: int = REMEMBER) -> None:
        self._seen: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._remember = remember

    def opened(self, uptime: float | None, backlog: Sequence[Any], now: float) -> list[Any]:
        return self.take(backlog)

    def take(self, entries: Iterable[Any]) -> list[Any]:
        fresh = []
        for entry in entries:
            key = (entry.time, entry.topics, entry.message)
            if key in self._seen:
                continue
            self._seen[key] = None
            if len(self._seen) > self._remember:
                self._seen.popitem(last=False)
            fresh.append(entry)
        return fresh
