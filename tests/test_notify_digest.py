"""What the people on call are told, and when: the pure digester (feed events in, messages out).

The clock is passed in: every timing rule (first event at once, the rest gathered into one digest
per min_interval, kinds apart, nothing told twice) is checked without sleeping.
"""

from __future__ import annotations

import ipaddress
import re

import pytest
from test_service import FakeLedger, _Record

from bridge.config import PolicyConfig
from bridge.decide.policy import Policy
from bridge.events import Alert, Decision, Origin
from bridge.notify.digest import SETTLE, Digester
from bridge.notify.text import span, utc
from bridge.pipeline import Pipeline
from responder.feed import BlockLifted, Decided, EntryApplied, Feed, FloodGuardChanged, LineRead, RouterChanged

T0 = 1_796_342_400.0  # 2026-12-04 00:00:00 UTC
EVERYTHING = ("block", "unblock", "router_down", "router_up", "flood_guard", "sensor_silent")
SENSOR = "/var/log/snort/alert_fast.txt"


def blocked(
    address: str, at: float = T0, sid: int = 1000101, msg: str = "web attack", block_for: float = 300.0
) -> Decided:
    alert = Alert(
        gid=1,
        sid=sid,
        rev=1,
        msg=msg,
        format="fast",
        origin=Origin(SENSOR, 4096, 17),
        priority=1,
        proto="TCP",
        src=ipaddress.ip_address(address),
        sport=40000,
        dst=ipaddress.ip_address("198.51.100.20"),
        dport=80,
    )
    decision = Decision(
        "block",
        f"priority 1 <= min_priority 1 ({alert.gid_sid})",
        alert,
        target=ipaddress.ip_address(address),
        block_for=block_for,
        attribution="src (default)",
        reason="priority",
    )
    return Decided(decision, at)


def digester(events=EVERYTHING, min_interval=60.0, **kwargs) -> Digester:
    kwargs.setdefault("routers", ("core1", "edge2"))
    return Digester(events, min_interval, now=T0, host="ips1", **kwargs)


def test_one_block_says_what_whom_why_where_until_when_and_how_to_undo():
    d = digester()
    d.offer(blocked("203.0.113.7"), T0)
    assert d.due(T0) == []  # it waits a moment for company ...
    [message] = d.due(T0 + SETTLE)  # ... then goes out on its own
    assert message.kind == "block" and message.severity == "warning" and message.events == 1
    assert message.title == "tzsp-ips@ips1: blocked 203.0.113.7 (web attack)"
    body = message.body
    assert "Blocked 203.0.113.7 on core1, edge2 until 2026-12-04 00:05:00 UTC (5m)" in body
    assert "1:1000101 web attack (priority 1)" in body  # the rule
    assert "priority 1 <= min_priority 1" in body  # why
    assert "Attacker: src (default)" in body  # how the attacker end was chosen
    assert "TCP 203.0.113.7:40000 -> 198.51.100.20:80" in body
    assert f"Sensor:   {SENSOR}:17" in body  # which alert file, which line
    assert "Undo:     snort-bridge unblock 203.0.113.7" in body


def test_a_storm_of_ten_thousand_blocks_gives_a_handful_of_digests_that_count_everything():
    d = digester()
    messages = []
    for n in range(10_000):  # 10,000 new attackers over 100 s, two rules
        now = T0 + n * 0.01
        d.offer(
            blocked(
                str(ipaddress.ip_address("11.0.0.0") + n),
                now,
                sid=1000101 + n % 2,
                msg="web attack" if n % 2 == 0 else "sql injection",
            ),
            now,
        )
        messages += d.due(now)
    messages += d.flush(T0 + 100)
    assert 2 <= len(messages) <= 4, [m.title for m in messages]
    assert sum(m.events for m in messages) == 10_000
    first, second = messages[0], messages[1]
    counted = int(re.match(r"tzsp-ips@ips1: ([\d,]+) blocks (?:in|at once)", second.title)[1].replace(",", ""))
    assert counted == second.events > 5_000
    assert (
        "Top rules:" in second.body
        and "1:1000101  web attack" in second.body
        and "1:1000102  sql injection" in second.body
    )
    assert "Top addresses:" in second.body and "more addresses" in second.body
    assert "Undo one: snort-bridge unblock ADDR" in second.body
    assert first.events == 201  # what came within the first SETTLE seconds, at 100 blocks a second


