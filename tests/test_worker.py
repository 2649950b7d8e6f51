"""Router workers: the pure plan (what to send given ledger + listing + time) and the thread around it.

The thread is driven here with an in-memory session double that keeps an address list with
timeouts on the test's clock; the same scenarios over real SSH against the simulator are in
tests/test_responder_sim.py.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from dataclasses import dataclass

import pytest
from responder_rig import wait_until

from responder.config import RouterConfig
from responder.errors import RouterCommandError, RouterUnreachable
from responder.events import BlockRequest
from responder.ledger import Ledger, RouterBlock
from responder.sync.backoff import Backoff
from responder.sync.plan import Mark, Remove, Send, normalise_listing, plan_steps
from responder.sync.worker import RouterWorker

A = ipaddress.ip_address("203.0.113.7")
B = ipaddress.ip_address("2001:db8::66")
NOW = 10_000.0


@dataclass(frozen=True)
class Entry:
    timeout_s: float | None


def row(address=A, *, status="pending", state="active", expires=NOW + 300, generation=3, sid="1:2", reason="bad"):
    return RouterBlock("r1", address, reason, sid, state, expires, status, None, None, 0, generation)


# -- the plan ---------------------------------------------------------------------------------


def test_pending_without_listing_is_sent_with_its_expiry_and_comment():
    [step] = plan_steps([row()], None, NOW, retry_failed=False)
    assert step == Send(A, NOW + 300, "tzsp-ips [1:2] bad", 3)


def test_pending_already_in_place_is_confirmed_not_resent():
    steps = plan_steps([row()], {A: Entry(298.0)}, NOW, retry_failed=True)
    assert steps == [Mark(A, "applied", NOW + 300, 3)]
    static = plan_steps([row()], {A: Entry(None)}, NOW, retry_failed=True)
    assert static == [Mark(A, "applied", NOW + 300, 3)]


def test_pending_present_with_too_short_a_timeout_is_resent_to_refresh():
    [step] = plan_steps([row()], {A: Entry(100.0)}, NOW, retry_failed=True)
    assert isinstance(step, Send) and step.expires_at == NOW + 300


def test_applied_but_missing_from_listing_is_resent_and_present_is_left_alone():
    assert plan_steps([row(status="applied")], {}, NOW, retry_failed=True) == [
        Send(A, NOW + 300, "tzsp-ips [1:2] bad", 3)
    ]
    assert plan_steps([row(status="applied")], {A: Entry(10.0)}, NOW, retry_failed=True) == []
    assert plan_steps([row(status="applied")], None, NOW, retry_failed=True) == []


def test_expired_blocks_are_dropped_not_sent():
    steps = plan_steps([row(expires=NOW + 0.5), row(B, status="applied", expires=NOW - 5)], {}, NOW, retry_failed=True)
    assert steps == [Mark(A, "expired", generation=3), Mark(B, "expired", generation=3)]


def test_failed_blocks_wait_for_a_reconcile():
    assert plan_steps([row(status="failed")], None, NOW, retry_failed=False) == []
    [step] = plan_steps([row(status="failed")], {}, NOW, retry_failed=True)
    assert isinstance(step, Send)


def test_unblock_removes_or_confirms_absence():
    assert plan_steps([row(status="removing", state="unblocked")], None, NOW, retry_failed=False) == [Remove(A, 3)]
    assert plan_steps([row(status="removing", state="unblocked")], {A: Entry(5.0)}, NOW, retry_failed=True) == [
        Remove(A, 3)
    ]
    assert plan_steps([row(status="removing", state="unblocked")], {}, NOW, retry_failed=True) == [
        Mark(A, "removed", generation=3)
    ]
    # a late "applied" that lost the race against an unblock is still removed
    assert plan_steps([row(status="applied", state="unblocked")], None, NOW, retry_failed=True) == [Remove(A, 3)]


def test_listing_normalisation_keeps_hosts_and_skips_networks_and_names():
    listing = {
        "203.0.113.7": 1,
        "2001:db8::66/128": 2,
        "198.51.100.0/24": 3,
        "example.com": 4,
        ipaddress.ip_address("192.0.2.1"): 5,
    }
    assert normalise_listing(listing) == {A: 1, B: 2, ipaddress.ip_address("192.0.2.1"): 5}


# -- the thread, with a session double ----------------------------------------------------------


class FakeRouter:
    """An address list with timeouts on a shared clock, an uptime, and an on/off switch."""

    def __init__(self, clock):
        self.clock = clock
        self.entries = {}  # address -> deadline
        self.booted_at = clock()
        self.up = True
        self.refuse_adds = False
        self.commands = []

    def reboot(self):
        self.entries.clear()
        self.booted_at = self.clock()


class FakeSession:
    def __init__(self, router: FakeRouter, name: str):
        self.router, self.name, self.connected = router, name, False

    def connect(self):
        if not self.router.up:
            raise RouterUnreachable(self.name, "connection refused")
        self.connected = True

    def close(self):
        self.connected = False

    def _cmd(self, what):
        if not self.router.up:
            self.connected = False
            raise RouterUnreachable(self.name, "connection lost")
        self.router.commands.append(what)

    def add_block(self, address, timeout_s, comment):
        self._cmd(("add", address, round(timeout_s)))
        if self.router.refuse_adds:
            raise RouterCommandError(self.name, "not enough permissions (9): give the user write", kind="permission")
        self.router.entries[address] = self.router.clock() + timeout_s
        return "added"

    def remove_block(self, address):
        self._cmd(("remove", address))
        return self.router.entries.pop(address, None) is not None

    def list_blocks(self):
        self._cmd(("list",))
        now = self.router.clock()
        return {a: Entry(d - now) for a, d in self.router.entries.items() if d > now}

    def uptime(self):
        self._cmd(("uptime",))
        return self.router.clock() - self.router.booted_at


class Clock:
    def __init__(self, start=NOW):
        self.t = start
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            return self.t

    def advance(self, seconds):
        with self.lock:
            self.t += seconds


@pytest.fixture
def rig(tmp_path):
    clock = Clock()
    ledger = Ledger(str(tmp_path / "l.sqlite3"))
    router = FakeRouter(clock)
    cfg = RouterConfig(name="r1", host="127.0.0.1", reconcile_interval=3600.0)
    workers = []

    def make_worker():
        worker = RouterWorker(
            cfg,
            ledger,
            lambda c: FakeSession(router, c.name),
            Backoff(base=0.01, cap=0.05),
            clock=clock,
            poll_interval=0.05,
        )
        workers.append(worker)
        return worker

    yield clock, ledger, router, make_worker
    for worker in workers:
        assert worker.stop(5.0)
    ledger.close()


def block(ledger, address, clock, duration=300.0):
    ledger.record_block(BlockRequest(address, duration, "t", requested_at=clock()), ["r1"], now=clock())


def status(ledger, address):
    state = ledger.router_state("r1", address)
    return state.status if state else None


def test_worker_applies_pending_and_unblock_removes(rig):
    clock, ledger, router, make_worker = rig
    block(ledger, A, clock)
    worker = make_worker()
    worker.start()
    assert wait_until(lambda: status(ledger, A) == "applied")
    assert router.entries[A] == pytest.approx(NOW + 300)
    ledger.record_unblock(A, ["r1"], now=clock())
    worker.wake()
    assert wait_until(lambda: status(ledger, A) == "removed")
    assert A not in router.entries
    assert [c[0] for c in router.commands] == ["uptime", "list", "add", "remove"]


def test_router_down_then_up_gets_pending_blocks_with_remaining_time(rig):
    clock, ledger, router, make_worker = rig
    router.up = False
    worker = make_worker()
    worker.start()
    block(ledger, A, clock, duration=300)
    worker.wake()
    assert wait_until(lambda: ledger.router_meta("r1").last_error is not None)
    assert "connection refused" in ledger.router_meta("r1").last_error
    assert status(ledger, A) == "pending"
    clock.advance(120)
    router.up = True
    assert wait_until(lambda: status(ledger, A) == "applied")
    [add] = [c for c in router.commands if c[0] == "add"]
    assert add == ("add", A, 180)  # the remaining time, not the original 300 s


def test_block_expired_while_router_was_down_is_dropped(rig):
    clock, ledger, router, make_worker = rig
    router.up = False
    block(ledger, A, clock, duration=60)
    worker = make_worker()
    worker.start()
    assert wait_until(lambda: ledger.router_meta("r1").last_error is not None)
    clock.advance(61)
    router.up = True
    assert wait_until(lambda: status(ledger, A) == "expired")
    assert not [c for c in router.commands if c[0] == "add"]


def test_refusal_is_recorded_with_the_router_name_and_retried_at_reconcile(rig):
    clock, ledger, router, make_worker = rig
    router.refuse_adds = True
    block(ledger, A, clock)
    worker = make_worker()
    worker.start()
    assert wait_until(lambda: status(ledger, A) == "failed")
    state = ledger.router_state("r1", A)
    assert "router r1" in state.last_error and "permissions" in state.last_error and state.attempts == 1
    router.refuse_adds = False
    worker.reconcile_soon()
    assert wait_until(lambda: status(ledger, A) == "applied")


def test_reboot_noticed_at_reconcile_restores_unexpired_blocks(rig):
    clock, ledger, router, make_worker = rig
    block(ledger, A, clock, duration=300)
    block(ledger, B, clock, duration=30)
    worker = make_worker()
    worker.start()
    assert wait_until(lambda: status(ledger, A) == "applied" and status(ledger, B) == "applied")
    clock.advance(100)
    router.reboot()
    router.commands.clear()
    worker.reconcile_soon()
    assert wait_until(lambda: A in router.entries and status(ledger, B) == "expired")
    assert ledger.router_meta("r1").reboots == 1
    assert [c for c in router.commands if c[0] == "add"] == [("add", A, 200)]


def test_restarted_worker_confirms_instead_of_resending(rig):
    clock, ledger, router, make_worker = rig
    block(ledger, A, clock)
    first = make_worker()
    first.start()
    assert wait_until(lambda: status(ledger, A) == "applied")
    assert first.stop(5.0)
    # the process died after the router took the add but before the ledger said so
    ledger.set_status("r1", A, "pending", clock())
    router.commands.clear()
    second = make_worker()
    second.start()
    assert wait_until(lambda: status(ledger, A) == "applied" and len(router.commands) >= 2)
    time.sleep(0.2)  # a few idle polls: still nothing sent
    assert [c[0] for c in router.commands] == ["uptime", "list"]
