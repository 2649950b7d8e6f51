"""Blocks longer than RouterOS' timeouts: static entries we remove ourselves, on v6 and v7.

routeros-sim enforces each flavour's limit (v7 35w3d13h13m56s, as the manual says; v6 the lower
24d20h31m23s); the worker learns a lower limit from the router's refusal. End to end over real SSH,
on a clock that runs in real time and jumps forward when told: a reboot in the middle of a long
block keeps the static entry, and the worker removes it when the block ends, also after our restart.
"""

from __future__ import annotations

import ipaddress
import time

import pytest
from responder_rig import LIST, Lab, shared_host_key, wait_until

from responder.events import BlockRequest
from responder.ledger import Ledger, RouterBlock
from responder.routeros.duration import (
    MAX_TIMEOUT_SECONDS,
    V6_MAX_TIMEOUT_SECONDS,
    format_clock,
    timeout_limit_of,
)
from responder.sim import SimRouter
from responder.sim.router.state import StateError
from responder.sync.plan import Mark, Remove, Send, plan_steps

A = ipaddress.ip_address("203.0.113.7")
B = ipaddress.ip_address("198.51.100.9")
C = ipaddress.ip_address("2001:db8::c")
DAY = 86400.0
NOW = 1_790_000_000.0
LIMITS = {"v6": float(V6_MAX_TIMEOUT_SECONDS), "v7": float(MAX_TIMEOUT_SECONDS)}


class JumpClock:
    """Real time, plus jumps: workers and backoff keep running, and days pass when the test says so."""

    def __init__(self, start: float = NOW):
        self.start = start
        self.origin = time.monotonic()
        self.jumped = 0.0

    def __call__(self) -> float:
        return self.start + (time.monotonic() - self.origin) + self.jumped

    def jump(self, seconds: float) -> None:
        self.jumped += seconds


# -- the limits, as the simulator enforces them and as we read them back ------------------------------


@pytest.mark.parametrize("flavour", ["v6", "v7"])
def test_sim_refuses_timeouts_beyond_its_flavours_limit(flavour):
    sim = SimRouter(flavour=flavour, host_key=shared_host_key())
    sim.add_user("admin", password="x", policies=("ssh", "read", "write"))
    limit = LIMITS[flavour]
    add = "/ip firewall address-list add list=bl address=203.0.113.{} timeout={}"
    assert sim.execute("admin", add.format(1, int(limit))).output == ""  # the limit itself is fine
    refused = sim.execute("admin", add.format(2, int(limit) + 1)).output.strip()
    assert refused == f"value of timeout is out of range (00:00:00 .. {format_clock(limit)})"
    assert timeout_limit_of(refused) == limit
    assert sim.execute("admin", "/ip firewall address-list add list=bl address=203.0.113.3").output == ""  # static
    [static] = [e for e in sim.address_list("bl") if e.address == "203.0.113.3"]
    assert static.timeout is None and not static.dynamic


def test_limits_differ_per_flavour_and_parse_back():
    assert format_clock(MAX_TIMEOUT_SECONDS) == "35w3d13:13:56"
    assert LIMITS["v6"] < 25 * DAY < LIMITS["v7"]
    assert (
        timeout_limit_of(
            "value of timeout is out of range (00:00:00 .. 35w3d13:13:56) (/ip/firewall/address-list/add; line 1)"
        )
        == MAX_TIMEOUT_SECONDS
    )
    assert timeout_limit_of("failure: already have such entry") is None


def test_state_error_kind_is_out_of_range():
    sim = SimRouter(flavour="v6", host_key=shared_host_key())
    with pytest.raises(StateError) as caught:
        sim.state.add_address(4, list_name="bl", address="203.0.113.1", timeout=30 * DAY)
    assert caught.value.kind == "out-of-range"


# -- the plan ---------------------------------------------------------------------------------------


def row(address=A, *, status="pending", expires=NOW + 40 * DAY, static=False, state="active"):
    return RouterBlock("r1", address, "bad", "1:2", state, expires, status, None, None, 0, 3, static)


class Entry:
    def __init__(self, timeout_s, comment=""):
        self.timeout_s, self.comment = timeout_s, comment


def test_plan_sends_beyond_the_limit_as_static_with_the_end_in_its_comment():
    [step] = plan_steps([row()], None, NOW, retry_failed=False, max_timeout=LIMITS["v6"])
    assert isinstance(step, Send) and step.static and step.comment.startswith("tzsp-ips [1:2] until ")
    assert "bad" in step.comment
    [step] = plan_steps([row()], None, NOW, retry_failed=False, max_timeout=LIMITS["v7"])
    assert not step.static and step.comment == "tzsp-ips [1:2] bad"


