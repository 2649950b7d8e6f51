"""The alert parsers format by format: IPv6, optional pieces, times, field lists, hostile lines."""

from __future__ import annotations

import ipaddress
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.events import Origin
from bridge.parsers import FORMATS, Clock, UnparsableLine, detect_format, parse_line

UTC = timezone.utc
CLOCK = Clock(tz=UTC, now=datetime(2023, 11, 20, tzinfo=UTC))
ORIGIN = Origin("test", 0, 1)
DATA = Path(__file__).resolve().parent / "data"

S3 = '11/14-22:13:23.105015 [**] [1:1000001:1] "TEST web attack" [**] [Priority: 1] {TCP} 192.0.2.77:51515 -> 198.51.100.10:80'
S2 = "11/14-22:13:23.105015  [**] [1:1000001:1] TEST web attack [**] [Priority: 1] {TCP} 192.0.2.77:51515 -> 198.51.100.10:80"


def parse(line, fmt="auto", **kw):
    return parse_line(line, ORIGIN, fmt, clock=kw.pop("clock", CLOCK), **kw)


def ip(text):
    return ipaddress.ip_address(text)


def endpoints(alert):
    return (alert.src, alert.sport, alert.dst, alert.dport)


# ---------------------------------------------------------------------------------------
# alert_fast


def fast3(tail, msg='"m"', head="11/14-22:13:23.105015 [**] [1:2:3] "):
    return f"{head}{msg} [**] [Priority: 1] {tail}"


@pytest.mark.parametrize(
    "tail, expected",
    [
        # Snort prints "%s:%d" also for IPv6: the port is after the last colon
        ("{TCP} 2001:db8::1:80 -> 2001:db8::2:443", ("2001:db8::1", 80, "2001:db8::2", 443)),
        ("{UDP} fe80::1:5353 -> ff02::fb:5353", ("fe80::1", 5353, "ff02::fb", 5353)),
        ("{TCP} 2001:db8:::80 -> ::1:22", ("2001:db8::", 80, "::1", 22)),
        ("{TCP} ::ffff:192.0.2.1:8080 -> 2001:db8::2:0", ("::ffff:192.0.2.1", 8080, "2001:db8::2", 0)),
        # no ports for other protocols: the whole text is the address
        ("{ICMP6} 2001:db8::1:80 -> 2001:db8::2", ("2001:db8::1:80", None, "2001:db8::2", None)),
        ("{IP} 2001:db8::1 -> 2001:db8::2", ("2001:db8::1", None, "2001:db8::2", None)),
        # the bracketed form some engines use
        ("{TCP} [2001:db8::1]:80 -> [2001:db8::2]:443", ("2001:db8::1", 80, "2001:db8::2", 443)),
    ],
)
def test_fast_ipv6_endpoints(tail, expected):
    alert = parse(fast3(tail))
    src, sport, dst, dport = expected
    assert endpoints(alert) == (ip(src), sport, ip(dst), dport)


@pytest.mark.parametrize(
    "tail",
    [
        "{TCP} 2001:db8::80 -> 2001:db8::2:443",  # "2001:db8:" + port 80: not what Snort prints
        "{TCP} 192.0.2.1 -> 192.0.2.2:80",  # TCP without a port
        "{TCP} 192.0.2.1:65536 -> 192.0.2.2:80",
        "{TCP} 192.0.2.1:-1 -> 192.0.2.2:80",
        "{TCP} 192.0.2.1:８０ -> 192.0.2.2:80",  # non-ASCII digits
        "{ICMP} 999.0.2.1 -> 192.0.2.2",
        "{ICMP} fe80::1%eth0 -> 192.0.2.2",  # scope ids are never printed by Snort
        "{ICMP} 192.0.2.1\x00 -> 192.0.2.2",
        "{ICMP} 0x7f.1 -> 192.0.2.2",
        "{TCP} [2001:db8::1]80 -> 192.0.2.2:80",
    ],
)
def test_fast_bad_endpoints_are_unparsable(tail):
    with pytest.raises(UnparsableLine, match="address|port"):
        parse(fast3(tail))


