"""Every real Snort output file in tests/data/snort parses to exactly the alerts Snort wrote.

The expected alerts are written down here from what the sample README says test.pcap holds
(a SYN scan, a ping, one HTTP request; 4 alerts), not from parser output, and the formats
of one run are checked against each other: fast, json, csv and syslog must agree.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bridge.events import Origin
from bridge.parsers import Clock, UnparsableLine, parse_line

DATA = Path(__file__).resolve().parent / "data" / "snort"
CALIBRATION = DATA / "calibration" / "alerts"

UTC = timezone.utc
# the sample runs: packets from 2023-11-14 22:13:20 UTC, on a host in UTC; syslog on Nov 22 2026
SAMPLE_CLOCK = Clock(tz=UTC, now=datetime(2023, 11, 20, tzinfo=UTC))
SYSLOG_CLOCK = Clock(tz=UTC, now=datetime(2026, 11, 23, tzinfo=UTC))

FIELDS = ("gid", "sid", "rev", "msg", "priority", "classification", "proto", "src", "sport", "dst", "dport")
LEAK = "Attempted Information Leak"
SNORT3_ALERTS = [
    (122, 1, 1, "(port_scan) TCP portscan", 3, None, "TCP", "203.0.113.50", 40014, "198.51.100.10", 15),
    (1, 1000002, 1, "TEST ICMP ping", 3, None, "ICMP", "203.0.113.50", None, "198.51.100.10", None),
    (1, 1000001, 1, "TEST web attack", 1, None, "TCP", "192.0.2.77", 51515, "198.51.100.10", 80),
    (1, 1000003, 2, "TEST web attack classified", 2, LEAK, "TCP", "192.0.2.77", 51515, "198.51.100.10", 80),
]
# Snort 2's scan alert is a pseudo-packet: no ports, protocol 255, classtype from preprocessor.rules
SNORT2_ALERTS = [
    (122, 1, 1, "(portscan) TCP Portscan", 2, LEAK, "PROTO:255", "203.0.113.50", None, "198.51.100.10", None),
] + SNORT3_ALERTS[1:]
SNORT3_TIMES = ["22:13:20.082001", "22:13:22.101016", "22:13:23.105015", "22:13:23.105015"]
SNORT2_TIMES = ["22:13:20.027500"] + SNORT3_TIMES[1:]

ALL = frozenset(FIELDS)
NO_TEXT = ALL - {"msg", "priority", "classification"}  # alert_json / alert_csv default fields
SNORT2_CSV = ALL - {"priority", "classification"}

# file -> (format, engine, fields the format carries, where the time comes from)
SAMPLES = {
    "snort3/alert_fast/alert_fast.txt": ("fast", "snort3", ALL, "packet"),
    "snort3/alert_fast_year/alert_fast.txt": ("fast", "snort3", ALL, "packet"),
    "snort3/alert_fast_packet/alert_fast.txt": ("fast", "snort3", ALL, "packet"),
    "snort3/alert_fast_stdout/console_stdout.txt": ("fast", "snort3", ALL, "packet"),
    "snort3/alert_json_default/alert_json.txt": ("json", "snort3", NO_TEXT, "packet"),
    "snort3/alert_json_all/alert_json.txt": ("json", "snort3", ALL, "packet"),
    "snort3/alert_json_stdout/console_stdout.txt": ("json", "snort3", ALL, "packet"),
    "snort3/alert_csv_default/alert_csv.txt": ("csv", "snort3", NO_TEXT, "packet"),
    "snort3/alert_csv_all/alert_csv.txt": ("csv", "snort3", ALL, "packet"),
    "snort3/alert_syslog_auth_info/syslog_raw_wire.log": ("syslog", "snort3", ALL, "syslog"),
    "snort3/alert_syslog_auth_info/syslog_rsyslog_file.log": ("syslog", "snort3", ALL, "syslog"),
    "snort3/alert_syslog_auth_info/syslog_with_pri.log": ("syslog", "snort3", ALL, "syslog"),
    "snort3/alert_syslog_auth_alert/syslog_raw_wire.log": ("syslog", "snort3", ALL, "syslog"),
    "snort3/alert_syslog_auth_alert/syslog_rsyslog_file.log": ("syslog", "snort3", ALL, "syslog"),
    "snort3/alert_syslog_auth_alert/syslog_with_pri.log": ("syslog", "snort3", ALL, "syslog"),
    "snort2/conf_outputs/alert.fast": ("fast", "snort2", ALL, "packet"),
    "snort2/conf_outputs_year/alert.fast": ("fast", "snort2", ALL, "packet"),
    "snort2/cmdline_A_fast/alert": ("fast", "snort2", ALL, "packet"),
    "snort2/console_stdout/console_stdout.txt": ("fast", "snort2", ALL, "packet"),
    "snort2/conf_outputs/alert.csv": ("csv", "snort2", SNORT2_CSV, "packet"),
    "snort2/conf_outputs_year/alert.csv": ("csv", "snort2", SNORT2_CSV, "packet"),
    "snort2/conf_outputs/syslog_raw_wire.log": ("syslog", "snort2", ALL, "syslog"),
    "snort2/conf_outputs/syslog_rsyslog_file.log": ("syslog", "snort2", ALL, "syslog"),
    "snort2/conf_outputs/syslog_with_pri.log": ("syslog", "snort2", ALL, "syslog"),
    "snort2/conf_outputs_year/syslog_raw_wire.log": ("syslog", "snort2", ALL, "syslog"),
}


def parse_file(path: Path, fmt: str = "auto", clock: Clock = SAMPLE_CLOCK):
    """(alerts, not-alert lines that were noise, not-alert lines that were not) of a file."""
    alerts, noise, broken = [], [], []
    offset = 0
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.decode("utf-8")
            try:
                alerts.append(parse_line(line, Origin(str(path), offset, number), fmt, clock=clock))
            except UnparsableLine as error:
                (noise if error.noise else broken).append((number, error.reason))
            offset += len(raw)
    return alerts, noise, broken


def as_row(alert):
    """The compared fields of an alert, addresses as text."""
    values = []
    for name in FIELDS:
        value = getattr(alert, name)
        values.append(str(value) if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)) else value)
    return tuple(values)


def expected_rows(engine, fmt, carried):
    rows = []
    for row in SNORT3_ALERTS if engine == "snort3" else SNORT2_ALERTS:
        fields = dict(zip(FIELDS, row, strict=True))
        for name in ALL - carried:
            fields[name] = "" if name == "msg" else None
        if engine == "snort2" and fmt == "csv" and fields["proto"] == "PROTO:255":
            fields["proto"] = None  # Snort 2 csv leaves proto empty for the pseudo-packet
        rows.append(tuple(fields[name] for name in FIELDS))
    return rows


@pytest.mark.parametrize("name", sorted(SAMPLES))
@pytest.mark.parametrize("fmt", ["auto", "explicit"])
def test_sample_file_gives_the_alerts_snort_wrote(name, fmt):
    kind, engine, carried, time_source = SAMPLES[name]
    clock = SYSLOG_CLOCK if kind == "syslog" else SAMPLE_CLOCK
    alerts, _noise, broken = parse_file(DATA / name, kind if fmt == "explicit" else "auto", clock)
    assert broken == []
    assert [as_row(a) for a in alerts] == expected_rows(engine, kind, carried)
    assert {a.format for a in alerts} == {kind}
    assert {a.engine for a in alerts} == {engine}
    assert all(a.origin.source.endswith(name) for a in alerts)
    if time_source == "packet":
        times = SNORT3_TIMES if engine == "snort3" else SNORT2_TIMES
        assert [a.time for a in alerts] == [
            datetime.strptime(f"2023-11-14 {t}", "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC) for t in times
        ]
    else:
        assert all(a.time.date() == datetime(2026, 11, 22).date() for a in alerts)


def test_packet_dump_lines_are_noise_not_alerts():
    alerts, noise, broken = parse_file(DATA / "snort3/alert_fast_packet/alert_fast.txt")
    assert len(alerts) == 4 and broken == []
    # every line of the file is accounted for: 4 alert lines, the rest is dump
    assert len(alerts) + len(noise) == len((DATA / "snort3/alert_fast_packet/alert_fast.txt").read_text().splitlines())


@pytest.mark.parametrize("name", ["snort3/alert_full/alert_full.txt", "snort2/conf_outputs/alert.full"])
def test_alert_full_is_not_read_as_alerts(name):
    # alert_full spreads an alert over several lines; none of them alone is an alert line
    alerts, noise, broken = parse_file(DATA / name)
    assert alerts == [] and broken == [] and noise


def test_the_formats_of_one_run_agree():
    """fast, json (all fields), csv (all fields) and syslog of the same Snort 3 run: same alerts."""

    def rows(name, clock=SAMPLE_CLOCK):
        return [as_row(a) for a in parse_file(DATA / name, clock=clock)[0]]

    fast = rows("snort3/alert_fast/alert_fast.txt")
    assert len(fast) == 4
    assert rows("snort3/alert_json_all/alert_json.txt") == fast
    assert rows("snort3/alert_csv_all/alert_csv.txt") == fast
    assert rows("snort3/alert_syslog_auth_info/syslog_raw_wire.log", SYSLOG_CLOCK) == fast
    # times: json's epoch seconds and fast's local (UTC here) timestamps name the same instants
    json_times = [a.time for a in parse_file(DATA / "snort3/alert_json_all/alert_json.txt")[0]]
    fast_times = [a.time for a in parse_file(DATA / "snort3/alert_fast_year/alert_fast.txt")[0]]
    assert json_times == fast_times
    assert json_times[0] == datetime.fromtimestamp(1700000000, UTC).replace(microsecond=82001)


def test_json_all_fields_carry_the_attribution_evidence():
    alerts = parse_file(DATA / "snort3/alert_json_all/alert_json.txt")[0]
    assert [(a.direction, a.tcp_flags, a.icmp_type) for a in alerts] == [
        ("C2S", "******S*", None),
        ("C2S", None, 8),
        ("C2S", "***AP***", None),
        ("C2S", None, None),
    ]


# ---------------------------------------------------------------------------------------
# the calibration runs: 18 captures x 2 engines, recommended configurations

CALIBRATION_FILES = sorted(str(path.relative_to(CALIBRATION)) for path in CALIBRATION.rglob("*") if path.is_file())


def test_calibration_files_are_all_there():
    assert len(CALIBRATION_FILES) == 18 * 3  # Snort 2 alert.fast; Snort 3 alert_fast + alert_json


@pytest.mark.parametrize("name", CALIBRATION_FILES)
def test_every_calibration_line_is_an_alert(name):
    path = CALIBRATION / name
    fmt = "json" if name.endswith(".json") or "alert_json" in name else "fast"
    for mode in ("auto", fmt):
        alerts, noise, broken = parse_file(path, mode)
        assert broken == [] and noise == []
        assert len(alerts) == len(path.read_bytes().splitlines())
        assert {a.engine for a in alerts} <= {name.split("/")[0]}


@pytest.mark.parametrize(
    "capture", sorted({name.split("/")[1] for name in CALIBRATION_FILES if name.startswith("snort3/")})
)
def test_calibration_snort3_fast_and_json_agree(capture):
    fast = parse_file(CALIBRATION / "snort3" / capture / "alert_fast.txt")[0]
    json = parse_file(CALIBRATION / "snort3" / capture / "alert_json.txt")[0]
    assert [as_row(a) for a in fast] == [as_row(a) for a in json]
    assert [a.time for a in fast] == [a.time for a in json]


def scans(engine, capture):
    name = "alert_fast.txt" if engine == "snort3" else "alert.fast"
    alerts = parse_file(CALIBRATION / engine / capture / name)[0]
    return [(f"{a.gid}:{a.sid}", str(a.src), str(a.dst)) for a in alerts if a.gid == 122]


def test_calibration_scan_alerts_read_as_the_readme_reports():
    # calibration README section 2/5: Snort 3 names the victim as source on the connect scan
    assert scans("snort3", "TCP_SYN_SCAN.pcap") == [("122:1", "192.168.1.10", "192.168.1.25")]
    assert scans("snort3", "TCP_CONNECT_SCAN.pcap") == [("122:1", "192.168.1.25", "192.168.1.10")]
    assert scans("snort3", "synscan.pcapng") == [("122:5", "172.16.0.8", "64.13.134.52")]
    assert scans("snort2", "TCP_CONNECT_SCAN.pcap") == [("122:1", "192.168.1.10", "192.168.1.25")]
    assert scans("snort2", "test12-icmp-portscan.pcap") == [("122:26", "192.168.1.109", "192.168.1.0")]
    connect = parse_file(CALIBRATION / "snort3/TCP_CONNECT_SCAN.pcap/alert_json.txt")[0]
    assert [(a.direction, a.tcp_flags) for a in connect if a.gid == 122] == [("S2C", "***A*R**")]


def test_calibration_non_ip_alerts_have_no_addresses():
    # Snort 3 prints "{eth}  -> " for the truncated-datagram decoder event (116:6)
    alerts = parse_file(CALIBRATION / "snort3/malicious-ssh-bruteforce.pcap/alert_fast.txt")[0]
    decoder = [a for a in alerts if (a.gid, a.sid) == (116, 6)]
    assert len(decoder) == 47  # README section 2: "116:6 ... - -> - x47"
    assert all(a.src is None and a.dst is None and a.proto == "eth" for a in decoder)
