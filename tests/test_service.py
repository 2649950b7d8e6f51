"""The processing core of `snort-bridge run` (bridge.pipeline) and the service's pure helpers.

The pipeline is driven directly here, with a real Policy and ScanDetector; the responder is a
recorder standing in for the routers (the real one is exercised in test_e2e_service.py).
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field

import pytest

from bridge.config.load import parse_config
from bridge.events import Origin
from bridge.pipeline import Pipeline, build_policy
from bridge.scan.detector import ScanDetector
from bridge.scan.syslog_listener import datagram_lines, split_listen_address
from bridge.service.parts import FIREWALL, followed_sources
from responder.responder import TargetRefused, check_target

ORIGIN = Origin("/var/log/snort/alert_fast.txt", 0, 1)


def fast(src: str, dst: str = "10.1.2.3", sid: int = 1000001) -> str:
    return f'11/14-22:13:20.123456 [**] [1:{sid}:1] "TEST attack" [**] [Priority: 1] {{TCP}} {src}:4444 -> {dst}:80'


@dataclass
class Recorder:
    """Stands in for responder.Responder: records what it was asked, refuses like it does."""

    blocked: list = field(default_factory=list)
    unblocked: list = field(default_factory=list)

    def block(self, request):
        check_target(request.address)
        self.blocked.append(request)

    def unblock(self, address):
        self.unblocked.append(address)


@dataclass(frozen=True)
class _Record:
    address: object
    expires_at: float
    state: str = "active"


@dataclass
class FakeLedger:
    records: list[_Record] = field(default_factory=list)

    def blocks(self, now):
        return [r for r in self.records if r.expires_at > now]

    def purge_offences(self, before):
        return 0


def pipeline(extra: dict = None, responder=None, detector=None, clock=lambda: 1_000_000.0):
    table = {"policy": {"protected": ["10.0.0.0/8"], **(extra or {})}}
    config = parse_config(table)
    return Pipeline(build_policy(config), responder, detector, clock=clock, routers=2)


def test_an_alert_line_becomes_one_block_request_with_reason_and_sid():
    recorder = Recorder()
    pipe = pipeline(responder=recorder)
    decision = pipe.alert_line(fast("203.0.113.5"), ORIGIN)
    assert decision.action == "block"
    (request,) = recorder.blocked
    assert request.address == ipaddress.ip_address("203.0.113.5")
    assert request.duration == 300.0 and request.sid == "1:1000001"
    assert request.reason == decision.why and request.requested_at == 1_000_000.0
    pipe.alert_line(fast("203.0.113.5"), ORIGIN)  # the same attacker again: no second request
    assert len(recorder.blocked) == 1
    assert pipe.counts.blocks == 1 and pipe.counts.alerts == 2


def test_unparsable_lines_are_counted_and_reported_rate_limited(caplog):
    pipe = pipeline(responder=Recorder())
    with caplog.at_level(logging.WARNING, logger="snort-bridge"):
        for number in range(1, 21):
            assert pipe.alert_line("garbage; /system reset", Origin("/a.txt", number * 23, number)) is None
        assert pipe.alert_line("", Origin("/a.txt", 999, 21)) is None  # noise: not counted
    assert pipe.counts.unparsable == 20
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["unparsable line at /a.txt line 1 (byte 23): not an alert"]


def test_a_refused_target_does_not_stop_the_pipeline_and_is_forgotten(caplog):
    class Refusing(Recorder):
        def block(self, request):
            raise TargetRefused("no")

    pipe = pipeline(responder=Refusing())
    with caplog.at_level(logging.ERROR, logger="snort-bridge"):
        pipe.alert_line(fast("203.0.113.5"), ORIGIN)
    assert pipe.counts.failed == 1 and pipe.counts.blocks == 0
    assert "could not block 203.0.113.5" in caplog.text
    assert pipe.policy.blocked_until(ipaddress.ip_address("203.0.113.5"), 1_000_000.0) is None


def test_flood_guard_trip_is_logged_loudly_and_rolls_back():
    recorder = Recorder()
    pipe = pipeline({"max_new_blocks_per_minute": 3, "rollback": 2}, responder=recorder)
    for last in range(1, 6):
        pipe.alert_line(fast(f"203.0.113.{last}"), ORIGIN)
    assert [str(r.address) for r in recorder.blocked] == ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
    assert [str(a) for a in recorder.unblocked] == ["203.0.113.3", "203.0.113.2"]
    assert set(map(str, pipe.noted)) == {"203.0.113.1"}


def test_firewall_lines_feed_the_detector_and_block_the_scanner_not_the_target():
    recorder = Recorder()
    pipe = pipeline(responder=recorder, detector=ScanDetector(ports=4, window=10))
    for index, port in enumerate((22, 23, 80, 443)):
        line = (
            f"firewall,info input: in:ether1 out:(unknown 0), proto TCP (SYN), "
            f"198.51.100.9:{5000 + index}->192.0.2.1:{port}, len 60"
        )
        decision = pipe.firewall_line(line, Origin("udp:127.0.0.1:5514"), 500.0 + index)
    assert decision is not None and decision.action == "block"
    assert decision.attribution.startswith("src")  # the detector's alerts name the scanner as source
    assert [str(r.address) for r in recorder.blocked] == ["198.51.100.9"]
    assert pipe.counts.probes == 4 and pipe.counts.detections == 1


def test_other_log_topics_are_ignored_quietly_but_broken_firewall_lines_count(caplog):
    pipe = pipeline(responder=Recorder(), detector=ScanDetector())
    with caplog.at_level(logging.WARNING, logger="snort-bridge"):
        pipe.firewall_line("system,info,account user admin logged in", Origin("udp:x"), 1.0)
        pipe.firewall_line(
            "firewall,info input: in:ether1 out:x, proto TCP (SYN), 1.2.3.4:1->nonsense:2, len 1", Origin("udp:x"), 1.0
        )
    assert pipe.counts.unparsable == 1
    assert len(caplog.records) == 1


def test_protected_detection_is_logged_not_blocked(caplog):
    recorder = Recorder()
    pipe = pipeline(responder=recorder, detector=ScanDetector(ports=3, window=10))
    with caplog.at_level(logging.INFO, logger="snort-bridge"):
        for index, port in enumerate((1, 2, 3)):
            line = f"firewall,info forward: in:lan out:wan, proto TCP (SYN), 10.0.0.66:{4000 + index}->192.0.2.1:{port}, len 60"
            pipe.firewall_line(line, Origin("udp:x"), 10.0 + index)
    assert recorder.blocked == []
    assert "not blocking:" in caplog.text and "10.0.0.66 is protected" in caplog.text


def test_resync_seeds_from_the_ledger_and_forgets_blocks_undone_by_hand():
    recorder = Recorder()
    pipe = pipeline(responder=recorder)
    ledger = FakeLedger([_Record(ipaddress.ip_address("203.0.113.7"), 2_000_000.0)])
    pipe.resync(ledger, 1_000_000.0)
    pipe.alert_line(fast("203.0.113.7"), ORIGIN)
    assert recorder.blocked == []  # blocked before the restart: not sent again
    ledger.records.clear()  # `snort-bridge unblock 203.0.113.7`
    pipe.resync(ledger, 1_000_000.0)
    pipe.alert_line(fast("203.0.113.7"), ORIGIN)
    assert [str(r.address) for r in recorder.blocked] == ["203.0.113.7"]


def test_reload_keeps_flow_memory_and_a_tripped_guard():
    first = build_policy(parse_config({"policy": {"max_new_blocks_per_minute": 5}}))
    same_limits = build_policy(
        parse_config({"policy": {"max_new_blocks_per_minute": 5, "protected": []}}), previous=first
    )
    assert same_limits.memory is first.memory and same_limits.guard is first.guard
    new_limits = build_policy(parse_config({"policy": {"max_new_blocks_per_minute": 9}}), previous=first)
    assert new_limits.memory is first.memory and new_limits.guard is not first.guard


def test_dry_run_pipeline_decides_without_a_responder():
    pipe = pipeline(responder=None)
    assert pipe.alert_line(fast("203.0.113.5"), ORIGIN).action == "block"
    assert pipe.counts.blocks == 1


def test_followed_sources_map_paths_to_formats(tmp_path):
    config = parse_config(
        {
            "alerts": [{"path": "/var/log/snort/alert_json.txt", "format": "json"}],
            "scan": {"files": ["/var/log/routeros/firewall.log"]},
        }
    )
    assert followed_sources(config) == {
        "/var/log/snort/alert_json.txt": "json",
        "/var/log/routeros/firewall.log": FIREWALL,
    }


@pytest.mark.parametrize(
    "text, expected",
    [
        ("0.0.0.0:5514", ("0.0.0.0", 5514)),
        ("[::]:514", ("::", 514)),
        ("logs.example.net:5514", ("logs.example.net", 5514)),
    ],
)
def test_listen_addresses(text, expected):
    assert split_listen_address(text) == expected


@pytest.mark.parametrize("bad", ["5514", "0.0.0.0:0", "0.0.0.0:70000", ":::5514", ""])
def test_bad_listen_addresses(bad):
    with pytest.raises(ValueError):
        split_listen_address(bad)


def test_datagram_lines_split_and_clean():
    assert datagram_lines(b"firewall,info a\x00b\n\nfirewall,info c\r\n\xff") == [
        "firewall,info ab",
        "firewall,info c",
        "\ufffd",
    ]