def test_fast_snort3_and_snort2_forms():
    s3, s2 = parse(S3), parse(S2)
    assert (s3.engine, s3.msg, s3.format) == ("snort3", "TEST web attack", "fast")
    assert (s2.engine, s2.msg, s2.format) == ("snort2", "TEST web attack", "fast")
    assert endpoints(s3) == endpoints(s2) == (ip("192.0.2.77"), 51515, ip("198.51.100.10"), 80)
    assert s3.time == s2.time == datetime(2023, 11, 14, 22, 13, 23, 105015, tzinfo=UTC)


def test_fast_optional_pieces():
    # inline action, alert_interface (Snort 3: "]  <iface> "), AppID, classification
    line = (
        '11/14-22:13:23.105015 [drop] [**] [1:2:3]  <eth0> "m" [**] [Classification: Web Application Attack] '
        "[Priority: 1] [AppID: HTTP] {TCP} 192.0.2.77:51515 -> 198.51.100.10:80"
    )
    alert = parse(line)
    assert (alert.msg, alert.classification, alert.priority) == ("m", "Web Application Attack", 1)
    assert endpoints(alert) == (ip("192.0.2.77"), 51515, ip("198.51.100.10"), 80)
    snort2_drop = S2.replace("  [**]", "  [Drop] [**]")
    assert parse(snort2_drop).engine == "snort2"


def test_fast_portscan_pseudo_packet_and_non_ip():
    scan = parse(
        "11/14-22:13:20.027500  [**] [122:1:1] (portscan) TCP Portscan [**] [Classification: Attempted "
        "Information Leak] [Priority: 2] {PROTO:255} 203.0.113.50 -> 198.51.100.10"
    )
    assert (scan.is_portscan, scan.proto, scan.sport, scan.dport) == (True, "PROTO:255", None, None)
    arp = parse('02/23-10:46:39.004087 [**] [112:1:1] "(arp_spoof) unicast ARP request" [**] [Priority: 3] {ARP}  -> ')
    assert (arp.src, arp.dst, arp.proto) == (None, None, "ARP")
    # a follower that strips trailing blanks must not make it unparsable
    assert (
        parse('02/23-10:46:39.004087 [**] [112:1:1] "(arp_spoof) unicast ARP request" [**] [Priority: 3] {ARP}  ->').dst
        is None
    )


def test_fast_message_text_never_moves_the_addresses():
    real = "{TCP} 192.0.2.77:51515 -> 198.51.100.10:80"
    for msg in [
        '"msg 1.2.3.4 -> 5.6.7.8"',
        '"evil [**] [Priority: 1] {TCP} 6.6.6.6:1 -> 7.7.7.7:2"',
        '"quote " inside [**] and {UDP} 6.6.6.6 -> 7.7.7.7"',
        '"[Classification: x] [Priority: 1] {TCP} 6.6.6.6:1 -> 7.7.7.7:2 [**] "',
    ]:
        alert = parse(fast3(real, msg=msg))
        assert endpoints(alert) == (ip("192.0.2.77"), 51515, ip("198.51.100.10"), 80), msg
        assert alert.msg == msg[1:-1]


@pytest.mark.parametrize(
    "line",
    [
        "",
        "\n",
        "garbage",
        "\x00" * 50,
        "A" * 1_000_000,
        S3[:60] + "A" * 1_000_000,
        S3 + "\x00",
        S3.replace("198.51.100.10:80", "198.51.100.10:80; /system reset-configuration"),
        S3.replace("192.0.2.77:51515", "1.2.3.4; /system reset-configuration"),
        S3.replace("198.51.100.10:80", "1.2.3.4;/ip/firewall/address-list/remove:80"),
        S3.replace("198.51.100.10", "$(reboot)"),
        S3.replace("[1:1000001:1]", "[1:x:1]"),
        S3.replace("11/14", "13/45"),
        S3.replace("{TCP}", "{TCP"),
        S3.replace("[Priority: 1]", "[Priority: \u0663]"),  # Arabic-Indic digit three
        S3.replace("[1:1000001:1]", "[\u0661:1000001:1]"),
        S3.replace(":51515", ":\u0665\u0661\u0665"),
        '11/14-22:13:23.105015 [**] [1:2:3] "m" [**] [Priority: 1] {TCP} ' + "1" * 100_000 + " -> 1.2.3.4:1",
        ("11/14-22:13:23.105015 [**] [1:2:3] " + " [**] " * 50_000),
    ],
)
def test_hostile_lines_are_unparsable(line):
    for fmt in FORMATS:
        with pytest.raises(UnparsableLine):
            parse(line, fmt)


