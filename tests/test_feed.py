"""The feed that outputs read: what the pipeline and the router workers publish, and its guarantees.

Outputs (metrics, notifications, the status page) subscribe; publishing never waits for them and
a broken one is disconnected, so the alert path is never held up by an output.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest
from responder_rig import wait_until
from test_policy import OPEN, T0, attack
from test_worker import NOW, Clock, FakeRouter, FakeSession, block

from bridge.decide.policy import Policy
from bridge.events import DECISION_REASONS, Origin
from bridge.pipeline import Pipeline
from responder.config import RouterConfig
from responder.feed import (
    Decided,
    EntryApplied,
    EntryRemoved,
    Feed,
    FloodGuardChanged,
    LineRead,
    QueueSubscriber,
    RouterChanged,
)
from responder.ledger import Ledger
from responder.sync.backoff import Backoff
from responder.sync.worker import RouterWorker

FAST = "12/04-10:00:00.000001  [**] [1:1000101:1] web attack [**] [Priority: 1] {TCP} 203.0.113.7:40000 -> 198.51.100.20:80"


def collect(feed: Feed) -> list:
    events: list = []
    feed.subscribe(events.append)
    return events


def test_every_decision_carries_a_bounded_reason():
    policy = Policy(replace(OPEN, threshold=2, exclude_sids=("1:9",)))
    seen = [
        policy.decide(attack(priority=3), T0).reason,
        policy.decide(attack(sid=9, priority=1), T0).reason,
        policy.decide(attack(priority=1), T0).reason,
        policy.decide(attack(priority=1), T0).reason,
        policy.decide(attack(priority=1), T0).reason,
        policy.decide(attack(src="169.254.1.1", priority=1), T0).reason,
    ]
    assert seen == ["low_priority", "excluded", "threshold", "priority", "already_blocked", "protected"]
    assert set(seen) <= set(DECISION_REASONS)


def test_pipeline_publishes_lines_and_decisions():
    feed = Feed()
    events = collect(feed)
    pipeline = Pipeline(Policy(OPEN), feed=feed, clock=lambda: T0)
    pipeline.alert_line(FAST, Origin("/var/log/snort/alert_fast.txt", 0, 1), "fast")
    pipeline.alert_line("garbage", Origin("/var/log/snort/alert_fast.txt", 10, 2), "fast")
    read, decided, unparsable = events
    assert read == LineRead("/var/log/snort/alert_fast.txt", "alert", T0)
    assert isinstance(decided, Decided) and decided.decision.action == "block" and decided.at == T0
    assert decided.decision.target == ipaddress.ip_address("203.0.113.7") and decided.decision.reason == "priority"
    assert unparsable == LineRead("/var/log/snort/alert_fast.txt", "unparsable", T0)


def test_flood_guard_trip_is_published():
    feed = Feed()
    events = collect(feed)
    pipeline = Pipeline(Policy(replace(OPEN, max_new_blocks_per_minute=2)), feed=feed, clock=lambda: T0)
    for n in range(3):
        pipeline.act(attack(src=f"203.0.113.{n + 1}", priority=1))
    [trip] = [e for e in events if isinstance(e, FloodGuardChanged)]
    assert trip.tripped and "FLOOD GUARD" in trip.description


def test_a_failing_subscriber_is_dropped_and_others_still_served():
    feed = Feed()

    def broken(event):
        raise RuntimeError("output down")

    feed.subscribe(broken)
    events = collect(feed)
    feed.publish("one")
    feed.publish("two")
    assert events == ["one", "two"]


def test_queue_subscriber_never_waits_and_counts_overflow():
    subscriber = QueueSubscriber(maxsize=2, accept=lambda e: e != "skip")
    for event in ("a", "skip", "b", "c", "d"):
        subscriber(event)
    assert subscriber.queue.qsize() == 2 and subscriber.dropped == 2


@pytest.fixture
def worker_rig(tmp_path):
    clock = Clock()
    ledger = Ledger(str(tmp_path / "l.sqlite3"))
    router = FakeRouter(clock)
    feed = Feed()
    events = collect(feed)
    worker = RouterWorker(
        RouterConfig(name="r1", host="127.0.0.1", reconcile_interval=3600.0),
        ledger,
        lambda c: FakeSession(router, c.name),
        Backoff(base=0.01, cap=0.05),
        clock=clock,
        poll_interval=0.05,
        feed=feed,
    )
    yield clock, ledger, router, worker, events
    assert worker.stop(5.0)
    ledger.close()


def test_worker_publishes_reachability_changes_once_and_entries(worker_rig):
    clock, ledger, router, worker, events = worker_rig
    address = ipaddress.ip_address("203.0.113.7")
    router.up = False
    worker.start()
    assert wait_until(lambda: any(isinstance(e, RouterChanged) for e in events))
    block(ledger, address, clock)
    router.up = True
    clock.advance(1)  # past the retry time on the test's clock
    worker.wake()
    assert wait_until(lambda: any(isinstance(e, EntryApplied) for e in events))
    ledger.record_unblock(address, ["r1"], now=clock())
    worker.wake()
    assert wait_until(lambda: any(isinstance(e, EntryRemoved) for e in events))
    changes = [(e.up, e.error is not None) for e in events if isinstance(e, RouterChanged)]
    assert changes == [(False, True), (True, False)]  # one event per change, however many retries
    [applied] = [e for e in events if isinstance(e, EntryApplied)]
    assert applied.router == "r1" and applied.address == address and applied.expires_at == pytest.approx(NOW + 300)