def test_a_later_event_within_min_interval_waits_for_the_digest_then_a_quiet_interval_sends_at_once():
    d = digester()
    d.offer(blocked("203.0.113.7"), T0)
    [first] = d.due(T0 + SETTLE)
    d.offer(blocked("203.0.113.8", T0 + 10), T0 + 10)
    assert d.due(T0 + 30) == []  # within min_interval of the last message: gathered
    assert d.next_due(T0 + 30) == pytest.approx(T0 + SETTLE + 60)
    [digest] = d.due(T0 + SETTLE + 60)
    assert "blocked 203.0.113.8" in digest.title  # a digest of one is told in full
    d.offer(blocked("203.0.113.9", T0 + 500), T0 + 500)  # after a quiet interval: at once again
    assert [m.title for m in d.due(T0 + 500 + SETTLE)] == ["tzsp-ips@ips1: blocked 203.0.113.9 (web attack)"]


def test_kinds_do_not_wait_for_each_other():
    d = digester()
    d.offer(blocked("203.0.113.7"), T0)
    d.due(T0 + SETTLE)
    d.offer(blocked("203.0.113.8", T0 + 5), T0 + 5)
    d.offer(RouterChanged("core1", False, T0 + 5, "router core1: connection refused"), T0 + 5)
    [router] = d.due(T0 + 5 + SETTLE)  # the block waits for its digest, the router does not
    assert router.kind == "router" and router.severity == "failure"


def test_router_down_then_up_says_since_when_the_error_how_long_and_what_catches_up():
    pending = {"core1": 12}
    d = digester(pending_blocks=pending.get)
    d.offer(RouterChanged("core1", True, T0), T0)  # the first connection at start is not news
    assert d.due(T0 + SETTLE) == []
    d.offer(RouterChanged("core1", False, T0 + 100, "router core1: connection refused"), T0 + 100)
    [down] = d.due(T0 + 100 + SETTLE)
    assert down.title == "tzsp-ips@ips1: router core1 down"
    assert f"core1 is UNREACHABLE since {utc(T0 + 100)}: router core1: connection refused" in down.body
    assert "snort-bridge routers" in down.body
    d.offer(RouterChanged("core1", True, T0 + 400), T0 + 400)
    [up] = d.due(T0 + 400 + SETTLE)
    assert up.title == "tzsp-ips@ips1: router core1 up" and up.severity == "success"
    assert "core1 is reachable again after 5m down" in up.body and "12 pending blocks catching up now" in up.body


def test_a_router_down_at_start_is_told_and_a_repeated_down_is_not():
    d = digester()
    d.offer(RouterChanged("core1", False, T0, "router core1: timed out"), T0)
    assert len(d.due(T0 + SETTLE)) == 1
    d.offer(RouterChanged("core1", False, T0 + 500, "router core1: timed out"), T0 + 500)  # a new worker (reload)
    assert d.due(T0 + 1000) == [] and d.suppressed == 1


def test_a_router_flapping_inside_the_interval_is_folded_into_one_line():
    d = digester()
    d.offer(RouterChanged("core1", True, T0), T0)
    d.offer(RouterChanged("core1", False, T0 + 10, "lost"), T0 + 10)
    [down] = d.due(T0 + 10 + SETTLE)
    for n in range(5):  # up, down, up, down, up, down ...: 10 changes within the interval
        d.offer(RouterChanged("core1", True, T0 + 20 + 2 * n), T0 + 20 + 2 * n)
        d.offer(RouterChanged("core1", False, T0 + 21 + 2 * n, "lost"), T0 + 21 + 2 * n)
        assert d.due(T0 + 21 + 2 * n) == []
    [folded] = d.due(T0 + 10 + SETTLE + 60)
    assert folded.events == 10 and "flapping" in folded.title
    assert "core1 is DOWN again after 10 changes (flapping)" in folded.body


def test_an_unblock_by_hand_is_seen_at_the_resync_and_told_with_its_end():
    feed = Feed()
    d = digester()
    feed.subscribe(lambda event: d.offer(event, T0 + 100) if d.wants(event) else None)
    pipeline = Pipeline(Policy(PolicyConfig(protected=())), feed=feed, clock=lambda: T0, routers=2)
    pipeline.act(blocked("203.0.113.7").decision.alert)  # blocked until T0 + 300
    pipeline.act(blocked("203.0.113.8").decision.alert)
    ledger = FakeLedger([_Record(ipaddress.ip_address("203.0.113.8"), T0 + 300)])  # .7 was unblocked by hand
    pipeline.resync(ledger, T0 + 100)
    pipeline.resync(FakeLedger(), T0 + 400)  # .8 expired: not an unblock
    messages = [m for m in d.due(T0 + 100 + SETTLE) if m.kind == "unblock"]
    [message] = messages
    assert message.title == "tzsp-ips@ips1: unblocked 203.0.113.7"
    assert (
        "203.0.113.7 unblocked at 00:01:40 UTC, 3m20s before its end (00:05:00 UTC); removed from core1, edge2"
        in message.body
    )
    assert "snort-bridge unblock" in message.body and "protected" in message.body