def test_packet_dump_lines_are_noise_even_if_their_text_looks_like_an_alert():
    # the ascii column of a payload dump cannot start a line with a timestamp
    dump = "31 31 2F 31 34 2D 32 32  3A 31 33 3A 32 33 2E 31  11/14-22:13:23.1"
    with pytest.raises(UnparsableLine) as caught:
        parse(dump)
    assert caught.value.noise


# ---------------------------------------------------------------------------------------
# times


@pytest.mark.parametrize(
    "stamp, now, expected",
    [
        ("12/31-23:00:00.5", datetime(2024, 1, 2, tzinfo=UTC), datetime(2023, 12, 31, 23, 0, 0, 500000, tzinfo=UTC)),
        ("01/01-00:00:00.000001", datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC)),
        ("02/29-12:00:00.0", datetime(2025, 3, 1, tzinfo=UTC), datetime(2024, 2, 29, 12, tzinfo=UTC)),
        # a minute "ahead" of the host (clock skew) is still this year
        ("01/02-00:01:00.0", datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 1, 2, 0, 1, tzinfo=UTC)),
    ],
)
def test_fast_year_is_inferred_so_the_time_is_not_in_the_future(stamp, now, expected):
    clock = Clock(tz=UTC, now=now)
    assert parse(S3.replace("11/14-22:13:23.105015", stamp), clock=clock).time == expected


def test_year_forms_of_both_engines_and_the_zone():
    assert parse(S3.replace("11/14-", "23/11/14-")).time.date() == datetime(2023, 11, 14).date()
    assert parse(S2.replace("11/14-", "11/14/23-")).time.date() == datetime(2023, 11, 14).date()
    plus2 = timezone(timedelta(hours=2))
    alert = parse(S3, clock=Clock(tz=plus2, now=datetime(2023, 11, 20, tzinfo=UTC)))
    assert alert.time.utcoffset() == timedelta(hours=2)
    assert alert.time == datetime(2023, 11, 14, 20, 13, 23, 105015, tzinfo=UTC)


def test_default_clock_gives_aware_times_not_in_the_future():
    alert = parse_line(S3, ORIGIN)
    assert alert.time.tzinfo is not None
    assert alert.time <= datetime.now(UTC) + timedelta(days=1)


# ---------------------------------------------------------------------------------------
# alert_syslog


@pytest.mark.parametrize(
    "line",
    [
        '<38>Nov 22 03:35:41 snort[8181]: [1:2:3] "m" [Priority: 1] {TCP} 192.0.2.77:51515 -> 198.51.100.10:80',
        '<38>Nov 22 03:35:41 sensor1 snort[8181]: [1:2:3] "m" [Priority: 1] {TCP} 192.0.2.77:51515 -> 198.51.100.10:80',
        '2026-11-22T03:35:41.962312+00:00 vm snort[8181]: [1:2:3] "m" [Priority: 1] {TCP} 192.0.2.77:51515 -> 198.51.100.10:80',
        'Nov 22 03:35:41 vm snort[8181]: [1:2:3] "m" [Priority: 1] {TCP} 192.0.2.77:51515 -> 198.51.100.10:80',
        '<38>1 2026-11-22T03:35:41.962Z vm snort 8181 - - [1:2:3] "m" [Priority: 1] {TCP} 192.0.2.77:51515 -> 198.51.100.10:80',
    ],
)
def test_syslog_headers(line):
    alert = parse(line, clock=Clock(tz=UTC, now=datetime(2026, 11, 23, tzinfo=UTC)))
    assert (alert.format, alert.engine, alert.msg, alert.priority) == ("syslog", "snort3", "m", 1)
    assert endpoints(alert) == (ip("192.0.2.77"), 51515, ip("198.51.100.10"), 80)
    assert alert.time.replace(microsecond=0) == datetime(2026, 11, 22, 3, 35, 41, tzinfo=UTC)


