"""Reading RouterOS replies: the samples quoted in ROUTEROS.md, error classification, uptime."""

from __future__ import annotations

import ipaddress

import pytest

from responder.errors import RouterCommandError
from responder.routeros.replies import (
    ReplyParseError,
    classify,
    command_error,
    normalise_address,
    parse_address_list,
    parse_uptime,
)

# Samples as quoted in ROUTEROS.md section 2 (S15 ntc-templates fixture, S32, S21b), with CRLF as exec prints.
V6_TERSE = " 14 D list=azeazeaze address=192.168.3.0/24 creation-time=jun/14/2022 07:53:49 timeout=4m52s \r\n"
V7_TERSE = "list=testing address=34.127.16.140 creation-time=2024-10-22 21:20:36 dynamic=no\r\n"
V6_IPV6_TERSE = " 4 D list=azeazeaze address=d4de:e2c0::/26 timeout=7m49s dynamic=yes \r\n"
AS_VALUE = (
    ".id=*1;address=198.51.100.23;creation-time=2026-10-01 08:50:30;dynamic=true;list=port-scanners;"
    "timeout=23h59m55s;.id=*2;address=2001:db8::5/128;comment=tzsp-ips [1:2] x y;creation-time="
    "2026-10-01 08:51:00;disabled=true;dynamic=false;list=port-scanners\r\n"
)


def test_v6_terse_with_index_and_flags():
    [entry] = parse_address_list(V6_TERSE)
    assert entry.id == "14"
    assert entry.list == "azeazeaze"
    assert entry.address == ipaddress.ip_network("192.168.3.0/24")
    assert entry.timeout_s == 4 * 60 + 52
    assert entry.dynamic and not entry.disabled


def test_v7_terse_without_index():
    [entry] = parse_address_list(V7_TERSE, flavour_hint="v7")
    assert entry.id is None
    assert entry.list == "testing"
    assert entry.address == ipaddress.ip_address("34.127.16.140")
    assert entry.timeout_s is None and not entry.dynamic and not entry.disabled


def test_ipv6_terse():
    [entry] = parse_address_list(V6_IPV6_TERSE)
    assert entry.address == ipaddress.ip_network("d4de:e2c0::/26")
    assert entry.timeout_s == 7 * 60 + 49 and entry.dynamic


def test_as_value_several_entries_on_one_line():
    first, second = parse_address_list(AS_VALUE)
    assert (first.id, first.list, first.address) == ("*1", "port-scanners", ipaddress.ip_address("198.51.100.23"))
    assert first.dynamic and first.timeout_s == 23 * 3600 + 59 * 60 + 55
    assert second.address == ipaddress.ip_address("2001:db8::5")  # /128 compares equal to the bare host
    assert second.comment == "tzsp-ips [1:2] x y"
    assert second.disabled and not second.dynamic and second.timeout_s is None


def test_terse_with_comment_and_disabled_flag_and_headers_skipped():
    text = (
        "Flags: X - disabled, D - dynamic\r\n"
        " 0 X  list=bl address=10.0.0.0/8 comment=static, old entry creation-time=jan/02/2020 00:00:00\r\n"
        " 1 D  list=bl comment=tzsp-ips [1:2000:1] ET SCAN address=10.1.2.3 timeout=1d00:00:05\r\n\r\n"
    )
    static, dynamic = parse_address_list(text, flavour_hint="v6")
    assert static.disabled and not static.dynamic and static.comment == "static, old entry"
    assert static.address == ipaddress.ip_network("10.0.0.0/8")
    assert dynamic.comment == "tzsp-ips [1:2000:1] ET SCAN"
    assert dynamic.address == ipaddress.ip_address("10.1.2.3") and dynamic.timeout_s == 86405


def test_v4_and_v6_outputs_concatenated():
    entries = parse_address_list(V6_TERSE + V7_TERSE + V6_IPV6_TERSE)
    assert [e.list for e in entries] == ["azeazeaze", "testing", "azeazeaze"]


def test_non_entries_and_garbage_are_skipped_not_fatal():
    assert parse_address_list("") == []
    assert parse_address_list("\r\n  \r\nhello world\r\nlist= \r\n=address=1\r\n") == []
    [entry] = parse_address_list("list=bl address=not-an-ip.example timeout=junk dynamic=yes\r\n")
    assert entry.address == "not-an-ip.example" and entry.timeout_s is None