def test_the_flood_guard_trip_says_what_was_rolled_back():
    d = digester()
    d.offer(
        FloodGuardChanged(
            True,
            T0,
            "FLOOD GUARD TRIPPED: 101 new blocks within 60s > max_new_blocks_per_minute 100",
            (ipaddress.ip_address("203.0.113.9"),),
        ),
        T0,
    )
    [message] = d.due(T0 + SETTLE)
    assert "FLOOD GUARD" in message.title and "101 new blocks" in message.body
    assert "rolled back: 203.0.113.9" in message.body and message.severity == "failure"


def guard_cleared(at: float, since: float, held: int = 37) -> FloodGuardChanged:
    return FloodGuardChanged(
        False, at, "FLOOD GUARD CLEARED: blocking resumed after a quiet minute", held=held, since=since
    )


def test_the_flood_guard_resume_is_told_after_its_trip_with_how_long_and_how_many_were_held():
    d = digester()
    d.offer(guard_cleared(T0, T0 - 300), T0)  # no trip told before (e.g. it tripped before a restart)
    assert d.due(T0 + 100) == [] and d.suppressed == 1
    d.offer(
        FloodGuardChanged(
            True, T0 + 200, "FLOOD GUARD TRIPPED: 101 new blocks within 60s > max_new_blocks_per_minute 100"
        ),
        T0 + 200,
    )
    [trip] = d.due(T0 + 200 + SETTLE)
    assert trip.title == "tzsp-ips@ips1: FLOOD GUARD tripped: blocking stopped" and trip.severity == "failure"
    d.offer(guard_cleared(T0 + 500, T0 + 200), T0 + 500)  # after min_interval: at once
    [cleared] = d.due(T0 + 500 + SETTLE)
    assert cleared.kind == "flood_guard" and cleared.severity == "success"
    assert (
        cleared.title == "tzsp-ips@ips1: FLOOD GUARD cleared: blocking resumed after 5m; 37 block decisions held back"
    )
    assert (
        f"{utc(T0 + 500)}: blocking resumed after 5m (it held since 00:03:20 UTC): a quiet minute passed; "
        "37 block decisions held back meanwhile"
    ) in cleared.body
    assert "snort-bridge list" in cleared.body
    d.offer(guard_cleared(T0 + 900, T0 + 200), T0 + 900)  # told once
    assert d.due(T0 + 1000) == [] and d.suppressed == 2


def test_a_trip_and_its_resume_within_the_interval_make_one_digest():
    d = digester()
    d.offer(FloodGuardChanged(True, T0, "FLOOD GUARD TRIPPED: first"), T0)
    assert len(d.due(T0 + SETTLE)) == 1
    d.offer(guard_cleared(T0 + 10, T0, held=3), T0 + 10)
    d.offer(FloodGuardChanged(True, T0 + 20, "FLOOD GUARD TRIPPED: again"), T0 + 20)
    d.offer(guard_cleared(T0 + 40, T0 + 20, held=1), T0 + 40)
    assert d.due(T0 + 50) == []
    [digest] = d.due(T0 + SETTLE + 60)
    assert digest.events == 3 and digest.severity == "success"
    assert (
        digest.title
        == "tzsp-ips@ips1: FLOOD GUARD tripped and cleared: blocking resumed after 20s; 1 block decision held back"
    )
    assert (
        digest.body.index("3 block decisions held back")
        < digest.body.index("TRIPPED: again")
        < digest.body.index("1 block decision held back")
    )


def test_the_flood_guard_resumes_through_the_pipeline_when_its_quiet_minute_is_over():
    from bridge.decide.policy import FLOOD_WINDOW

    feed, clock = Feed(), [T0]
    d = digester(events=("flood_guard",))
    feed.subscribe(lambda event: d.offer(event, clock[0]) if d.wants(event) else None)
    pipeline = Pipeline(
        Policy(PolicyConfig(protected=(), max_new_blocks_per_minute=2)), feed=feed, clock=lambda: clock[0]
    )
    for n in range(1, 6):  # two blocks, the third trips it, two more are held
        pipeline.act(blocked(f"203.0.113.{n}").decision.alert)
    pipeline.tick()  # still within the minute
    [trip] = d.due(T0 + SETTLE)
    assert "tripped" in trip.title
    clock[0] = T0 + FLOOD_WINDOW + 1  # a quiet minute, no alert: the service's loop ticks
    pipeline.tick()
    assert pipeline.policy.guard.tripped is None
    [cleared] = d.due(T0 + FLOOD_WINDOW + 1 + SETTLE + 60)
    assert cleared.title.endswith("FLOOD GUARD cleared: blocking resumed after 1m; 3 block decisions held back")
    pipeline.tick()
    assert d.due(T0 + 1000) == []  # told once