def test_syslog_snort2_without_priority_and_with_interface():
    alert = parse("<33>Nov  2 03:38:45 snort: [1:2:3] plain msg <eth1> {ICMP} 192.0.2.1 -> 192.0.2.2")
    assert (alert.engine, alert.msg, alert.priority, alert.proto) == ("snort2", "plain msg", None, "ICMP")
    assert alert.time.day == 2


def test_syslog_non_alerts():
    for line in [
        "<38>Nov 22 03:35:41 snort[8181]: Commencing packet processing",
        "<38>Nov 22 03:35:41 snort[8181]: just a message without addresses",
        "Nov 22 03:35:41 vm sshd[1]: Accepted publickey for root",
        "<999>Nov 22 03:35:41 snort: [1:2:3] m [Priority: 1] {ICMP} 192.0.2.1 -> 192.0.2.2",
        "<38>Nov 22 03:35:41 snort: [1:2:3] m [Priority: 1] {ICMP} 192.0.2.1 -> 192.0.2.2; reboot",
    ]:
        with pytest.raises(UnparsableLine):
            parse(line, "syslog")


def test_syslog_message_text_never_moves_the_addresses():
    line = (
        "<33>Nov 22 03:38:45 snort: [1:2:3] x {TCP} 6.6.6.6:1 -> 7.7.7.7:2 [Priority: 1] {ICMP} 192.0.2.1 -> 192.0.2.2"
    )
    alert = parse(line)
    assert endpoints(alert) == (ip("192.0.2.1"), None, ip("192.0.2.2"), None)


# ---------------------------------------------------------------------------------------
# alert_json


def test_json_subsets_in_any_order():
    a = parse('{"dst_ap" : "198.51.100.10:80", "rule" : "1:2:3", "src_ap" : "192.0.2.77:51515", "proto" : "TCP"}')
    assert (a.gid, a.sid, a.rev, a.msg, a.priority, a.time) == (1, 2, 3, "", None, None)
    assert endpoints(a) == (ip("192.0.2.77"), 51515, ip("198.51.100.10"), 80)
    b = parse(
        '{ "sid" : 1000001, "gid" : 1, "rev" : 1, "class" : "Web Application Attack", "src_addr" : "2001:db8::1" }'
    )
    assert (b.gid, b.sid, b.rev, b.classification, b.src, b.dst) == (
        1,
        1000001,
        1,
        "Web Application Attack",
        ip("2001:db8::1"),
        None,
    )
    # ap fields always print a port ("%s:%u"), 0 for ICMP: that is no port
    c = parse('{ "rule" : "1:2:3", "proto" : "ICMP", "src_ap" : "2001:db8::1:0", "dst_ap" : "2001:db8::2:0" }')
    assert endpoints(c) == (ip("2001:db8::1"), None, ip("2001:db8::2"), None)


def test_json_attribution_evidence():
    a = parse(
        '{ "gid" : 122, "sid" : 1, "rev" : 1, "proto" : "TCP", "dir" : "S2C", "src_addr" : "192.168.1.25", '
        '"src_port" : 389, "dst_addr" : "192.168.1.10", "dst_port" : 2042, "tcp_flags" : "***A*R**", "icmp_type" : 3 }'
    )
    assert (a.direction, a.tcp_flags, a.icmp_type, a.is_portscan) == ("S2C", "***A*R**", 3, True)


@pytest.mark.parametrize(
    "line",
    [
        "{",
        "[1, 2]",
        "{}",
        '{"rule": "1:2"}',
        '{"rule": 5}',
        '{"sid": -1}',
        '{"sid": true}',
        '{"sid": 1, "src_addr": "1.2.3.4; /system reset-configuration"}',
        '{"sid": 1, "src_addr": 16909060}',
        '{"sid": 1, "src_addr": ["1.2.3.4"]}',
        '{"sid": 1, "dst_ap": "1.2.3.4"}',
        '{"sid": 1, "dir": "sideways"}',
        '{"sid": 1, "tcp_flags": "$(reboot)"}',
        '{"sid": 1, "timestamp": "yesterday"}',
        '{"sid": 1, "seconds": 99999999999999999999}',
        '{"sid": ' + "9" * 5000 + "}",
        "[" * 100_000 + "]" * 100_000,
        "{" + '"a":{' * 50_000 + "}" * 50_001,
    ],
)
def test_json_bad_objects_are_unparsable(line):
    with pytest.raises(UnparsableLine):
        parse(line, "json")
    with pytest.raises(UnparsableLine):
        parse(line)


