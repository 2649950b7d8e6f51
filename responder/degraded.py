"""Blocking from memory while the ledger file cannot be written: when to switch, what to say,
how much to hold, and when to try the file again.

The switch itself is ``responder.ledger.fallback``; here is the policy around it, for the
responder: a write failure (disk full, read-only, I/O error) from any writer switches once, is
said once (log and feed, whence /health, the metric and the notification), the file is tried again
with capped exponential backoff, and once written what was done meanwhile is said too. New blocks
held in memory are capped at ``MAX_HELD_BLOCKS``; beyond, a block is not made, and that is said.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from responder.feed import Feed, StateTrouble
from responder.ledger import Ledger
from responder.ledger.fallback import degrade, is_write_failure, memory_bytes, restore
from responder.sync.backoff import Backoff

log = logging.getLogger("snort-bridge")

MAX_HELD_BLOCKS = 20_000  # new blocks recorded in memory while the file cannot be written (a few MB)


class LedgerInMemory(RuntimeError):
    """A batch's change failed to reach the file, and the ledger now runs from memory: nothing of
    the batch was recorded; the caller handles its inputs again."""


class MemoryFallback:
    def __init__(self, ledger: Ledger, feed: Feed, clock: Callable[[], float], *, retry_cap: float = 60.0):
        self.ledger = ledger
        self.feed = feed
        self.clock = clock
        self.backoff = Backoff(base=1.0, cap=retry_cap)
        self.retry_at = 0.0  # monotonic
        self.held = 0  # new blocks recorded in memory
        self.refused = 0  # blocks not made: the memory for them was full

    @property
    def active(self) -> bool:
        return self.ledger.degraded is not None

    def write_failed(self, exc: BaseException) -> bool:
        """True if ``exc`` is a failure to write the file and the ledger now runs from memory
        (switched now or before): the caller may try its change again. False: not ours to handle."""
        if not is_write_failure(exc):
            return False
        now = self.clock()
        try:
            switched = degrade(self.ledger, str(exc), now)
        except Exception as failure:  # noqa: BLE001 -- the file cannot even be read: nothing to go on from
            log.error("the ledger %s cannot be written (%s) nor read (%s)", self.ledger.path, exc, failure)
            return False
        if switched:
            self.announce()
        return True

    def announce(self) -> None:
        """Say that the ledger runs from memory (switched now, or opened so at start), once."""
        assert self.ledger.degraded is not None
        self.held = self.refused = 0
        self.retry_at = time.monotonic() + self.backoff.next_delay()
        text = (
            f"the ledger {self.ledger.path} cannot be written ({self.ledger.degraded.reason}): blocking goes on "
            "from memory, with RouterOS timeouts (a block that needs a static entry waits); writes are retried"
        )
        log.error("%s", text)
        self.feed.publish(StateTrouble("ledger", False, self.clock(), text))

    def room(self, wanted: int) -> int:
        """How many of ``wanted`` new blocks may be recorded (all of them while the file is in use)."""
        if not self.active:
            return wanted
        allowed = max(0, min(wanted, MAX_HELD_BLOCKS - self.held))
        if allowed < wanted:
            if self.refused == 0:
                log.error(
                    "%d blocks are held in memory while the ledger cannot be written, the most it holds: "
                    "new blocks are not made until it can be written (counted, said again when it is)",
                    MAX_HELD_BLOCKS,
                )
            self.refused += wanted - allowed
        self.held += allowed
        return allowed

    def retry(self, *, now_or_never: bool = False) -> bool:
        """Try the file again if its time has come (or at once, ``now_or_never``: at stop);
        True once the ledger is back on the file."""
        if not self.active:
            return True
        if time.monotonic() < self.retry_at and not now_or_never:
            return False
        since, held, refused = self.ledger.degraded.since, self.held, self.refused
        size = memory_bytes(self.ledger)
        if not restore(self.ledger):
            self.retry_at = time.monotonic() + self.backoff.next_delay()
            if now_or_never:
                log.error(
                    "stopping with the ledger %s still in memory (%s): %d new block(s) since %s are not recorded; "
                    "they end on the routers by their RouterOS timeouts",
                    self.ledger.path,
                    self.ledger.degraded.reason,
                    held,
                    time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(since)),
                )
            return False
        self.backoff.reset()
        now = self.clock()
        text = (
            f"the ledger {self.ledger.path} can be written again after {now - since:.0f}s: what was done "
            f"meanwhile is recorded ({held} new block(s), {size // 1024} KiB)"
            + (f"; {refused} block(s) were not made, the memory for them being full" if refused else "")
        )
        log.warning("%s", text)
        self.feed.publish(StateTrouble("ledger", True, now, text))
        self.held = self.refused = 0
        return True
