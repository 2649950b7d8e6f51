"""The Observer (a feed subscriber), /health's problems and the status page, as pure functions:
events in, metrics and HTML out; no sockets."""

from __future__ import annotations

import ipaddress
import re

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bridge.events import DECISION_REASONS, Alert, Decision, Origin
from bridge.watching.observe import MAX_WAITING_BLOCKS, Observer
from bridge.watching.status import (
    BlockRow,
    RouterRow,
    Snapshot,
    SourceRow,
    TzspdView,
    chart_svg,
    health_problems,
    render_page,
)
from bridge.watching.web import Gate, tzspd_counters
from plumbing.httpserver import Request
from responder.feed import Decided, EntryApplied, EntryRefused, FloodGuardChanged, LineRead, RouterChanged

T0 = 1_790_000_000.0
ALERTS = "/var/log/snort/alert_fast.txt"


def samples(observer: Observer) -> dict:
    out = {}
    for family in text_string_to_metric_families(generate_latest(observer.registry).decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sample.labels.values()))] = sample.value
    return out


def alert(src="203.0.113.7", dst="10.0.0.5", sid=1000101) -> Alert:
    return Alert(
        gid=1,
        sid=sid,
        rev=1,
        msg="TEST attack <script>",
        format="fast",
        origin=Origin(ALERTS),
        priority=1,
        src=ipaddress.ip_address(src),
        dst=ipaddress.ip_address(dst),
    )


def block(target="203.0.113.7") -> Decision:
    return Decision(
        action="block",
        alert=alert(src=target),
        why="priority 1 <= 1",
        target=ipaddress.ip_address(target),
        block_for=300,
        reason="priority",
    )


def ignore(reason="protected") -> Decision:
    return Decision(action="ignore", alert=alert(), why="the attacker end is protected", reason=reason)


# -- the observer ---------------------------------------------------------------------------------


def test_lines_and_decisions_are_counted_by_bounded_labels():
    observer = Observer([ALERTS], ["r1", "r2"])
    observer(LineRead(ALERTS, "alert", T0))
    observer(LineRead(ALERTS, "unparsable", T0))
    observer(LineRead("udp:192.0.2.1:40123", "firewall", T0))  # a syslog peer: not a label of its own
    observer(LineRead("udp:192.0.2.1:40124", "firewall", T0))
    observer(Decided(block(), T0))
    observer(Decided(ignore(), T0))
    got = samples(observer)
    assert got[("tzsp_ips_alert_lines_total", (ALERTS,))] == 2
    assert got[("tzsp_ips_alerts_total", (ALERTS,))] == 1
    assert got[("tzsp_ips_unparsable_lines_total", (ALERTS,))] == 1
    assert got[("tzsp_ips_alert_lines_total", ("syslog",))] == 2
    assert got[("tzsp_ips_decisions_total", ("block", "priority"))] == 1
    assert got[("tzsp_ips_decisions_total", ("ignore", "protected"))] == 1
    assert {labels[1] for name, labels in got if name == "tzsp_ips_decisions_total"} == set(DECISION_REASONS)
    assert not any("203.0.113.7" in value for _, labels in got for value in labels)


def test_block_latency_runs_from_the_line_to_each_router_once():
    observer = Observer([ALERTS], ["r1", "r2"])
    observer(Decided(block(), T0))
    observer(EntryApplied("r1", ipaddress.ip_address("203.0.113.7"), T0 + 0.02))
    observer(EntryApplied("r1", ipaddress.ip_address("203.0.113.7"), T0 + 60))  # a refresh: not a block's latency
    observer(EntryApplied("r2", ipaddress.ip_address("203.0.113.7"), T0 + 3))
    observer(EntryApplied("r2", ipaddress.ip_address("198.51.100.1"), T0 + 3))  # a manual block: no alert started it
    got = samples(observer)
    assert got[("tzsp_ips_block_latency_seconds_count", ("r1",))] == 1
    assert abs(got[("tzsp_ips_block_latency_seconds_sum", ("r1",))] - 0.02) < 1e-6
    assert got[("tzsp_ips_block_latency_seconds_bucket", ("0.025", "r1"))] == 1
    assert got[("tzsp_ips_block_latency_seconds_count", ("r2",))] == 1
    assert got[("tzsp_ips_block_latency_seconds_bucket", ("2.5", "r2"))] == 0
    assert got[("tzsp_ips_entries_applied_total", ("r2",))] == 2