# ---------------------------------------------------------------------------------------
# alert_csv


def test_csv_user_field_lists():
    snort3 = parse(
        'gid, 1000001, 1, "TEST, with a comma", 2001:db8::1, 51515, 198.51.100.10, 80, TCP'.replace("gid", "1"),
        "csv",
        csv_fields=("gid", "sid", "rev", "msg", "src_addr", "src_port", "dst_addr", "dst_port", "proto"),
    )
    assert (snort3.sid, snort3.msg, snort3.engine) == (1000001, "TEST, with a comma", "snort3")
    assert endpoints(snort3) == (ip("2001:db8::1"), 51515, ip("198.51.100.10"), 80)
    snort2 = parse(
        r'11/14-22:13:23.105015 ,1000001,"say \"hi\", twice",192.0.2.77,51515,198.51.100.10,80',
        "csv",
        csv_fields=("timestamp", "sig_id", "msg", "src", "srcport", "dst", "dstport"),
    )
    assert (snort2.gid, snort2.sid, snort2.msg, snort2.engine) == (1, 1000001, 'say "hi", twice', "snort2")
    assert endpoints(snort2) == (ip("192.0.2.77"), 51515, ip("198.51.100.10"), 80)
    # auto-detection falls back to csv when fields are named
    assert parse("1:2:3, 192.0.2.1:0, 192.0.2.2:0", csv_fields=("rule", "src_ap", "dst_ap")).sid == 2


def test_csv_bad_lines():
    fields = ("rule", "src_addr", "dst_addr")
    for line in [
        "1:2:3, 1.2.3.4",
        "1:2:3, 1.2.3.4; reboot, 5.6.7.8",
        "x, 1.2.3.4, 5.6.7.8",
        "1:2:3, 1.2.3.4, 5.6.7.8, extra",
    ]:
        with pytest.raises(UnparsableLine):
            parse(line, "csv", csv_fields=fields)
    with pytest.raises(UnparsableLine, match="csv_fields"):
        parse("122, 1, 1, 1.2.3.4", "csv")


# ---------------------------------------------------------------------------------------
# Suricata eve.json


def test_eve_file():
    alerts, skipped = [], []
    for line in (DATA / "suricata" / "eve.json").read_text().splitlines():
        try:
            alerts.append(parse(line))
        except UnparsableLine as error:
            skipped.append((error.reason, error.noise))
    assert skipped == [("not an alert event", True)] * 3  # flow, dns, stats
    assert [(a.gid, a.sid, a.rev, a.priority, a.proto, a.direction) for a in alerts] == [
        (1, 2010937, 3, 2, "TCP", "C2S"),
        (1, 1000002, 1, 3, "ICMP", "C2S"),
        (1, 1000001, 1, 1, "TCP", "C2S"),
        (1, 2019416, 2, 3, "TCP", "S2C"),
        (1, 2100498, 7, 2, "TCP", None),
    ]
    assert {a.engine for a in alerts} == {"suricata"} and {a.format for a in alerts} == {"eve"}
    ping, web, v6 = alerts[1], alerts[2], alerts[4]
    assert (ping.sport, ping.icmp_type, ping.classification) == (None, 8, None)
    assert (web.msg, web.classification) == ("TEST web attack", "Attempted Information Leak")
    assert endpoints(web) == (ip("192.0.2.77"), 51515, ip("198.51.100.10"), 80)
    assert v6.src == ip("2001:db8::77") and v6.time == datetime(2023, 11, 14, 22, 13, 24, 500, tzinfo=UTC)


def test_eve_hostile_fields():
    base = json.loads((DATA / "suricata" / "eve.json").read_text().splitlines()[2])
    for mutate in [
        lambda e: e.update(src_ip="1.2.3.4; /system reset-configuration"),
        lambda e: e.update(dest_ip=None, src_ip=123),
        lambda e: e["alert"].pop("signature_id"),
        lambda e: e["alert"].update(signature_id="x"),
        lambda e: e.update(alert="not an object"),
        lambda e: e.update(src_port=70000),
        lambda e: e.update(timestamp="2023-13-45T00:00:00Z"),
    ]:
        event = json.loads(json.dumps(base))
        mutate(event)
        with pytest.raises(UnparsableLine):
            parse(json.dumps(event), "eve")