def test_plan_removes_our_static_entry_when_its_block_ends_but_never_one_added_by_hand():
    ended = NOW - 1
    assert plan_steps([row(status="applied", static=True, expires=ended)], None, NOW, retry_failed=False) == [
        Remove(A, 3, final="expired")
    ]
    ours = {A: Entry(None, "tzsp-ips [1:2] until 2026-01-01 00:00Z: bad")}
    assert plan_steps([row(status="pending", expires=ended)], ours, NOW, retry_failed=True) == [
        Remove(A, 3, final="expired")
    ]
    by_hand = {A: Entry(None, "office printer, keep")}
    assert plan_steps([row(status="applied", expires=ended)], by_hand, NOW, retry_failed=True) == [
        Mark(A, "expired", generation=3)
    ]
    # a dynamic entry ends by itself
    assert plan_steps([row(status="applied", expires=ended)], None, NOW, retry_failed=False) == [
        Mark(A, "expired", generation=3)
    ]


def test_plan_confirms_our_static_entry_after_a_reboot_and_keeps_the_flag():
    ours = {A: Entry(None, "tzsp-ips [1:2] until x: bad")}
    assert plan_steps([row(status="pending", static=True)], ours, NOW, retry_failed=True, max_timeout=LIMITS["v6"]) == [
        Mark(A, "applied", NOW + 40 * DAY, 3, static=True)
    ]


def test_ledger_finds_static_entries_due_and_keeps_them_from_pruning(tmp_path):
    ledger = Ledger(str(tmp_path / "l.sqlite3"))
    ledger.record_block(BlockRequest(A, 40 * DAY, "bad", "1:2", requested_at=NOW), ["r1"], NOW)
    ledger.set_status("r1", A, "applied", NOW, expires_at=NOW + 40 * DAY, static=True)
    assert ledger.static_due("r1", NOW + DAY) == []
    later = NOW + 41 * DAY
    [due] = ledger.static_due("r1", later)
    assert due.static and due.address == A and ledger.pending_count("r1", later) == 1
    ledger.prune(later + 30 * DAY)  # still ours to remove: not forgotten
    assert ledger.static_due("r1", later + 30 * DAY)
    ledger.set_status("r1", A, "expired", later, static=False)
    assert ledger.static_due("r1", later) == [] and ledger.pending_count("r1", later) == 0
    ledger.close()


# -- end to end over SSH, both flavours, with a reboot and our restart in the middle -------------------


class FlavourLab(Lab):
    def add_sim(self, name, flavour, clock):
        sim = SimRouter(host_key=shared_host_key(), flavour=flavour, clock=clock)
        sim.add_user("ips", authorized_keys=(self.key,), policies=("ssh", "read", "write"))
        self.sims[name] = sim
        self.ports[name] = sim.start("127.0.0.1", 0)
        from responder.transport import known_hosts

        known_hosts.record(
            self.known_hosts,
            known_hosts.host_name("127.0.0.1", self.ports[name]),
            sim.host_key.get_name(),
            sim.host_key.asbytes(),
        )
        return sim


@pytest.fixture
def lab(tmp_path):
    lab = FlavourLab(tmp_path)
    yield lab
    lab.close()


def request(address, duration, clock, sid="1:2001"):
    return BlockRequest(address, duration, "ET SCAN test", sid, requested_at=clock())


def state(responder, address, name="r1"):
    return responder.states(address)[name]


