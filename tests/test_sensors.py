"""Several sensors, one bridge: what a sensor writes, and how alerts from several sensors are decided.

- a sensor with the built-in detector writes Snort 3 alert_json lines (``snort-bridge scan --alerts``)
  that the central bridge parses back to the same alert, with the evidence that names the scanner;
- the policy counts per attacker, not per file: one attacker seen by two sensors is blocked once,
  and a threshold is reached by alerts from different sensors together.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from datetime import datetime, timezone

import pytest
from conftest import console_script
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import PcapWriter

from bridge.config.load import parse_config
from bridge.decide.policy import Policy
from bridge.events import Alert, Origin
from bridge.parsers import parse_line
from bridge.pipeline import Pipeline
from bridge.scan.alert_out import AlertFileWriter, alert_json_line
from bridge.scan.detector import Probe, ScanDetector

SCANNER, TARGET = "203.0.113.66", "192.0.2.80"
SENSOR1 = "/var/log/tzsp-ips/sensors/sensor1/alert_json.txt"
SENSOR2 = "/var/log/tzsp-ips/sensors/sensor2/alert_json.txt"


def detector_alert(start: float = 1_790_000_000.25) -> Alert:
    detector = ScanDetector(ports=5, window=10.0)
    alert = None
    for index, port in enumerate(range(20, 25)):
        alert = detector.feed(
            Probe(
                ipaddress.ip_address(SCANNER),
                ipaddress.ip_address(TARGET),
                "TCP",
                port,
                start + index * 0.1,
                sport=50000,
            )
        )
    assert alert is not None
    return alert


# -- what a sensor writes ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "auto"])
def test_a_detection_written_as_alert_json_reads_back_as_the_same_alert(fmt):
    alert = detector_alert()
    line = alert_json_line(alert)
    assert "\n" not in line
    back = parse_line(line, Origin(SENSOR1, 0, 1), fmt)
    for field in (
        "gid",
        "sid",
        "rev",
        "msg",
        "priority",
        "classification",
        "proto",
        "src",
        "sport",
        "dst",
        "dport",
        "direction",
    ):
        assert getattr(back, field) == getattr(alert, field), field
    assert back.time == alert.time  # seconds + the printed fraction: exact to the microsecond
    assert back.origin.source == SENSOR1


def test_the_central_policy_blocks_the_scanner_a_sensor_reported_never_the_target():
    line = alert_json_line(detector_alert())
    policy = Policy(parse_config({"policy": {"protected": []}}).policy)
    decision = policy.decide(parse_line(line, Origin(SENSOR1, 0, 1)), now=1_790_000_001.0)
    assert decision.action == "block", decision.why
    assert str(decision.target) == SCANNER
    assert "dir C2S" in decision.attribution


def test_a_written_line_keeps_odd_messages_and_ipv6_intact():
    alert = Alert(
        gid=1,
        sid=1000101,
        rev=2,
        msg='say "hi" \\ [**] ünï',
        format="fast",
        origin=Origin("x"),
        priority=1,
        proto="TCP",
        src=ipaddress.ip_address("2001:db8::1"),
        sport=4444,
        dst=ipaddress.ip_address("2001:db8::2"),
        dport=80,
        time=datetime(2026, 12, 4, 5, 0, 1, 123456, tzinfo=timezone.utc),
        tcp_flags="******S*",
    )
    line = alert_json_line(alert)
    assert line.isascii()
    back = parse_line(line, Origin("y"), "json")
    assert (back.msg, back.src, back.sport, back.dst, back.dport, back.tcp_flags, back.time) == (
        alert.msg,
        alert.src,
        alert.sport,
        alert.dst,
        alert.dport,
        alert.tcp_flags,
        alert.time,
    )


def test_the_writer_appends_whole_lines(tmp_path):
    path = tmp_path / "sub" / "alert_json.txt"
    path.parent.mkdir()
    path.write_text('{"rule" : "1:1:1"}\n')  # what was there stays
    writer = AlertFileWriter(str(path))
    writer.write(detector_alert())
    writer.write(detector_alert(1_790_000_100.0))
    writer.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line) for line in lines)
    assert writer.written == 2


def test_scan_with_alerts_writes_one_alert_json_line_per_detection(tmp_path):
    packets = []
    for index, port in enumerate(range(20, 60)):
        packet = (
            Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
            / IP(src=SCANNER, dst=TARGET)
            / TCP(sport=50000, dport=port, flags="S")
        )
        packet.time = 1_790_000_000.0 + index * 0.01
        packets.append(packet)
    capture = tmp_path / "scan.pcap"
    writer = PcapWriter(str(capture), sync=True)
    writer.write(packets)
    writer.close()
    out = tmp_path / "alerts" / "alert_json.txt"
    env = {k: v for k, v in os.environ.items() if k != "TZSP_IPS_CONFIG"}
    result = subprocess.run(
        [*console_script("snort-bridge"), "scan", "--pcap", str(capture), "--dry-run", "--alerts", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 1  # one detection per scanner per window
    alert = parse_line(lines[0], Origin(str(out), 0, 1))
    assert (str(alert.src), str(alert.dst), alert.gid, alert.direction) == (SCANNER, TARGET, 122, "C2S")


# -- alerts from several sensors, one policy --------------------------------------------------------


def fast_line(src: str, second: int, dst: str = "192.0.2.10") -> str:
    return (
        f'12/04-05:00:{second:02d}.000000 [**] [1:1000101:1] "web traversal" [**] '
        f"[Priority: 1] {{TCP}} {src}:4444 -> {dst}:80"
    )


def central_pipeline(**policy) -> Pipeline:
    config = parse_config({"policy": {"protected": ["192.0.2.0/24"], **policy}})
    return Pipeline(Policy(config.policy), clock=lambda: 1_790_000_000.0)


def test_one_attacker_seen_by_two_sensors_is_blocked_once():
    pipeline = central_pipeline()
    first = pipeline.alert_line(fast_line("198.51.100.7", 1), Origin(SENSOR1, 0, 1))
    second = pipeline.alert_line(fast_line("198.51.100.7", 1), Origin(SENSOR2, 0, 1))
    third = pipeline.alert_line(fast_line("198.51.100.7", 2), Origin(SENSOR1, 200, 2))
    assert first.action == "block" and first.alert.origin.source == SENSOR1
    assert second.action == "ignore" and "already blocked" in second.why
    assert third.action == "ignore"
    assert pipeline.counts.blocks == 1


def test_a_threshold_counts_one_attacker_across_sensors():
    # threshold 3 within 60 s: two alerts on sensor 1 and one on sensor 2 make three
    pipeline = central_pipeline(threshold=3, window="60s")
    decisions = [
        pipeline.alert_line(fast_line("198.51.100.8", 1), Origin(SENSOR1, 0, 1)),
        pipeline.alert_line(fast_line("198.51.100.8", 2), Origin(SENSOR2, 0, 1)),
        pipeline.alert_line(fast_line("198.51.100.9", 3), Origin(SENSOR2, 200, 2)),  # another attacker
        pipeline.alert_line(fast_line("198.51.100.8", 4), Origin(SENSOR1, 200, 2)),
    ]
    assert [d.action for d in decisions] == ["ignore", "ignore", "ignore", "block"]
    assert "2 of 3 alerts from 198.51.100.8" in decisions[1].why
    assert "1 of 3 alerts from 198.51.100.9" in decisions[2].why
    assert decisions[3].alert.origin.source == SENSOR1


def test_the_window_is_the_attackers_not_the_sensors():
    # two sensors, alerts 50 s apart: outside a 30 s window however the sensors are named
    pipeline = central_pipeline(threshold=2, window="30s")
    early = pipeline.alert_line(fast_line("198.51.100.10", 0), Origin(SENSOR1, 0, 1))
    late = pipeline.alert_line(fast_line("198.51.100.10", 50), Origin(SENSOR2, 0, 1))
    assert (early.action, late.action) == ("ignore", "ignore")
    assert "1 of 2" in late.why
    again = pipeline.alert_line(fast_line("198.51.100.10", 55), Origin(SENSOR1, 200, 2))
    assert again.action == "block"