def test_waiting_blocks_are_bounded():
    observer = Observer([ALERTS], ["r1"])
    for i in range(MAX_WAITING_BLOCKS + 10):
        observer(Decided(block(str(ipaddress.ip_address("198.18.0.0") + i)), T0))
    assert len(observer._waiting) == MAX_WAITING_BLOCKS


def test_router_state_errors_and_flood_guard():
    observer = Observer([ALERTS], ["r1"])
    observer(RouterChanged("r1", False, T0, "connection refused"))
    observer(EntryRefused("r1", ipaddress.ip_address("203.0.113.7"), T0, "bad list"))
    observer(FloodGuardChanged(True, T0, "flood guard: 101 new blocks in a minute"))
    got = samples(observer)
    assert got[("tzsp_ips_router_errors_total", ("connection", "r1"))] == 1
    assert got[("tzsp_ips_router_errors_total", ("refused", "r1"))] == 1
    assert got[("tzsp_ips_flood_guard_trips_total", ())] == 1
    seen = observer.routers_seen()["r1"]
    assert (seen.up, seen.since, seen.error) == (False, T0, "connection refused")


def test_alerts_and_blocks_per_minute():
    observer = Observer([ALERTS], [])
    for offset in (0, 1, 2):
        observer(LineRead(ALERTS, "alert", T0 + offset))
    observer(Decided(block(), T0 + 2))
    observer(LineRead(ALERTS, "alert", T0 + 125))
    rows = observer.per_minute(T0 + 130, 4)
    minute = int(T0 // 60)
    assert [r[0] for r in rows] == [minute - 1, minute, minute + 1, minute + 2]
    assert [r[1:] for r in rows] == [(0, 0), (3, 1), (0, 0), (1, 0)]


# -- /health ---------------------------------------------------------------------------------------


def healthy(**changes) -> Snapshot:
    base = dict(
        now=T0 + 3600,
        started=T0,
        routers=(RouterRow("r1", True, 0, None, T0),),
        sources=(SourceRow(ALERTS, True, T0 + 3500, 0),),
    )
    base.update(changes)
    return Snapshot(**base)


def test_all_well_is_no_problem():
    assert health_problems(healthy(), silent_after=600) == []


def test_each_problem_is_named():
    snap = healthy(
        routers=(RouterRow("r1", True, 0, None, T0), RouterRow("r2", False, 3, "connection refused", T0 + 60)),
        sources=(SourceRow(ALERTS, False, None, None),),
        tzspd=TzspdView("127.0.0.1:9471", {}, error="connection refused"),
    )
    problems = health_problems(snap, silent_after=600)
    assert problems == [
        "router r2 unreachable since 2026-09-21 14:14:20Z: connection refused",
        f"alert file {ALERTS} is missing",
        "no new alert line for 60m (none since the start at 2026-09-21 14:13:20Z)",
        "tzspd metrics at 127.0.0.1:9471 unreadable: connection refused",
    ]


def test_silence_counts_only_when_asked_for_and_after_the_start():
    quiet = healthy(sources=(SourceRow(ALERTS, True, T0 + 60, 0),))
    assert health_problems(quiet, silent_after=None) == []
    assert health_problems(quiet, silent_after=7200) == []
    assert health_problems(quiet, silent_after=600) == ["no new alert line for 59m (last at 2026-09-21 14:14:20Z)"]
    sensor = healthy(tzspd=TzspdView("127.0.0.1:9471", {"datagrams received": 5}, silent_since=T0 + 100))
    assert health_problems(sensor, silent_after=600) == ["no TZSP datagram for 58m (tzspd at 127.0.0.1:9471)"]
    assert health_problems(healthy(tzspd=TzspdView("x:1", {}, silent_since=T0 + 3500)), silent_after=600) == []


# -- the page --------------------------------------------------------------------------------------


def page_snapshot() -> Snapshot:
    observer = Observer([ALERTS], ["r1"])
    observer(LineRead(ALERTS, "alert", T0 + 3000))
    observer(Decided(block(), T0 + 3000))
    return healthy(
        blocks=(
            BlockRow(
                "203.0.113.7", "TEST attack <script>", "1:1000101", T0 + 3900, (("r1", "applied"), ("r2", "pending"))
            ),
        ),
        routers=(RouterRow("r1", True, 0, None, T0), RouterRow("r2", False, 1, "connection refused", T0 + 60)),
        decisions=tuple(observer.recent_decisions()),
        per_minute=tuple(observer.per_minute(T0 + 3600, 180)),
        tzspd=TzspdView("127.0.0.1:9471", {"datagrams received": 12.0}),
    )


def test_page_shows_blocks_routers_decisions_chart_and_sensor():
    snap = page_snapshot()
    page = render_page(snap, health_problems(snap, None))
    assert "<title>tzsp-ips: 1 blocked</title>" in page
    assert "203.0.113.7" in page and 'r1: <span class="ok">applied</span>' in page
    assert 'r2: <span class="bad">pending</span>' in page
    assert '<span class="bad">unreachable</span>' in page and "connection refused" in page
    assert "router r2 unreachable" in page  # the problem list
    # Two charts: three hours for a screen, the last hour for a phone (CSS shows one of them).
    assert page.count('<rect class="alerts"') == 2 and page.count('<rect class="blocks"') == 2
    assert "last 3 h, UTC" in page and "last 60 min, UTC" in page
    assert "datagrams received" in page and ">12<" in page
    assert '<meta http-equiv="refresh"' in page and 'name="viewport"' in page


def test_page_escapes_what_it_did_not_write():
    page = render_page(page_snapshot(), [])
    assert "<script>" not in page
    assert "TEST attack &lt;script&gt;" in page


def test_page_needs_nothing_from_elsewhere():
    page = render_page(page_snapshot(), [])
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<script" not in page and "<link" not in page


def test_chart_scales_to_the_busiest_minute():
    svg = chart_svg([(0, 10, 0), (1, 5, 5), (2, 0, 0)], width=300, height=132, font=13)
    heights = [float(h) for h in re.findall(r'<rect class="\w+" [^>]*height="([\d.]+)"', svg)]
    assert heights == [90.0, 45.0, 45.0]  # plot height 132 - 10 - 32 = 90: 10 is the top of the scale


# -- the token gate and tzspd's counters ------------------------------------------------------------


def request(headers=None, query=None) -> Request:
    return Request("GET", "/", query or {}, headers or {}, ("192.0.2.9", 5555))


def test_gate_takes_bearer_cookie_or_query_and_logs_refusals_rate_limited(caplog):
    token = "s3cret-token-0123456789"
    gate = Gate(token, clock=lambda: 100.0)
    assert gate.allows(request({"authorization": f"Bearer {token}"}))
    assert gate.allows(request({"cookie": f"a=b; tzsp_ips_token={token}"}))
    assert gate.allows(request(query={"token": token}))
    with caplog.at_level("WARNING", logger="snort-bridge"):
        for wrong in ({"authorization": "Bearer nope"}, {"authorization": f"Basic {token}"}, {}):
            assert not gate.allows(request(wrong))
    assert gate.refused == 3
    assert len([r for r in caplog.records if "refused" in r.getMessage()]) == 1
    assert Gate(None).allows(request())


def test_tzspd_counters_are_read_from_its_exposition():
    text = (
        "# TYPE tzspd_datagrams_received_total counter\ntzspd_datagrams_received_total 12.0\n"
        "# TYPE tzspd_datagrams_dropped_total counter\n"
        'tzspd_datagrams_dropped_total{reason="short"} 2.0\ntzspd_datagrams_dropped_total{reason="non_frame"} 0.0\n'
    )
    assert tzspd_counters(text) == {"datagrams received": 12.0, "datagrams dropped (short)": 2.0}
