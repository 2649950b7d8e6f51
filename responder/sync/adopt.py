"""Which entries of a router's listing are ours, and until when: the pure half of taking them
back into a new ledger (the ledger half is ``responder.ledger.adoption``).

Ours are those whose comment starts with ``tzsp-ips`` (``make_comment``): ``tzsp-ips [sid] reason``
with a RouterOS timeout (it ends when that runs out), or, static, ``tzsp-ips [sid] until
2026-12-24 18:00Z: reason`` (it ends then). A static entry of ours without a readable end, and
every entry without our comment, is left alone: it was not ours to time.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Mapping

from responder.events import IPAddress
from responder.ledger.adoption import Adopted
from responder.sync.plan import COMMENT_PREFIX

_COMMENT = re.compile(
    rf"^{COMMENT_PREFIX}(?: \[(?P<sid>[^\]]*)\])?(?: until (?P<until>\d{{4}}-\d\d-\d\d \d\d:\d\d)Z:)? ?(?P<reason>.*)$"
)


def parse_comment(comment: str) -> tuple[str, str, float | None] | None:
    """(sid, reason, until as a UNIX time or None) for one of our comments; None for anyone else's."""
    match = _COMMENT.match(comment.strip())
    if match is None:
        return None
    until = match.group("until")
    end = calendar.timegm(time.strptime(until, "%Y-%m-%d %H:%M")) if until else None
    return match.group("sid") or "", match.group("reason").strip(), float(end) if end is not None else None


def ours(listing: Mapping[IPAddress, object], now: float) -> list[Adopted]:
    """The entries of ``listing`` (normalised, by host address) that we added and that still run."""
    found = []
    for address, entry in listing.items():
        parsed = parse_comment(str(getattr(entry, "comment", "")))
        if parsed is None or getattr(entry, "disabled", False):
            continue
        sid, reason, until = parsed
        timeout = getattr(entry, "timeout_s", None)
        if timeout is not None:
            found.append(Adopted(address, now + float(timeout), False, sid, reason))
        elif until is not None and until > now:
            found.append(Adopted(address, until, True, sid, reason))
    return found