# ---------------------------------------------------------------------------------------
# detection and the API contract


def test_detect_format():
    assert detect_format(S3) == detect_format(S2) == "fast"
    assert detect_format(S3.replace("11/14-", "23/11/14-")) == "fast"
    assert detect_format("<33>Nov 22 03:38:45 snort: [1:2:3] m") == "syslog"
    assert detect_format("2026-11-22T03:35:41.962312+00:00 vm snort[8181]: [1:2:3]") == "syslog"
    assert detect_format('{ "rule" : "1:2:3" }') == "json"
    assert detect_format('{"event_type":"alert"}') == "eve"
    assert detect_format("11/14-22:13:20.082001, 29, TCP") == "csv"
    assert detect_format("11/14-22:13:20.027500 ,122,1,1") == "csv"
    assert detect_format("allow, none, x") == "csv"
    assert detect_format("garbage") is None and detect_format("") is None


def test_api_contract():
    with pytest.raises(UnparsableLine):
        parse_line(b"bytes", ORIGIN)  # type: ignore[arg-type]
    with pytest.raises(ValueError) as caught:
        parse_line(S3, ORIGIN, "xml")
    assert not isinstance(caught.value, UnparsableLine)  # a wrong format is a setup error
    alert = parse_line(S3, Origin("/var/log/snort/alert_fast.txt", 1234, 7))
    assert str(alert.origin) == "/var/log/snort/alert_fast.txt:7"


# ---------------------------------------------------------------------------------------
# properties


def check_any(line: str) -> None:
    """Whatever the line: an Alert whose addresses are ipaddress objects, or UnparsableLine."""
    for fmt in FORMATS:
        try:
            alert = parse(line, fmt)
        except UnparsableLine as error:
            assert isinstance(error.reason, str) and error.reason
            continue
        for address in (alert.src, alert.dst):
            assert address is None or isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_any_text_gives_an_alert_or_unparsable(line):
    check_any(line)


FRAGMENTS = [
    "11/14-22:13:23.105015",
    "23/11/14-",
    " [**] ",
    "[1:2:3] ",
    '"',
    "[Priority: 1] ",
    "[Classification: x] ",
    "{TCP} ",
    "{ICMP} ",
    " -> ",
    "1.2.3.4",
    ":80",
    "2001:db8::1",
    "<33>",
    "Nov 22 03:35:41 ",
    "snort[1]: ",
    "{",
    "}",
    '"rule" : "1:2:3"',
    '"src_ap" : ',
    ", ",
    ",",
    '"event_type":"alert"',
    "\x00",
    "\n",
    " ",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=5)), max_size=30))
def test_alert_like_fragments_give_an_alert_or_unparsable(parts):
    check_any("".join(parts))


@settings(max_examples=300, deadline=None)
@given(
    msg=st.text(max_size=80).filter(lambda m: "\n" not in m and "\r" not in m),
    src=st.ip_addresses(),
    dst=st.ip_addresses(),
    sport=st.integers(0, 65535),
    dport=st.integers(0, 65535),
)
def test_whatever_the_message_the_addresses_are_the_tail(msg, src, dst, sport, dport):
    fast = f'11/14-22:13:23.105015 [**] [1:2:3] "{msg}" [**] [Priority: 1] {{UDP}} {src}:{sport} -> {dst}:{dport}'
    alert = parse(fast)
    assert endpoints(alert) == (src, sport, dst, dport)
    assert alert.msg == msg
    syslog = f"<33>Nov 22 03:38:45 snort: [1:2:3] {msg} [Priority: 1] {{UDP}} {src}:{sport} -> {dst}:{dport}"
    assert endpoints(parse(syslog)) == (src, sport, dst, dport)


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_a_parsed_address_is_exactly_the_field(text):
    """Any text in the source field: either exactly that address, or the line is unparsable."""
    line = f'11/14-22:13:23.105015 [**] [1:2:3] "m" [**] [Priority: 1] {{ICMP}} {text} -> 192.0.2.2'
    try:
        alert = parse(line)
    except UnparsableLine:
        return
    assert alert.src == ipaddress.ip_address(text)