@pytest.mark.parametrize("flavour", ["v6", "v7"])
def test_long_block_is_static_survives_a_reboot_and_is_removed_at_its_end_even_after_our_restart(lab, flavour):
    clock = JumpClock()
    sim = lab.add_sim("r1", flavour, clock)
    config = lab.config(reconcile_interval="1s")
    limit = LIMITS[flavour]
    long_block, longer_block = limit + 10 * DAY, limit + 20 * DAY
    responder = lab.responder(config, clock=clock)

    responder.block(request(A, long_block, clock))
    responder.block(request(C, longer_block, clock))
    responder.block(request(B, 3600.0, clock))
    for address in (A, B, C):
        assert responder.wait_applied(address, timeout=20), responder.states(address)
    entries = {**lab.entries("r1"), **lab.entries("r1", 6)}
    assert entries[str(A)].timeout is None and not entries[str(A)].dynamic  # static
    assert entries[str(A)].comment.startswith("tzsp-ips [1:2001] until ")
    assert entries[str(C)].timeout is None
    assert entries[str(B)].dynamic and 3500 < entries[str(B)].timeout <= 3600
    assert state(responder, A).static and not state(responder, B).static
    adds_of_a = [c for c in lab.adds("r1") if str(A) in c]
    if flavour == "v6":  # the router refused the long timeout, and taught us its limit: in the
        # batched line (which says only that the add failed), then alone (which says why)
        assert len(adds_of_a) == 3 and "timeout=" in adds_of_a[1] and "timeout=" not in adds_of_a[2]
        assert adds_of_a[0] == adds_of_a[1]
    else:  # beyond the v7 limit from the start: no refused attempt
        assert len(adds_of_a) == 1 and "timeout=" not in adds_of_a[0]

    # 10 days on, the router reboots: the dynamic entry is gone, the static ones stay
    clock.jump(10 * DAY)
    responder.block(request(B, 3600.0, clock))  # B came back meanwhile: a second block, dynamic again
    sim.reboot()
    assert wait_until(lambda: str(B) in lab.entries("r1"), timeout=20)
    assert str(A) in lab.entries("r1") and lab.entries("r1")[str(A)].timeout is None
    assert len([c for c in lab.adds("r1") if str(A) in c]) == len(adds_of_a)  # never re-sent
    assert wait_until(lambda: responder.ledger.router_meta("r1").reboots >= 1, timeout=20)
    # the reboot queued it again; the listing then confirms the static entry in place
    assert wait_until(lambda: state(responder, A).status == "applied", timeout=20)
    assert state(responder, A).static
    assert len([c for c in lab.adds("r1") if str(A) in c]) == len(adds_of_a)

    # our process stops; A's block ends while we are away; at start the worker removes it
    assert responder.stop(timeout=5)
    clock.jump(long_block - 10 * DAY + 60)
    assert str(A) in lab.entries("r1")  # nobody else would ever remove it
    second = lab.responder(config, clock=clock)
    assert wait_until(lambda: str(A) not in lab.entries("r1"), timeout=20)
    assert wait_until(lambda: state(second, A).status == "expired", timeout=10)
    assert not state(second, A).static
    assert str(C) in lab.entries("r1", 6)  # its block has ten more days

    # C ends while we run: removed within a poll, no reconcile needed
    clock.jump(10 * DAY)
    assert wait_until(lambda: str(C) not in lab.entries("r1", 6), timeout=20)
    assert wait_until(lambda: state(second, C).status == "expired", timeout=10)
    assert sim.address_list(LIST) == [] and sim.address_list(LIST, 6) == []


def test_a_dynamic_entry_is_replaced_when_a_block_grows_beyond_the_limit(lab):
    clock = JumpClock()
    lab.add_sim("r1", "v6", clock)
    responder = lab.responder(lab.config(), clock=clock)
    responder.block(request(A, 3600.0, clock))
    assert responder.wait_applied(A, timeout=20)
    assert lab.entries("r1")[str(A)].dynamic
    responder.block(request(A, 60 * DAY, clock))  # e.g. `snort-bridge block --for 60d` on a repeat offender
    assert wait_until(
        lambda: lab.entries("r1").get(str(A)) is not None and lab.entries("r1")[str(A)].timeout is None, timeout=20
    )
    assert wait_until(lambda: state(responder, A).static and state(responder, A).status == "applied", timeout=10)


def test_a_router_down_when_the_block_ends_gets_the_removal_when_it_is_back(lab):
    clock = JumpClock()
    sim = lab.add_sim("r1", "v7", clock)
    responder = lab.responder(lab.config(reconcile_interval="1s"), clock=clock)
    responder.block(request(A, LIMITS["v7"] + DAY, clock))
    assert responder.wait_applied(A, timeout=20) and state(responder, A).static
    port = lab.ports["r1"]
    sim.stop()
    clock.jump(LIMITS["v7"] + 2 * DAY)  # the block ends while the router is unreachable
    assert wait_until(lambda: responder.ledger.pending_count("r1", clock()) == 1, timeout=10)  # the removal is owed
    time.sleep(0.5)
    assert state(responder, A).status == "applied"  # not given up, not marked expired
    sim.start("127.0.0.1", port)
    assert wait_until(lambda: str(A) not in lab.entries("r1"), timeout=20)
    assert wait_until(lambda: state(responder, A).status == "expired", timeout=10)