def test_a_silent_sensor_is_told_once_and_again_when_it_speaks():
    d = digester(sensors=(SENSOR, "/var/log/snort/other.txt"), silent_after=3600.0)
    d.lines_seen({SENSOR: T0 + 1000}, T0 + 1000)
    assert d.next_due(T0 + 1000) == pytest.approx(T0 + 3600)  # the other file, silent since the start
    [silent] = d.due(T0 + 3600)
    assert silent.title == "tzsp-ips@ips1: sensor silent: /var/log/snort/other.txt"
    assert "no line for 1h, the last at" in silent.body and "silent_after" in silent.body
    assert d.due(T0 + 4000) == []  # told once per silence
    [second] = d.due(T0 + 4600)  # SENSOR's own hour without a line; a digest after min_interval
    assert SENSOR in second.title
    d.lines_seen({SENSOR: T0 + 5000, "/var/log/snort/other.txt": T0 + 5000}, T0 + 5000)
    [back] = d.due(T0 + 5000 + 60)
    assert back.severity == "success" and back.title.startswith("tzsp-ips@ips1: sensor back")


def test_a_glob_is_one_sensor_until_its_files_speak_then_each_file_is_told_apart():
    pattern = "/var/log/tzsp-ips/sensors/*/alert_json.txt"
    one, two = (pattern.replace("*", name) for name in ("sensor1", "sensor2"))
    d = digester(sensors=(pattern,), silent_after=3600.0)
    d.lines_seen({"/var/log/elsewhere.txt": T0 + 10}, T0 + 10)  # not the glob's: ignored
    [silent] = d.due(T0 + 3600)  # no file of the glob has spoken yet: the glob is the sensor
    assert silent.title == f"tzsp-ips@ips1: sensor silent: {pattern}"
    d.lines_seen({one: T0 + 4000, two: T0 + 4000}, T0 + 4000)
    [back] = d.due(T0 + 4000 + 60)
    assert back.severity == "success" and pattern in back.title  # the glob speaks again: told once
    d.lines_seen({one: T0 + 7000}, T0 + 7000)  # sensor2 says nothing more
    [quiet] = d.due(T0 + 4000 + 3600)
    assert quiet.title == f"tzsp-ips@ips1: sensor silent: {two}"  # the one silent file, not the glob
    assert d.due(T0 + 7000 + 3000) == []


def test_only_the_chosen_events_are_queued_or_told():
    d = digester(events=("router_down",))
    assert not d.wants(blocked("203.0.113.7"))
    assert not d.wants(BlockLifted(ipaddress.ip_address("203.0.113.7"), T0, T0 + 300))
    assert not d.wants(EntryApplied("core1", ipaddress.ip_address("203.0.113.7"), T0))
    assert not d.wants(LineRead(SENSOR, "alert", T0))
    assert d.wants(RouterChanged("core1", False, T0, "x"))
    d.offer(RouterChanged("core1", False, T0, "x"), T0)
    d.offer(RouterChanged("core1", True, T0 + 100), T0 + 100)  # router_up not chosen
    assert len(d.due(T0 + 1000)) == 1
    ignore = Decision("ignore", "low priority", blocked("203.0.113.7").decision.alert, reason="low_priority")
    assert not digester().wants(Decided(ignore, T0))


def test_flush_tells_what_is_gathered_at_stop():
    d = digester()
    d.offer(blocked("203.0.113.7"), T0)
    d.due(T0 + SETTLE)
    d.offer(blocked("203.0.113.8", T0 + 3), T0 + 3)
    assert [m.events for m in d.flush(T0 + 4)] == [1]
    assert d.flush(T0 + 5) == []


@pytest.mark.parametrize(
    "seconds, text", [(0, "0s"), (45, "45s"), (300, "5m"), (330, "5m30s"), (3720, "1h2m"), (93600, "1d2h")]
)
def test_spans_read_like_routeros_durations(seconds, text):
    assert span(seconds) == text


def test_after_a_reload_a_router_known_down_is_not_told_again():
    old = digester()
    old.offer(RouterChanged("core1", False, T0, "router core1: timed out"), T0)
    assert len(old.due(T0 + SETTLE)) == 1
    new = digester()
    new.carry_over(old)
    new.offer(RouterChanged("core1", False, T0 + 10, "router core1: timed out"), T0 + 10)  # the new worker
    assert new.due(T0 + 100) == []
    new.offer(RouterChanged("core1", True, T0 + 200, pending=4), T0 + 200)
    [up] = new.due(T0 + 200 + SETTLE)
    assert "after 3m20s down" in up.body and "4 pending blocks catching up now" in up.body
