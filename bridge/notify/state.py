"""state: the bridge's own files in trouble, as words. Pure.

A ledger or positions file that cannot be written (the bridge goes on from memory), written again
(and what was done meanwhile recorded), or a ledger found damaged (set aside, rebuilt from the
routers). Each is a ``responder.feed.StateTrouble``; what the bridge already did about it is in
its text, and the message adds what a person should check.
"""

from __future__ import annotations

from collections.abc import Callable

from bridge.notify.messages import Message
from bridge.notify.text import utc
from responder.feed import StateTrouble

MAX_KEPT = 20  # changes told per message (a flapping disk is summed beyond)


class StateBatch:
    def __init__(self) -> None:
        self.changes: list[StateTrouble] = []
        self.count = 0

    def add(self, event: StateTrouble) -> None:
        self.count += 1
        if len(self.changes) < MAX_KEPT:
            self.changes.append(event)


def tell_state(title: Callable[[str], str], batch: StateBatch, now: float) -> Message:
    last = batch.changes[-1]
    lines = [f"{utc(change.at)}: {change.text}" for change in batch.changes]
    if batch.count > len(batch.changes):
        lines.append(f"... and {batch.count - len(batch.changes)} more change(s)")
    lines.append("")
    if last.damaged:
        headline, severity = f"the {last.what} was damaged: set aside and rebuilt from the routers", "warning"
        lines.append(
            "Blocking goes on. The damaged file is kept beside the new one; check the disk (dmesg, smartctl). "
            "snort-bridge ledger check; snort-bridge list"
        )
    elif last.ok:
        headline, severity = f"the {last.what} is written again", "success"
        lines.append("Nothing is lost: what was done meanwhile is recorded. snort-bridge list")
    else:
        headline, severity = f"the {last.what} CANNOT BE WRITTEN: blocking from memory", "failure"
        lines.append(
            "Blocking goes on from memory, with RouterOS timeouts; blocks that need a static entry wait. "
            "Free space in the state_dir (df -h; du -sh /var/lib/tzsp-ips) or fix the file system; the bridge "
            "retries by itself. /health answers 503 meanwhile."
        )
    return Message("state", title(f"STATE: {headline}"), "\n".join(lines), severity, batch.count)
