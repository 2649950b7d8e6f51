"""Carrying out one pass's steps on a router's open session, and recording each outcome in the
ledger and the feed.

A session that offers ``add_blocks`` / ``remove_blocks`` gets the adds and removes of one pass
in batches of at most ``BATCH``, each block's outcome recorded on its own. The API pipelines
its commands; SSH packs the adds into a few exec lines, each add wrapped in ``:do {} on-error={}``
(RouterOS stops a ``;``-joined line at the first runtime error, and a duplicate is one). Removes
over SSH stay one exec each (they are rare: unblocks and the end of static entries).

A router that refuses a timeout as too long teaches the runner its limit (``max_timeout``, which
the next pass plans with), and the block goes out again at once as a static entry.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from responder.errors import RouterCommandError
from responder.events import IPAddress
from responder.feed import EntryApplied, EntryRefused, EntryRemoved, Feed
from responder.ledger import Ledger
from responder.routeros.duration import timeout_limit_of
from responder.sync.plan import MIN_TIMEOUT, Mark, Remove, Send, Step

# A router's lines keep the worker's logger name, as before this code had a module of its own.
log = logging.getLogger("responder.sync.worker")

# Blocks per add_blocks/remove_blocks call: a few round trips each, so a huge backlog still
# shows progress in the ledger, and the stop flag is looked at, between batches.
BATCH = 256


class StepRunner:
    """One router's steps, run over whatever session its worker holds for the pass."""

    def __init__(
        self,
        name: str,
        ledger: Ledger,
        *,
        clock: Callable[[], float],
        feed: Feed,
        on_change: Callable[[], None],
        stopping: threading.Event,
        record_error: Callable[..., None],
        max_timeout: float,
    ) -> None:
        self.name = name
        self._ledger = ledger
        self._clock = clock
        self._feed = feed
        self._on_change = on_change
        self._stopping = stopping  # the worker's: stop between steps and between batches
        self._record_error = record_error  # the worker's: a refusal is also the router's last error
        self.max_timeout = max_timeout  # longest timeout the router takes; the worker resets it per session

    def run(self, session: Any, steps: Sequence[Step]) -> bool:
        """Carry out ``steps``; False if told to stop part way.

        Adds (and removes) go in batches when the session can take them; everything else, and
        everything over a session without batches (SSH), goes one step at a time, in order.
        """
        batched = tuple(
            kind
            for kind, method in ((Send, "add_blocks"), (Remove, "remove_blocks"))
            if callable(getattr(session, method, None))
        )
        sends = [s for s in steps if isinstance(s, Send) and Send in batched]
        removes = [s for s in steps if isinstance(s, Remove) and Remove in batched]
        marks = [s for s in steps if isinstance(s, Mark)]
        singles = [s for s in steps if not isinstance(s, batched) and not isinstance(s, Mark)]
        if marks:  # ledger-only: one transaction for all (after a restart: every entry found in place)
            with self._ledger.batch():
                for step in marks:
                    self._execute(session, step)
        for step in singles:
            if self._stopping.is_set():
                return False
            self._execute(session, step)
        for batch, run in ((removes, self._remove_batch), (sends, self._send_batch)):
            for start in range(0, len(batch), BATCH):
                if self._stopping.is_set():
                    return False
                run(session, batch[start : start + BATCH])
        return True

    def _execute(self, session: Any, step: Step) -> None:
        now = self._clock()
        if isinstance(step, Mark):
            self._ledger.set_status(
                self.name,
                step.address,
                step.status,
                now,
                expires_at=step.expires_at,
                generation=step.generation,
                static=step.static if step.status == "applied" else None,
            )
        elif isinstance(step, Remove):
            try:
                outcome = session.remove_block(step.address)
            except RouterCommandError as exc:
                outcome = exc
            with self._ledger.batch():  # the refusal and the router's last error: seen together or not at all
                self._note_refusals(self._record_remove(step, outcome))
        elif step.expires_at - now < MIN_TIMEOUT:
            self._ledger.set_status(self.name, step.address, "expired", now, generation=step.generation)
        else:
            try:
                outcome = session.add_block(step.address, None if step.static else step.expires_at - now, step.comment)
            except RouterCommandError as exc:
                outcome = exc
            if self._beyond_limit(step, outcome, now):
                if self._ledger.degraded is not None:
                    return None  # static waits until the ledger can be written: it stays pending
                return self._execute(session, step.as_static())
            with self._ledger.batch():
                self._note_refusals(self._record_send(step, outcome))
        self._on_change()

    def _beyond_limit(self, step: Send, outcome: object, now: float) -> bool:
        """The router refused the timeout as too long: learn its limit; the block goes static."""
        if step.static or not isinstance(outcome, RouterCommandError) or outcome.kind != "out-of-range":
            return False
        limit = timeout_limit_of(outcome.output or str(outcome))
        asked = step.expires_at - now
        self.max_timeout = min(self.max_timeout, limit if limit is not None and limit < asked else asked - 1.0)
        log.warning(
            "router %s takes timeouts up to %ss: %s becomes a static entry we remove at its end",
            self.name,
            f"{self.max_timeout:.0f}",
            step.address,
        )
        return True

    def _send_batch(self, session: Any, steps: Sequence[Send]) -> None:
        """One ``add_blocks`` call; each block's ledger row set from its own outcome.

        A lost connection raises out of here before anything is recorded: the whole batch stays
        pending, and the full sync after reconnecting confirms what the router did take.
        """
        now = self._clock()
        live = []
        for step in steps:
            if step.expires_at - now < MIN_TIMEOUT:
                self._ledger.set_status(self.name, step.address, "expired", now, generation=step.generation)
            else:
                live.append(step)
        if live:
            try:
                outcomes = session.add_blocks(
                    [(s.address, None if s.static else s.expires_at - now, s.comment) for s in live]
                )
            except RouterCommandError as exc:  # refused as a whole (a session that judges the batch at once)
                outcomes = [exc] * len(live)
            beyond = [self._beyond_limit(s, o, now) for s, o in zip(live, outcomes, strict=False)]
            with self._ledger.batch():  # one commit for the batch's outcomes and the router's last error
                refusals = [
                    r for s, o, b in zip(live, outcomes, beyond, strict=False) if not b for r in self._record_send(s, o)
                ]
                self._note_refusals(refusals)
            again = [s.as_static() for s, b in zip(live, beyond, strict=False) if b]
            if again and self._ledger.degraded is None:  # refused as too long: once more, as static entries
                self._send_batch(session, again)
        self._on_change()

    def _remove_batch(self, session: Any, steps: Sequence[Remove]) -> None:
        try:
            outcomes = session.remove_blocks([s.address for s in steps])
        except RouterCommandError as exc:
            outcomes = [exc] * len(steps)
        with self._ledger.batch():
            refusals = [r for s, o in zip(steps, outcomes, strict=False) for r in self._record_remove(s, o)]
            self._note_refusals(refusals)
        self._on_change()

    def _record_send(self, step: Send, outcome: object) -> list[tuple[IPAddress, RouterCommandError]]:
        """Record one add's outcome ("added"/"refreshed"/"present" or the refusal); the refusals."""
        if isinstance(outcome, RouterCommandError):
            return self._refused(step, "failed", outcome)
        now = self._clock()
        self._ledger.set_status(
            self.name,
            step.address,
            "applied",
            now,
            expires_at=step.expires_at,
            attempted=True,
            # "present": an entry was there already; if it is our static one still (its removal was
            # pending), the ledger's flag says so and must stay, so it is removed at the end.
            generation=step.generation,
            static=True if step.static else (None if outcome == "present" else False),
        )
        self._feed.publish(EntryApplied(self.name, step.address, now, step.expires_at))
        return []

    def _record_remove(self, step: Remove, outcome: object) -> list[tuple[IPAddress, RouterCommandError]]:
        if isinstance(outcome, RouterCommandError):
            # An unblock stays "removing"; our expired static entry stays "applied" (static_due finds it again).
            return self._refused(step, "removing" if step.final == "removed" else "applied", outcome)
        now = self._clock()
        self._ledger.set_status(self.name, step.address, step.final, now, generation=step.generation, static=False)
        self._feed.publish(EntryRemoved(self.name, step.address, now))
        return []

    def _refused(
        self, step: Send | Remove, status: str, exc: RouterCommandError
    ) -> list[tuple[IPAddress, RouterCommandError]]:
        now = self._clock()
        self._ledger.set_status(
            self.name, step.address, status, now, error=str(exc), attempted=True, generation=step.generation
        )
        self._feed.publish(EntryRefused(self.name, step.address, now, str(exc)))
        return [(step.address, exc)]

    def _note_refusals(self, refusals: Sequence[tuple[IPAddress, RouterCommandError]]) -> None:
        """Log and record the router's refusals: once per batch, not once per block."""
        if not refusals:
            return
        address, exc = refusals[0]
        more = f" and {len(refusals) - 1} more" if len(refusals) > 1 else ""
        log.error("%s (while handling %s%s)", exc, address, more)
        self._record_error(str(exc), reachable=True)
