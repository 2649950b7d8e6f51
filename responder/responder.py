"""The responder: block an address on every configured router at once, remember it, catch up.

``block`` records the request in the ledger and wakes one worker per router; it returns at
once. Each worker (responder/sync/worker.py) brings its router to what the ledger wants, so a
router that is down receives its blocks when it is back, with the remaining time, and a
restart of this process re-sends nothing that is already in place.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from responder.config import RouterConfig
from responder.degraded import LedgerInMemory, MemoryFallback
from responder.events import BlockRequest, IPAddress
from responder.feed import NO_FEED, Feed, StateTrouble
from responder.ledger import LEDGER_FILE, BlockOutcome, Ledger, RouterState
from responder.ledger.adoption import request_adoption
from responder.sync.backoff import Backoff
from responder.sync.worker import POLL_INTERVAL, RouterWorker

log = logging.getLogger("snort-bridge")

_LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
SETTLED_STATUSES = ("applied", "failed", "removed", "expired")


class TargetRefused(ValueError):
    """Not something the responder will ever send to a router."""


def check_target(address: IPAddress | str) -> IPAddress:
    """``address`` as an ipaddress address, or TargetRefused.

    Text is parsed strictly by ``ipaddress`` (no networks, no names). As a last guard behind the
    bridge's protected list, addresses whose blocking could only cut off the router itself or
    everyone at once (loopback, unspecified, multicast, broadcast) are refused.
    """
    address = parse_address(address)
    candidates = [address]
    if address.version == 6 and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    for candidate in candidates:
        for flag, what in (
            ("is_loopback", "loopback"),
            ("is_unspecified", "unspecified"),
            ("is_multicast", "multicast"),
        ):
            if getattr(candidate, flag):
                raise TargetRefused(f"{address} is a {what} address; it is never blocked")
        if candidate == _LIMITED_BROADCAST:
            raise TargetRefused(f"{address} is the broadcast address; it is never blocked")
    return address


@dataclass(frozen=True)
class RouterStatus:
    name: str
    connected: bool
    last_error: str | None
    pending: int  # blocks (or unblocks) not yet done on this router
    last_seen: float | None
    reboots: int


def default_session_factory(cfg: RouterConfig):
    """The session for ``cfg.transport``: RouterSession (SSH) or ApiSession (RouterOS API)."""
    if cfg.transport == "api":
        from responder.transport.api import ApiSession

        return ApiSession(cfg)
    from responder.transport.ssh_session import RouterSession  # paramiko is only imported when a router is used

    return RouterSession(cfg)


class Responder:
    def __init__(
        self,
        config,
        *,
        session_factory: Callable[[RouterConfig], object] = default_session_factory,
        clock: Callable[[], float] = time.time,
        backoff_base: float = 0.5,
        backoff_cap: float = 60.0,
        poll_interval: float = POLL_INTERVAL,
        ledger: Ledger | None = None,
        feed: Feed = NO_FEED,
    ) -> None:
        self.config = config
        self.feed = feed
        self._clock = clock
        self._own_ledger = ledger is None
        self.ledger = ledger if ledger is not None else open_ledger(config.state_dir, feed, clock())
        self._changed = threading.Condition()
        self.fallback = MemoryFallback(self.ledger, feed, clock)  # when the ledger file cannot be written
        if self.ledger.degraded is not None:  # it could not be opened for writing at all
            self.fallback.announce()
        self._workers: dict[str, RouterWorker] = {
            cfg.name: RouterWorker(
                cfg,
                self.ledger,
                session_factory,
                Backoff(base=backoff_base, cap=backoff_cap),
                clock=clock,
                on_change=self._notify,
                poll_interval=poll_interval,
                feed=feed,
                on_write_failure=self.fallback.write_failed,
            )
            for cfg in config.routers
        }
        self._started = False
        self._batching = 0
        self._wake_pending = False
        self._queued: list[BlockRequest] = []

    @property
    def router_names(self) -> tuple[str, ...]:
        return tuple(self._workers)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        try:
            self._prepare_ledger(self._clock())
        except sqlite3.OperationalError as exc:  # a full disk at start: start, from memory
            if not self.fallback.write_failed(exc):
                raise
            self._prepare_ledger(self._clock())
        for worker in self._workers.values():
            worker.start()
        self._started = True

    def _prepare_ledger(self, now: float) -> None:
        if self.ledger.damage is not None:
            request_adoption(self.ledger, self._workers, now)
        for name in self._workers:
            self.ledger.ensure_router(name, now)
        self.ledger.prune(now)
        policy = getattr(self.config, "policy", None)
        if policy is not None:
            self.ledger.purge_offences(now - policy.remember_for)

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop every worker, in parallel; False if one was stuck in a connect or command past ``timeout``."""
        deadline = time.monotonic() + timeout
        for worker in self._workers.values():
            worker.stop(0)  # signal all first, so they wind down together
        clean = all(worker.stop(max(0.0, deadline - time.monotonic())) for worker in self._workers.values())
        if self._started:  # what was done from memory, into the file if it can be now
            self.fallback.retry(now_or_never=True)
        if self._own_ledger and clean:
            self.ledger.close()
        self._started = False
        return clean

    def __enter__(self) -> Responder:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- requests -------------------------------------------------------------------------

    def block(self, request: BlockRequest) -> BlockOutcome | None:
        """Block ``request.address`` on every router; returns as soon as it is recorded.
        Inside ``batch()`` it is recorded with the batch's other blocks when the batch ends
        (None is returned); a refused target raises at once either way."""
        check_target(request.address)
        if self._batching:
            self._queued.append(request)
            return None
        outcome = self.ledger.record_block(request, self._workers, self._clock())
        if outcome.kind != "unchanged":
            self._wake_all()
        return outcome

    def _record_queued(self) -> list[BlockRequest]:
        """Record the blocks queued in this batch; the ones recorded (for a retry into memory)."""
        queued, self._queued = self._queued, []
        queued = queued[: self.fallback.room(len(queued))]
        if queued:
            outcomes = self.ledger.record_blocks(queued, self._workers, self._clock())
            if any(outcome.kind != "unchanged" for outcome in outcomes):
                self._wake_all()
        return queued

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """``with responder.batch():`` -- the blocks and unblocks made inside are one ledger
        transaction, committed when the block ends (raising if it cannot be); the workers are
        woken once, after the commit. The caller may consider its inputs handled only then."""
        self._batching += 1
        body_done = False
        recorded: list[BlockRequest] = []
        try:
            try:
                with self.ledger.batch():
                    yield
                    body_done = True
                    if self._batching == 1:
                        recorded = self._queued
                        self._record_queued()
            except sqlite3.OperationalError as exc:
                if self._batching != 1 or not self.fallback.write_failed(exc):
                    raise
                if not body_done:  # a change inside failed: the caller does its inputs again, from memory
                    raise LedgerInMemory(str(exc)) from exc
                self._queued = recorded  # the commit failed: the same blocks, now into memory
                with self.ledger.batch():
                    self._record_queued()
        finally:
            self._batching -= 1
            if not self._batching:
                self._queued = []  # not recorded if the batch failed: the caller handles them again
        if self._batching == 0 and self._wake_pending:
            self._wake_pending = False
            self._wake_all()

    def keep_ledger(self) -> bool:
        """From the service's loop: while the ledger runs from memory, try the file again when due.
        True while the file is in use."""
        return self.fallback.retry()

    def unblock(self, address: IPAddress | str, *, keep_offences: bool = False) -> bool:
        """Remove ``address`` from every router; True if it was actively blocked.

        Its offences are forgotten (its next block is a first offence) unless ``keep_offences``."""
        address = parse_address(address)
        self._record_queued()  # a block queued in this batch comes first
        was_active = self.ledger.record_unblock(address, self._workers, self._clock(), keep_offences=keep_offences)
        self._wake_all()
        return was_active

    def _wake_all(self) -> None:
        if self._batching:
            self._wake_pending = True  # after the commit: the workers would only wait for it
            return
        for worker in self._workers.values():
            worker.wake()

    def reconcile_now(self) -> None:
        for worker in self._workers.values():
            worker.reconcile_soon()

    # -- what happened ----------------------------------------------------------------------

    def states(self, address: IPAddress | str) -> dict[str, RouterState | None]:
        address = parse_address(address)
        return {name: self.ledger.router_state(name, address) for name in self._workers}

    def status(self) -> tuple[RouterStatus, ...]:
        now = self._clock()
        result = []
        for name, worker in self._workers.items():
            meta = self.ledger.router_meta(name)
            result.append(
                RouterStatus(
                    name=name,
                    connected=worker.connected,
                    last_error=worker.last_error if worker.last_error is not None else meta.last_error,
                    pending=self.ledger.pending_count(name, now),
                    last_seen=meta.last_seen,
                    reboots=meta.reboots,
                )
            )
        return tuple(result)

    def wait_applied(self, address: IPAddress | str, timeout: float) -> bool:
        """True once every router has ``address`` applied; False at ``timeout``."""
        address = parse_address(address)
        return self._wait(
            lambda: all(state is not None and state.status == "applied" for state in self.states(address).values()),
            timeout,
        )

    def wait_removed(self, address: IPAddress | str, timeout: float) -> bool:
        address = parse_address(address)
        return self._wait(
            lambda: all(
                state is None or state.status in ("removed", "expired") for state in self.states(address).values()
            ),
            timeout,
        )

    def wait_settled(self, address: IPAddress | str, timeout: float) -> dict[str, RouterState | None]:
        """Wait until each router has either dealt with ``address`` or failed to connect since we started.

        For the command line: it reports what happened where, instead of waiting out the backoff
        of a router that is down (the block stays queued in the ledger for ``snort-bridge run``).
        """
        address = parse_address(address)

        def settled() -> bool:
            for name, state in self.states(address).items():
                done = state is not None and state.status in SETTLED_STATUSES
                if not done and not self._workers[name].connect_failed:
                    return False
            return True

        self._wait(settled, timeout)
        return self.states(address)

    def _wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                # workers notify on every change; the short cap also covers changes by other processes
                self._changed.wait(min(remaining, 0.25))
        return True

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()


def open_ledger(state_dir: str, feed: Feed, now: float) -> Ledger:
    """The state_dir's ledger, checked; a damaged one is set aside, said (log and feed), and
    every configured router asked for our entries back (at its workers' next full sync)."""
    ledger = Ledger.open_checked(os.path.join(state_dir, LEDGER_FILE), now)
    if ledger.damage is not None:
        text = ledger.damage.describe()
        log.error("%s", text)
        feed.publish(StateTrouble("ledger", False, now, text, damaged=True))
    return ledger


def parse_address(address: IPAddress | str) -> IPAddress:
    """An ipaddress address from one, or from text ``ipaddress`` accepts; else TargetRefused."""
    if isinstance(address, str):
        try:
            return ipaddress.ip_address(address.strip())
        except ValueError:
            raise TargetRefused(f"{address!r} is not an IPv4 or IPv6 address") from None
    if not isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        raise TargetRefused(f"expected an IP address, got {type(address).__name__}")
    return address
