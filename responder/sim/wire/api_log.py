"""routeros-sim's ``/log`` on the API: ``/log/print`` and the long-running ``/log/listen``.

``/log/print`` answers one ``!re`` per entry in memory (``.id``, ``time``, ``topics``,
``message``; ``?`` queries and ``.proplist`` as for every print), then ``!done``. ``/log/listen``
answers nothing at first and then one ``!re`` per new entry, under its ``.tag``, until
``/cancel =tag=`` ends it (``!trap =category=2 =message=interrupted``, ``!done``), the client
leaves, or the router reboots (which closes every connection). The server polls ``pending()``
between reads. One connection holds at most ``MAX_LISTENS`` listens.
"""

from __future__ import annotations

from responder.sim.router.memory_log import MemoryLog, api_row
from responder.sim.router.state import StateError
from responder.sim.wire.api_protocol import Request, compile_query, reply_words

MAX_LISTENS = 8
COMMANDS = frozenset({"/log/print", "/log/getall", "/log/listen"})


class LogListens:
    """One connection's ``/log`` commands and the listens it has running."""

    def __init__(self, memory: MemoryLog, clock) -> None:
        self._memory = memory
        self._clock = clock
        self._listens: dict[str | None, tuple[int, int]] = {}  # tag -> cursor

    def takes(self, request: Request) -> bool:
        if request.command == "/cancel":
            return request.attributes.get("tag") in self._listens
        return request.command in COMMANDS

    def handle(self, request: Request) -> list[list[str]]:
        """The replies to a ``/log`` command or to the ``/cancel`` of a listen (read policy checked by the caller)."""
        tag = request.tag
        if request.command == "/cancel":
            cancelled = request.attributes["tag"]
            del self._listens[cancelled]
            return [
                reply_words("!trap", {"category": "2", "message": "interrupted"}, cancelled),
                reply_words("!done", tag=cancelled),
                reply_words("!done", tag=tag),
            ]
        if request.command == "/log/listen":
            if len(self._listens) >= MAX_LISTENS or tag in self._listens:
                raise StateError("failure: too many listens on this connection")
            self._listens[tag] = self._memory.cursor()
            return []
        wanted = compile_query(request.queries)
        now = self._clock()
        rows = [row for row in (api_row(e, now) for e in self._memory.entries()) if wanted(row)]
        if request.proplist is not None:
            rows = [{k: r[k] for k in request.proplist if k in r} for r in rows]
        return [reply_words("!re", row, tag) for row in rows] + [reply_words("!done", tag=tag)]

    def pending(self) -> list[list[str]]:
        """``!re`` sentences for the entries added since each listen last looked (no waiting)."""
        out: list[list[str]] = []
        now = self._clock()
        for tag, cursor in list(self._listens.items()):
            moved, fresh = self._memory.after(cursor, 0)
            if fresh is None:  # rebooted: the connection is about to close anyway
                continue
            self._listens[tag] = moved
            out.extend(reply_words("!re", api_row(entry, now), tag) for entry in fresh)
        return out
