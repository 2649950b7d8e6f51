"""routeros-sim's ``/log print`` over SSH exec, with ``follow`` and ``follow-only``.

``/log print [follow | follow-only] [where topics~"REGEX"]``: one ``time topics message`` line
per entry (memory_log.print_line), CRLF. Without ``follow`` the channel closes after the
entries in memory; ``follow`` prints those and then each new entry as it comes, ``follow-only``
only the new ones, until the client closes the channel, the server stops or the router reboots
(which drops every connection).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import paramiko

from responder.sim.router.memory_log import LogEntry, MemoryLog, print_line, topics_match

_LOG_PRINT_RE = re.compile(
    r"^\s*/log(?: |/)print(?P<flags>(?:\s+(?:follow-only|follow|without-paging))*)"
    r'(?:\s+where\s+topics~"(?P<topics>[^"\\]*)")?\s*$'
)
_POLL = 0.2  # seconds between looks at whether the client is still there


@dataclass(frozen=True)
class LogPrint:
    follow: bool
    only_new: bool
    topics: str | None


def log_print_request(command: str) -> LogPrint | None:
    """The ``/log print`` this exec line asks for, or None when it is something else."""
    match = _LOG_PRINT_RE.match(command)
    if not match:
        return None
    flags = match["flags"].split()
    return LogPrint("follow" in flags or "follow-only" in flags, "follow-only" in flags, match["topics"])


def serve_log_print(
    channel: paramiko.Channel, memory: MemoryLog, request: LogPrint, clock, stopping: threading.Event
) -> None:
    wanted = topics_match(request.topics) if request.topics is not None else (lambda entry: True)

    def send(entries: list[LogEntry]) -> None:
        now = clock()
        text = "".join(print_line(e, now) + "\r\n" for e in entries if wanted(e))
        if text:
            channel.sendall(text.encode("utf-8"))

    cursor, entries = memory.snapshot()
    if not request.only_new:
        send(entries)
    if not request.follow:
        channel.send_exit_status(0)
        return
    while not stopping.is_set() and not channel.closed and not channel.eof_received:
        cursor, fresh = memory.after(cursor, _POLL)
        if fresh is None:
            return  # rebooted
        send(fresh)
