"""One worker thread per router: bring the router's address list to what the ledger wants.

A router that is down or hangs only ever holds up its own thread: every other router has its
own. The thread here connects (backing off while the router is unreachable), chooses between a
full sync and a quick pass, and publishes the router's ups and downs. What a pass does is
decided by ``responder.sync.plan.plan_steps``, a pure function of the ledger rows, the router's
listing (when we have one) and the time, and carried out by ``responder.sync.step_runner`` (batches
over the API, one exec per block over SSH, each outcome recorded).

When a full sync runs (on every (re)connect and every ``reconcile_interval``), the worker reads
the router's uptime (lower than last time = it rebooted and lost its timed entries) and lists
the address list, so entries already in place are confirmed, never re-sent, and lost ones come
back with their remaining time. Between syncs it only sends what is pending.

A block longer than the router's longest timeout (RouterOS v7: 35w3d13h13m56s; a router that
refuses a shorter one teaches the worker its own limit) is added as a *static* entry, which the
router keeps across reboots; the ledger remembers it, and the worker removes it when the block
ends, after a router reboot or our own restart too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from responder.config import RouterConfig
from responder.errors import RouterCommandError, RouterError
from responder.events import IPAddress
from responder.feed import NO_FEED, Feed, RouterChanged
from responder.ledger import OPEN_STATUSES, Ledger, is_damage, mark_damaged
from responder.ledger.adoption import adopt, adoption_pending
from responder.routeros.duration import MAX_TIMEOUT_SECONDS
from responder.sync.adopt import ours
from responder.sync.plan import Send, normalise_listing, plan_steps
from responder.sync.step_runner import StepRunner

log = logging.getLogger(__name__)

POLL_INTERVAL = 2.0  # seconds between looks at the ledger for work queued by another process


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
        on_write_failure: Callable[[BaseException], bool] = lambda exc: False,
    ) -> None:
        self.cfg = cfg
        self._on_write_failure = on_write_failure
        self._feed = feed
        self._reported_up: bool | None = None  # last state published to the feed
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
        self._thread: threading.Thread | None = None
        self._retry_at = 0.0
        self._next_reconcile = 0.0
        self._connect_failures = 0
        self.last_error: str | None = None
        self._runner = StepRunner(
            cfg.name,
            ledger,
            clock=clock,
            feed=feed,
            on_change=on_change,
            stopping=self._stopping,
            record_error=self._record_error,
            # Longest timeout this router takes: the v7 limit until the router says otherwise (per session).
            max_timeout=float("inf") if cfg.mode == "script" else float(MAX_TIMEOUT_SECONDS),
        )

    # -- control (any thread) ---------------------------------------------------------------

    @property
    def connected(self) -> bool:
        session = self._session
        return bool(session is not None and session.connected)

    @property
    def max_timeout(self) -> float:
        """Longest timeout this router takes, as the runner has learnt it this session."""
        return self._runner.max_timeout

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
            except Exception as exc:  # a bug must not kill the router's worker silently and forever
                if self._on_write_failure(exc):  # the ledger now runs from memory: the pass again, soon
                    delay = min(self._poll, 0.5)
                elif is_damage(exc):  # the service sees the mark and stops; its next start rebuilds the ledger
                    mark_damaged(self._ledger.path, str(exc))
                    log.error("router %s: the ledger %s is damaged (%s)", self.name, self._ledger.path, exc)
                    delay = self._schedule_retry(f"the ledger is damaged: {exc}")
                else:
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
                self._runner.max_timeout = float(MAX_TIMEOUT_SECONDS)  # maybe another router now (upgraded, replaced)
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
            actual: dict[IPAddress, object] | None = normalise_listing(session.list_blocks())
            if adoption_pending(self._ledger, self.name):  # a new ledger: our entries come back from here
                self._adopt(actual, now)
            rows = self._ledger.router_blocks(self.name, OPEN_STATUSES)
            self.last_error = None
        else:
            actual = None
            rows = self._ledger.router_blocks(self.name, ("pending", "removing"))
            rows += self._ledger.static_due(self.name, now)  # our static entries whose block has ended
        steps = plan_steps(rows, actual, self._clock(), retry_failed=full, max_timeout=self.max_timeout)
        if self._ledger.degraded is not None:  # unrecorded, a static entry could outlive us: it waits
            steps = [step for step in steps if not (isinstance(step, Send) and step.static)]
        if not self._runner.run(session, steps):
            return
        if full:
            self._next_reconcile = self._clock() + self.cfg.reconcile_interval

    def _adopt(self, listing: dict, now: float) -> None:
        found = ours(listing, now)
        new = adopt(self._ledger, self.name, found, now)
        static = sum(1 for entry in found if entry.static)
        log.warning(
            "router %s: %d of our entries taken back into the new ledger (%d static, %d new block(s))",
            self.name,
            len(found),
            static,
            new,
        )

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

    def _report_state(self, up: bool, error: str | None) -> None:
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
