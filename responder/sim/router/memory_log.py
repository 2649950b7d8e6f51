"""The simulated router's log in memory (``/log``), as RouterOS keeps it.

RouterOS keeps the messages its ``memory`` logging action takes in RAM (``memory-lines``, 1000
by default; the oldest go first) and loses them all in a reboot. ``/log print`` shows each
entry as ``time topics message``: the time alone for today's entries, ``mmm/dd time`` for this
year's, ``mmm/dd/yyyy time`` before (manual, "Log"). ``print follow`` prints what is there and
then every new entry; ``follow-only`` only the new ones. The API's ``/log/print`` and
``/log/listen`` give ``.id``, ``time``, ``topics`` and ``message``; ``.id`` counts up from ``*1``
again after a reboot.

Pure and in memory; a Condition lets the wire's followers wait for the next entry.
"""

from __future__ import annotations

import threading
import time as _time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

MEMORY_LINES = 1000  # the memory action's default memory-lines
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


@dataclass(frozen=True)
class LogEntry:
    number: int  # the internal id: ``.id=*<hex>``
    time: float
    topics: tuple[str, ...]
    message: str

    @property
    def id(self) -> str:
        return f"*{self.number:X}"


def shown_time(at: float, now: float) -> str:
    """How ``/log print`` shows an entry's time (the router's clock is UTC here)."""
    moment, today = _time.gmtime(at), _time.gmtime(now)
    clock = _time.strftime("%H:%M:%S", moment)
    if moment[:3] == today[:3]:
        return clock
    day = f"{_MONTHS[moment.tm_mon - 1]}/{moment.tm_mday:02d}"
    return f"{day} {clock}" if moment.tm_year == today.tm_year else f"{day}/{moment.tm_year} {clock}"


def print_line(entry: LogEntry, now: float) -> str:
    return f"{shown_time(entry.time, now)} {','.join(entry.topics)} {entry.message}"


def api_row(entry: LogEntry, now: float) -> dict[str, str]:
    return {
        ".id": entry.id,
        "time": shown_time(entry.time, now),
        "topics": ",".join(entry.topics),
        "message": entry.message,
    }


def topics_match(pattern: str) -> Callable[[LogEntry], bool]:
    """``where topics~"firewall"``: the regular expression found in the topics as printed."""
    import re

    compiled = re.compile(pattern)
    return lambda entry: compiled.search(",".join(entry.topics)) is not None


class MemoryLog:
    def __init__(self, lines: int = MEMORY_LINES) -> None:
        self._entries: deque[LogEntry] = deque(maxlen=lines)
        self._next = 1
        self._boots = 0  # a follower sees a reboot as a new boot number
        self.followed = False  # someone followed the log (print follow, /log/listen) since start
        self.changed = threading.Condition()

    def add(self, topics: tuple[str, ...], message: str, at: float) -> LogEntry:
        with self.changed:
            entry = LogEntry(self._next, at, tuple(topics), message)
            self._next += 1
            self._entries.append(entry)
            self.changed.notify_all()
            return entry

    def clear(self) -> None:
        """A reboot: the memory is gone and the ids start over."""
        with self.changed:
            self._entries.clear()
            self._next = 1
            self._boots += 1
            self.changed.notify_all()

    def entries(self) -> list[LogEntry]:
        with self.changed:
            return list(self._entries)

    def snapshot(self) -> tuple[tuple[int, int], list[LogEntry]]:
        """The entries in memory and the cursor just after them, taken together."""
        with self.changed:
            return (self._boots, self._next - 1), list(self._entries)

    def cursor(self) -> tuple[int, int]:
        """Where a follow-only starts: (boot, last id)."""
        with self.changed:
            return self._boots, self._next - 1

    def after(self, cursor: tuple[int, int], timeout: float) -> tuple[tuple[int, int], list[LogEntry] | None]:
        """Entries added after ``cursor`` (waiting up to ``timeout`` for one); None once the router
        rebooted since (a follower's session ends with the reboot)."""
        with self.changed:
            self.followed = True
            boot, last = cursor
            if boot == self._boots and self._next - 1 <= last:
                self.changed.wait(timeout)
            if boot != self._boots:
                return cursor, None
            fresh = [e for e in self._entries if e.number > last]
            return (boot, self._next - 1), fresh
