"""The step runner's refusals as another thread sees them: a block's refusal and the router's last
error are one ledger commit, so the status page, /health and ``snort-bridge routers`` never show a
refused block on a router that has no error (CI once caught the gap between the two commits)."""

from __future__ import annotations

import ipaddress
import threading
import time

import pytest

from responder.errors import RouterCommandError
from responder.events import BlockRequest
from responder.feed import EntryRefused, Feed
from responder.ledger import Ledger
from responder.sync.plan import Remove, Send
from responder.sync.step_runner import StepRunner

ROUTER = "r1"
ADDRESSES = [ipaddress.ip_address(f"203.0.113.{i}") for i in (1, 2, 3)]
REFUSAL = RouterCommandError(ROUTER, "router r1: not enough permissions (check the user's group)", kind="permission")


class OneAtATime:
    """A session with only single-step methods (how SSH removes)."""

    def add_block(self, address, timeout_s, comment):
        raise REFUSAL

    def remove_block(self, address):
        raise REFUSAL


class Batches:
    """A session with the batched methods (how the API adds and removes)."""

    def add_blocks(self, blocks):
        return [REFUSAL for _ in blocks]

    def remove_blocks(self, addresses):
        return [REFUSAL for _ in addresses]


@pytest.mark.parametrize("session", [OneAtATime(), Batches()], ids=["one-at-a-time", "batches"])
@pytest.mark.parametrize("kind", ["add", "remove"])
def test_a_reader_never_sees_a_refused_block_on_a_router_without_an_error(tmp_path, session, kind):
    ledger = Ledger(str(tmp_path / "ledger.sqlite3"))
    now = time.time()
    ledger.record_blocks([BlockRequest(address, 600.0, "attack", "1:1") for address in ADDRESSES], [ROUTER], now)
    feed = Feed()
    seen: list[tuple[str | None, str | None]] = []  # (the block's error, the router's error), as a reader saw them
    readers: list[threading.Thread] = []

    def read_both() -> None:
        state = ledger.router_state(ROUTER, ADDRESSES[0])
        seen.append((state.last_error if state else None, ledger.router_meta(ROUTER).last_error))

    def on_event(event: object) -> None:
        # Published right after the refusal is written: a reader from another thread now, given
        # the time to read before the runner goes on (it waits on the ledger while a commit is open).
        if isinstance(event, EntryRefused) and event.address == ADDRESSES[0] and not readers:
            reader = threading.Thread(target=read_both)
            readers.append(reader)
            reader.start()
            reader.join(0.5)

    feed.subscribe(on_event)
    runner = StepRunner(
        ROUTER,
        ledger,
        clock=time.time,
        feed=feed,
        on_change=lambda: None,
        stopping=threading.Event(),
        record_error=lambda error, *, reachable: ledger.record_router_error(
            ROUTER, error, time.time(), reachable=reachable
        ),
        max_timeout=86400.0,
    )
    if kind == "add":
        steps = [Send(address, now + 600.0, "tzsp-ips test") for address in ADDRESSES]
    else:
        steps = [Remove(address) for address in ADDRESSES]
    try:
        assert runner.run(session, steps)
        assert readers, "the refusal was not published"
        readers[0].join(10)
        assert len(seen) == 1
        block_error, router_error = seen[0]
        assert block_error is not None and "not enough permissions" in block_error
        assert router_error is not None and "not enough permissions" in router_error, seen
    finally:
        ledger.close()
