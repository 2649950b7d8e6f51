"""One worker thread per router: bring the router's address list to what the ledger wants.

The decision of what to send is a pure function, ``plan_steps``, of the ledger rows for the
router, the router's listing (when we have one) and the time; the thread around it only
connects, runs the steps and records results. A router that is down or hangs only ever holds
up its own thread: every other router has its own.

When a full sync runs (on every (re)connect and every ``reconcile_interval``), the worker reads
the router's uptime (lower than last time = it rebooted and lost its timed entries) and lists
the address list, so entries already in place are confirmed, never re-sent, and lost ones come
back with their remaining time. Between syncs it only sends what is pending.

A block longer than the router's longest timeout (RouterOS v7: 35w3d13h13m56s; a router that
refuses a shorter one teaches the worker its own limit) is added as a *static* entry, which the
router keeps across reboots; the ledger remembers it, and the worker removes it when the block
ends, after a router reboot or our own restart too. Our static entries are the ones whose
comment starts with ``tzsp-ips``; a static entry someone added by hand is never removed at expiry.

A session that offers ``add_blocks`` / ``remove_blocks`` (the RouterOS API, which pipelines
commands) gets the adds and removes of one pass in batches of at most ``BATCH``, each block's
outcome recorded on its own. Over SSH every block is its own exec: RouterOS stops a
``;``-joined line at the first runtime error (a duplicate is one), so lines are not joined.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from responder.config import RouterConfig
from responder.errors import RouterCommandError, RouterError
from responder.events import IPAddress
from responder.feed import NO_FEED, EntryApplied, EntryRefused, EntryRemoved, Feed, RouterChanged
from responder.ledger import OPEN_STATUSES, Ledger, RouterBlock
from responder.routeros.commands import make_comment
from responder.routeros.duration import MAX_TIMEOUT_SECONDS, timeout_limit_of

COMMENT_PREFIX = "tzsp-ips"  # make_comment's: how our entries are told from those added by hand

log = logging.getLogger(__name__)

# A listed entry whose timeout is within this of what the ledger wants counts as in place.
# RouterOS shows whole seconds and our own clock moved while listing.
COVER_SLACK = 5.0
MIN_TIMEOUT = 1.0  # less remaining than this: let the block lapse rather than send it
POLL_INTERVAL = 2.0  # seconds between looks at the ledger for work queued by another process
# Blocks per add_blocks/remove_blocks call: a few round trips each, so a huge backlog still
# shows progress in the ledger, and the stop flag is looked at, between batches.
BATCH = 256


@dataclass(frozen=True)
class Send:
    """Add ``address`` for ``timeout_s`` (the time remaining), so it ends at ``expires_at``;
    ``static``: without a timeout (longer than the router takes), removed by us at ``expires_at``."""

    address: IPAddress
    expires_at: float
    comment: str
    generation: Optional[int] = None
    static: bool = False
    static_comment: str = field(default="", compare=False)  # if the router refuses the timeout as too long

    def as_static(self) -> "Send":
        return replace(self, static=True, comment=self.static_comment or self.comment)


@dataclass(frozen=True)
class Remove:
    """Remove ``address``; ``final`` is the status then: "removed" (unblocked) or "expired" (our static entry ran out)."""

    address: IPAddress
    generation: Optional[int] = None
    final: str = "removed"


@dataclass(frozen=True)
class Mark:
    """A ledger-only transition: nothing to send. ``static``: the entry found in place is our static one."""

    address: IPAddress
    status: str
    expires_at: Optional[float] = None
    generation: Optional[int] = None
    static: bool = False


Step = Union[Send, Remove, Mark]


def plan_steps(
    rows: Sequence[RouterBlock], actual: Optional[Mapping[IPAddress, object]], now: float, *, retry_failed: bool,
    max_timeout: float = float(MAX_TIMEOUT_SECONDS),
) -> List[Step]:
    """What to do on one router.

    ``rows`` are its ledger rows; ``actual`` maps each address in its list to the entry (with a
    ``timeout_s`` attribute, None for a static entry, and its ``comment``), or is None when we did
    not list (then the ledger is trusted). ``retry_failed`` also re-sends blocks the router refused
    before. A block with more than ``max_timeout`` left is sent as a static entry.
    """
    steps: List[Step] = []
    for row in rows:
        present = actual is not None and row.address in actual
        gen = row.generation
        if row.block_state == "unblocked" or row.status == "removing":
            if actual is not None and not present:
                steps.append(Mark(row.address, "removed", generation=gen))
            else:
                steps.append(Remove(row.address, gen))
            continue
        remaining = row.block_expires_at - now
        ours_static = present and _ours_static(actual[row.address])
        if remaining < MIN_TIMEOUT:
            # A dynamic entry ends by itself; a static one is ours to remove (known from the ledger,
            # or seen in the listing after we crashed between adding it and recording that).
            if (row.static and actual is None) or ours_static:
                steps.append(Remove(row.address, gen, final="expired"))
            else:
                steps.append(Mark(row.address, "expired", generation=gen))
            continue
        static = remaining > max_timeout
        send = Send(row.address, row.block_expires_at, _comment(row, static), gen, static, _comment(row, True))
        if row.status == "applied":
            if actual is not None and not present:
                steps.append(send)  # lost: rebooted, or removed by hand
            continue
        if row.status == "failed" and not retry_failed:
            continue
        if present and _covers(actual[row.address], remaining):
            steps.append(Mark(row.address, "applied", row.block_expires_at, gen, static=ours_static))
        elif row.status in ("pending", "failed"):
            steps.append(send)
    return steps


def _covers(entry: object, remaining: float) -> bool:
    timeout = getattr(entry, "timeout_s", None)
    return timeout is None or timeout >= remaining - COVER_SLACK


def _ours_static(entry: object) -> bool:
    """A static entry we added (our comment); one added by hand is never removed at expiry."""
    return getattr(entry, "timeout_s", 0) is None and str(getattr(entry, "comment", "")).startswith(COMMENT_PREFIX)


def _comment(row: RouterBlock, static: bool) -> str:
    if not static:
        return make_comment(row.sid, row.reason)
    # A static entry outlives a reboot and, should this host be gone for good, us: say when it ends.
    until = time.strftime("%Y-%m-%d %H:%MZ", time.gmtime(row.block_expires_at))
    return make_comment(row.sid, f"until {until}: {row.reason}")


def normalise_listing(listing: Mapping[object, object]) -> Dict[IPAddress, object]:
    """Listing keyed by host address: ``1.2.3.4``, ``2001:db8::1/128`` and their text forms alike."""
    result: Dict[IPAddress, object] = {}
    for key, entry in listing.items():
        try:
            if isinstance(key, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
                address = key
            else:
                network = ipaddress.ip_network(str(key), strict=False)
                if network.prefixlen != network.max_prefixlen:
                    continue  # a network entry is not one of our host blocks
                address = network.network_address
        except ValueError:
            continue  # a DNS-name entry someone else added
        result[address] = entry
    return result


class RouterWorker:
    """Owns one router's session; wake() it when the ledger has new work for it."""

    def __init__(
        self,
        cfg: RouterConfig,
        ledger: Ledger,
        session_factory: Callable[[RouterConfig], object],
        backoff,
        *,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[], None] = lambda: None,
        poll_interval: float = POLL_INTERVAL,
        feed: Feed = NO_FEED,
    ) -> None:
        self.cfg = cfg
        self._feed = feed
        self._reported_up: Optional[bool] = None  # last state published to the feed
        self.name = cfg.name
        self._ledger = ledger
        self._factory = session_factory
        self._backoff = backoff
        self._clock = clock
        self._on_change = on_change
        self._poll = poll_interval
        self._session = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._retry_at = 0.0
        self._next_reconcile = 0.0
        self._connect_failures = 0
        self.last_error: Optional[str] = None
        # Longest timeout this router takes: the v7 limit until the router says otherwise (per session).
        self.max_timeout = float("inf") if cfg.mode == "script" else float(MAX_TIMEOUT_SECONDS)

    # -- control (any thread) ---------------------------------------------------------------

    @property
    def connected(self) -> bool:
        session = self._session
        return bool(session is not None and session.connected)

    @property
    def connect_failed(self) -> bool:
        """True while the latest connection attempt failed (the worker is backing off)."""
        return self._session is None and self._connect_failures > 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"router-{self.name}", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def reconcile_soon(self) -> None:
        self._next_reconcile = 0.0
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the thread; False if it was stuck (in a connect or command) past ``timeout``."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            alive = self._thread.is_alive()
        else:
            alive = False
        if not alive:
            self._drop_session()
        return not alive

    # -- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                delay = self._step()
            except Exception:  # a bug must not kill the router's worker silently and forever
                log.exception("router %s: unexpected error in worker", self.name)
                self._drop_session()
                delay = self._schedule_retry("internal error (see log)")
            if self._stopping.is_set():
                break
            self._wake.wait(max(0.0, delay))
        self._drop_session()

    def _step(self) -> float:
        now = self._clock()
        if not self.connected:
            if now < self._retry_at:
                return self._retry_at - now
            try:
                session = self._factory(self.cfg)
                session.connect()
            except RouterError as exc:
                return self._schedule_retry(str(exc))
            self._connect_failures = 0
            self._session = session
            self._next_reconcile = 0.0
            self._report_state(True, None)
            if self.cfg.mode != "script":
                self.max_timeout = float(MAX_TIMEOUT_SECONDS)  # maybe another router now (upgraded, replaced)
        try:
            full = self._clock() >= self._next_reconcile
            self._sync(full)
        except RouterCommandError as exc:
            # The router answered, but a listing/uptime command failed: keep the session, try later.
            self._record_error(str(exc), reachable=True)
            self._next_reconcile = self._clock() + min(self.cfg.reconcile_interval, 30.0)
        except RouterError as exc:
            self._drop_session()
            return self._schedule_retry(str(exc))
        self._backoff.reset()
        now = self._clock()
        return min(self._poll, max(0.0, self._next_reconcile - now))

    def _sync(self, full: bool) -> None:
        session = self._session
        now = self._clock()
        if full:
            rebooted = self._ledger.record_contact(self.name, session.uptime(), now)
            if rebooted:
                count = self._ledger.requeue_applied(self.name, now)
                log.warning("router %s rebooted (uptime went down): re-applying %d unexpired blocks", self.name, count)
            actual: Optional[Dict[IPAddress, object]] = normalise_listing(session.list_blocks())
            rows = self._ledger.router_blocks(self.name, OPEN_STATUSES)
            self.last_error = None
        else:
            actual = None
            rows = self._ledger.router_blocks(self.name, ("pending", "removing"))
            rows += self._ledger.static_due(self.name, now)  # our static entries whose block has ended
        steps = plan_steps(rows, actual, self._clock(), retry_failed=full, max_timeout=self.max_timeout)
        if not self._run_steps(steps):
            return
        if full:
            self._next_reconcile = self._clock() + self.cfg.reconcile_interval

    def _run_steps(self, steps: Sequence[Step]) -> bool:
        """Carry out ``steps``; False if told to stop part way.

        Adds (and removes) go in batches when the session can take them; everything else, and
        everything over a session without batches (SSH), goes one step at a time, in order.
        """
        batched = tuple(kind for kind, method in ((Send, "add_blocks"), (Remove, "remove_blocks"))
                        if callable(getattr(self._session, method, None)))
        sends = [s for s in steps if isinstance(s, Send) and Send in batched]
        removes = [s for s in steps if isinstance(s, Remove) and Remove in batched]
        marks = [s for s in steps if isinstance(s, Mark)]
        singles = [s for s in steps if not isinstance(s, batched) and not isinstance(s, Mark)]
        if marks:  # ledger-only: one transaction for all (after a restart: every entry found in place)
            with self._ledger.batch():
                for step in marks:
                    self._execute(step)
        for step in singles:
            if self._stopping.is_set():
                return False
            self._execute(step)
        for batch, run in ((removes, self._remove_batch), (sends, self._send_batch)):
            for start in range(0, len(batch), BATCH):
                if self._stopping.is_set():
                    return False
                run(batch[start:start + BATCH])
        return True

    def _execute(self, step: Step) -> None:
        now = self._clock()
        if isinstance(step, Mark):
            self._ledger.set_status(
                self.name, step.address, step.status, now, expires_at=step.expires_at, generation=step.generation,
                static=step.static if step.status == "applied" else None,
            )
        elif isinstance(step, Remove):
            try:
                outcome = self._session.remove_block(step.address)
            except RouterCommandError as exc:
                outcome = exc
            self._note_refusals(self._record_remove(step, outcome))
        elif step.expires_at - now < MIN_TIMEOUT:
            self._ledger.set_status(self.name, step.address, "expired", now, generation=step.generation)
        else:
            try:
                outcome = self._session.add_block(step.address, None if step.static else step.expires_at - now, step.comment)
            except RouterCommandError as exc:
                outcome = exc
            if self._beyond_limit(step, outcome, now):
                return self._execute(step.as_static())
            self._note_refusals(self._record_send(step, outcome))
        self._on_change()

    def _beyond_limit(self, step: Send, outcome: object, now: float) -> bool:
        """The router refused the timeout as too long: learn its limit; the block goes static."""
        if step.static or not isinstance(outcome, RouterCommandError) or outcome.kind != "out-of-range":
            return False
        limit = timeout_limit_of(outcome.output or str(outcome))
        asked = step.expires_at - now
        self.max_timeout = min(self.max_timeout, limit if limit is not None and limit < asked else asked - 1.0)
        log.warning("router %s takes timeouts up to %ss: %s becomes a static entry we remove at its end",
                    self.name, f"{self.max_timeout:.0f}", step.address)
        return True

    def _send_batch(self, steps: Sequence[Send]) -> None:
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
                outcomes = self._session.add_blocks(
                    [(s.address, None if s.static else s.expires_at - now, s.comment) for s in live])
            except RouterCommandError as exc:  # refused as a whole (a session that judges the batch at once)
                outcomes = [exc] * len(live)
            beyond = [self._beyond_limit(s, o, now) for s, o in zip(live, outcomes)]
            with self._ledger.batch():  # one commit for the batch's outcomes
                refusals = [r for s, o, b in zip(live, outcomes, beyond) if not b for r in self._record_send(s, o)]
            self._note_refusals(refusals)
            again = [s.as_static() for s, b in zip(live, beyond) if b]
            if again:  # refused as too long: once more, as static entries
                self._send_batch(again)
        self._on_change()

    def _remove_batch(self, steps: Sequence[Remove]) -> None:
        try:
            outcomes = self._session.remove_blocks([s.address for s in steps])
        except RouterCommandError as exc:
            outcomes = [exc] * len(steps)
        with self._ledger.batch():
            refusals = [r for s, o in zip(steps, outcomes) for r in self._record_remove(s, o)]
        self._note_refusals(refusals)
        self._on_change()

    def _record_send(self, step: Send, outcome: object) -> List[Tuple[IPAddress, RouterCommandError]]:
        """Record one add's outcome ("added"/"refreshed"/"present" or the refusal); the refusals."""
        if isinstance(outcome, RouterCommandError):
            return self._refused(step, "failed", outcome)
        now = self._clock()
        self._ledger.set_status(
            self.name, step.address, "applied", now, expires_at=step.expires_at, attempted=True,
            # "present": an entry was there already; if it is our static one still (its removal was
            # pending), the ledger's flag says so and must stay, so it is removed at the end.
            generation=step.generation, static=True if step.static else (None if outcome == "present" else False),
        )
        self._feed.publish(EntryApplied(self.name, step.address, now, step.expires_at))
        return []

    def _record_remove(self, step: Remove, outcome: object) -> List[Tuple[IPAddress, RouterCommandError]]:
        if isinstance(outcome, RouterCommandError):
            # An unblock stays "removing"; our expired static entry stays "applied" (static_due finds it again).
            return self._refused(step, "removing" if step.final == "removed" else "applied", outcome)
        now = self._clock()
        self._ledger.set_status(self.name, step.address, step.final, now, generation=step.generation, static=False)
        self._feed.publish(EntryRemoved(self.name, step.address, now))
        return []

    def _refused(
        self, step: Union[Send, Remove], status: str, exc: RouterCommandError
    ) -> List[Tuple[IPAddress, RouterCommandError]]:
        now = self._clock()
        self._ledger.set_status(
            self.name, step.address, status, now, error=str(exc), attempted=True, generation=step.generation
        )
        self._feed.publish(EntryRefused(self.name, step.address, now, str(exc)))
        return [(step.address, exc)]

    def _note_refusals(self, refusals: Sequence[Tuple[IPAddress, RouterCommandError]]) -> None:
        """Log and record the router's refusals: once per batch, not once per block."""
        if not refusals:
            return
        address, exc = refusals[0]
        more = f" and {len(refusals) - 1} more" if len(refusals) > 1 else ""
        log.error("%s (while handling %s%s)", exc, address, more)
        self._record_error(str(exc), reachable=True)

    def _schedule_retry(self, error: str) -> float:
        self._connect_failures += 1
        delay = self._backoff.next_delay()
        self._retry_at = self._clock() + delay
        if error != self.last_error:
            log.warning("%s; retrying in %.1fs", error, delay)
        self._record_error(error, reachable=False)
        self._report_state(False, error)
        self._on_change()
        return delay

    def _report_state(self, up: bool, error: Optional[str]) -> None:
        """Publish a change of reachability (the first failure, and each change after)."""
        if self._reported_up is not up:
            self._reported_up = up
            now = self._clock()
            pending = self._ledger.pending_count(self.name, now) if up else None  # what it is about to catch up
            self._feed.publish(RouterChanged(self.name, up, now, error, pending))

    def _record_error(self, error: str, *, reachable: bool) -> None:
        self.last_error = error
        self._ledger.record_router_error(self.name, error, self._clock(), reachable=reachable)

    def _drop_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            try:
                session.close()
            except Exception:  # closing a broken connection may fail; it is gone either way
                pass