def test_error_reply_is_not_parsed_as_entries():
    with pytest.raises(ReplyParseError):
        parse_address_list("not enough permissions (9)\r\n")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1.2.3.4", ipaddress.ip_address("1.2.3.4")),
        ("1.2.3.4/32", ipaddress.ip_address("1.2.3.4")),
        ("203.0.113.77/24", ipaddress.ip_network("203.0.113.0/24")),
        ("2001:db8::1", ipaddress.ip_address("2001:db8::1")),
        ("2001:DB8::1/128", ipaddress.ip_address("2001:db8::1")),
        ("198.51.100.0-198.51.100.9", "198.51.100.0-198.51.100.9"),
        ("example.com", "example.com"),
    ],
)
def test_normalise_address(text, expected):
    assert normalise_address(text) == expected


# Every error text in ROUTEROS.md's response table and section 1, with the kind it must get.
ERRORS = [
    ("failure: already have such entry", "duplicate"),
    ("value of timeout is out of range (00:00:00 .. 35w3d13:13:56)", "out-of-range"),
    ("bad command name fakemenuxyz (line 1 column 12)", "bad-command"),
    ("expected end of command (line 1 column 29)", "expected-end"),
    ("syntax error (line 1 column 7)", "syntax"),
    ("no such item", "no-such-item"),
    ("not enough permissions (9)", "permission"),
    ("not enough permissions (9) (/user/add; line 1)", "permission"),
    ("failure: already have such entry (/ip/firewall/address-list/add; line 1)", "duplicate"),
    ("value of range must have ip address before '-' (/ip/pool/add (range); line 1)", "other"),
    ("Script Error: missing value(s) of argument(s) password (/system/backup/load; line 1)", "other"),
    ("failure: 2001:db8::1-2001:db8::5 is not a valid dns name", "other"),
    ("script error: failure: already have such entry", "duplicate"),
]


@pytest.mark.parametrize("text, kind", ERRORS)
def test_classify_every_documented_error(text, kind):
    reply = classify(text + "\r\n")
    assert not reply.ok
    assert reply.kind == kind
    assert reply.text == text


def test_classify_ok_outputs():
    assert classify("") == classify("\r\n") == classify("")
    assert classify("").ok and classify("").kind == "ok"
    assert classify(V6_TERSE).ok and classify(AS_VALUE).ok
    assert classify("   uptime: 1d\r\n").ok


def test_error_after_earlier_output_is_found():
    reply = classify("*1A\r\nno such item\r\n")
    assert reply.kind == "no-such-item"


def test_command_error_names_router_and_fix():
    exc = command_error("core1", classify("not enough permissions (9)"), "/ip firewall address-list add list=bl")
    assert isinstance(exc, RouterCommandError)
    assert exc.router == "core1" and exc.kind == "permission"
    assert str(exc).startswith("router core1: not enough permissions (9) -- the user needs a group with ssh,read,write")
    assert "list=bl" in str(exc)
    timeout = command_error("edge", classify("value of timeout is out of range (00:00:00 .. 35w3d13:13:56)"))
    assert "35w3d13h13m56s" in str(timeout) and timeout.kind == "out-of-range"


@pytest.mark.parametrize(
    "output, seconds",
    [
        ("                   uptime: 1w2d3h4m5s\r\n              version: 7.16 (stable)\r\n", 788645),
        ("             uptime: 1w2d03:04:05\r\n            version: 6.49.10 (long-term)\r\n", 788645),
        ("uptime: 00:00:09\r\n", 9),
        ("uptime: 3m12s\r\n", 192),
        ("1d02:00:00\r\n", 93600),
    ],
)
def test_parse_uptime(output, seconds):
    assert parse_uptime(output) == seconds


@pytest.mark.parametrize("output", ["", "version: 7.1\r\n", "uptime: soon\r\n", "not enough permissions (9)"])
def test_parse_uptime_rejects_other_text(output):
    with pytest.raises(ReplyParseError):
        parse_uptime(output)


def test_entries_of_list_keeps_our_list_and_prefers_a_live_entry_over_its_disabled_twin():
    from responder.routeros.replies import entries_of_list, entry_from_fields

    rows = [
        {"list": "blacklist", "address": "203.0.113.9", "disabled": "true"},  # static, disabled
        {"list": "blacklist", "address": "203.0.113.9", "timeout": "4m52s", "dynamic": "true"},
        {"list": "other", "address": "198.51.100.1"},
        {"list": "blacklist", "address": "2001:db8::1"},
        {"list": "blacklist"},  # no address: not an entry
    ]
    entries = [e for e in (entry_from_fields(row) for row in rows) if e is not None]
    found = entries_of_list(entries, "blacklist")
    by_text = {str(address): entry for address, entry in found.items()}
    assert sorted(by_text) == ["2001:db8::1", "203.0.113.9"]  # the other list and the address-less row left out
    assert len(found) == 2
    live = next(entry for entry in found.values() if entry.timeout_s is not None)
    assert not live.disabled and live.dynamic and live.timeout_s == 292
    # the order the router lists them in does not matter
    assert entries_of_list(reversed(entries), "blacklist")[live.address] == live
