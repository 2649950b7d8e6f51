"""A wall-clock step of ±1 h (NTP correcting a bad clock at boot) changes no block's end.

The wall clock is injected (real time plus an offset the test steps); the monotonic clock is the
real one. The router is simulated over real SSH: its entries count down on its own clock, so what
matters is the ledger's idea of each end, which a restart (or a router reboot) sends again.
"""

from __future__ import annotations

import ipaddress
import time
from types import SimpleNamespace

import pytest
from responder_rig import wait_until

from bridge.service.keeping import Keeper
from plumbing.steadyclock import SteadyClock
from responder.events import BlockRequest
from responder.feed import Feed
from responder.ledger import Ledger
from responder.ledger.timeshift import shift_times

HOUR = 3600.0
ADDRESS = ipaddress.ip_address("203.0.113.44")


class SteppedWall:
    """Real wall time plus ``offset``: ``step(3600)`` is NTP moving the clock an hour forward."""

    def __init__(self):
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def step(self, seconds: float) -> None:
        self.offset += seconds


def test_steady_clock_ignores_a_step_until_told_and_reports_it():
    wall, mono = [1000.0], [50.0]
    clock = SteadyClock(wall=lambda: wall[0], monotonic=lambda: mono[0])
    assert clock() == 1000.0
    wall[0] += 10.0
    mono[0] += 10.0
    assert clock() == 1010.0 and clock.step() == 0.0
    wall[0] += 1.5  # slewing, jitter: not a step
    assert clock.step() == 0.0
    wall[0] += HOUR
    assert clock() == 1010.0  # the timer does not jump
    assert clock.step() == pytest.approx(HOUR + 1.5)
    clock.rebase(clock.step())
    assert clock() == wall[0] and clock.step() == 0.0
    wall[0] -= 2 * HOUR
    assert clock.step() == pytest.approx(-2 * HOUR)


def test_shift_moves_every_time_in_the_ledger(tmp_path):
    ledger = Ledger(str(tmp_path / "ledger.sqlite3"))
    try:
        ledger.record_block(BlockRequest(ADDRESS, 600.0, "x", "1:1", requested_at=1000.0), ["r1"], 1000.0)
        ledger.set_status("r1", ADDRESS, "applied", 1001.0, expires_at=1600.0)
        shift_times(ledger, -HOUR)
        (record,) = ledger.blocks(0.0, include_inactive=True)
        assert record.expires_at == 1600.0 - HOUR and record.first_seen == 1000.0 - HOUR
        assert record.routers["r1"].expires_at == 1600.0 - HOUR
    finally:
        ledger.close()


@pytest.mark.parametrize("step", [HOUR, -HOUR])
def test_a_block_ends_when_it_was_going_to_after_a_step(lab, step):
    sim = lab.add("r1")
    wall = SteppedWall()
    clock = SteadyClock(wall=wall)
    responder = lab.responder(clock=clock)
    started = time.monotonic()
    responder.block(BlockRequest(ADDRESS, 600.0, "attack", "1:5", requested_at=clock()))
    assert responder.wait_applied(ADDRESS, 20)

    wall.step(step)  # NTP
    service = SimpleNamespace(responder=responder, pipeline=None, follower=None, feed=Feed())
    Keeper(service, clock).keep_time()
    assert clock.step() == 0.0 and abs(clock() - wall()) < 0.5  # the clock follows the wall again
    elapsed = time.monotonic() - started
    (record,) = responder.ledger.blocks(clock())
    assert abs((record.expires_at - wall()) - (600.0 - elapsed)) < 1.0  # same real end, to the second
    assert responder.stop(5)

    # a restart anchors a new clock on the (now right) wall clock; a router reboot makes the
    # worker send the block again: with its real remaining time, not an hour less or more
    sim.reboot()
    again = lab.responder(clock=SteadyClock(wall=wall))
    assert wait_until(lambda: str(ADDRESS) in lab.entries("r1"), 20)
    remaining = 600.0 - (time.monotonic() - started)
    timeout = lab.entries("r1")[str(ADDRESS)].timeout
    assert timeout is not None and remaining - 5 <= timeout <= remaining + 1, (timeout, remaining)
    assert again.stop(5)
