"""Rendering RouterOS commands: only ipaddress objects, hostile comments stay inside one quoted value."""

from __future__ import annotations

import ipaddress
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from responder.routeros import commands
from responder.routeros.duration import MAX_TIMEOUT_SECONDS, parse_duration
from responder.routeros.quoting import QuotingError, quote_value, unquote_value

V4 = ipaddress.ip_address("203.0.113.7")
V6 = ipaddress.ip_address("2001:db8::7")
HOSTILE = [
    'he said "hi"',
    "cost $100 and $(:put x) ${ip}",
    "a; /system reset-configuration",
    "line1\nline2\r\n/user add name=evil",
    "[/ip firewall address-list remove [find]]",
    'back\\slash \\" tricky',
    "question? help",
    "naïve ünïcødé 攻撃 \u202e rtl",
    "\x00nul\x1b[31mred\x7f",
    "{ :global x 1 }",
]
COMMENT_RE = re.compile(r' comment=("(?:[^"\\]|\\.)*")$')


def split_comment(command: str):
    """(command without comment, comment literal); asserts the literal is the last, whole token."""
    match = COMMENT_RE.search(command)
    assert match, command
    return command[: match.start()], match.group(1)


@pytest.mark.parametrize("comment", HOSTILE)
def test_render_add_keeps_hostile_comment_inside_one_quoted_value(comment):
    command = commands.render_add(None, "blacklist", V4, 300, comment)
    head, literal = split_comment(command)
    assert head == "/ip firewall address-list add list=blacklist address=203.0.113.7 timeout=5m"
    assert command.isascii() and "\n" not in command and "\r" not in command
    assert re.search(r"(?<!\\)\$", literal) is None  # every $ escaped: nothing interpolates
    assert unquote_value(literal) == commands.clean_comment(comment)


def test_clean_comment_flattens_and_limits():
    assert commands.clean_comment("a\n\tb\x00  c ") == "a b c"
    long = commands.clean_comment("x" * 1000)
    assert len(long) == commands.COMMENT_MAX_CHARS
    assert commands.make_comment("1:2000003:4", "ET SCAN\nnmap") == "tzsp-ips [1:2000003:4] ET SCAN nmap"
    assert commands.make_comment("", "manual") == "tzsp-ips manual"


def test_empty_comment_is_left_out():
    assert (
        commands.render_add(None, "bl", V4, 60, " \n ")
        == "/ip firewall address-list add list=bl address=203.0.113.7 timeout=1m"
    )


def test_ipv6_goes_to_ipv6_menu_as_128():
    command = commands.render_add(None, "bl", V6, 3600, "x")
    assert command.startswith("/ipv6 firewall address-list add list=bl address=2001:db8::7/128 timeout=1h ")
    with pytest.raises(ValueError):
        commands.render_add(commands.IPV4_LIST_PATH, "bl", V6, 3600, "x")
    assert commands.render_add(commands.IPV6_LIST_PATH, "bl", V6, 1, "").startswith("/ipv6 ")


def test_networks_render_with_prefix_and_hosts_bare():
    assert commands.render_address(ipaddress.ip_network("198.51.100.0/24")) == "198.51.100.0/24"
    assert commands.render_address(ipaddress.ip_network("198.51.100.9/32")) == "198.51.100.9"
    assert commands.render_address(ipaddress.ip_network("2001:db8::/48")) == "2001:db8::/48"
    assert commands.render_address(ipaddress.ip_network("2001:db8::1/128")) == "2001:db8::1/128"


def test_timeout_is_capped_and_at_least_one_second():
    capped = commands.render_add(None, "bl", V4, 10**12, "")
    assert capped.endswith("timeout=35w3d13h13m56s")
    assert parse_duration("35w3d13h13m56s") == MAX_TIMEOUT_SECONDS
    assert commands.render_add(None, "bl", V4, 0.2, "").endswith("timeout=1s")
    assert commands.render_add(None, "bl", V4, 90061.5, "").endswith("timeout=1d1h1m2s")
    with pytest.raises(TypeError):
        commands.render_add(None, "bl", V4, "5m", "")


NOT_ADDRESSES = [
    "203.0.113.7",
    b"203.0.113.7",
    3405803783,
    None,
    True,
    1.5,
    ["203.0.113.7"],
    "1.2.3.4; /system reset-configuration",
    object(),
]


@pytest.mark.parametrize("bad", NOT_ADDRESSES, ids=lambda v: type(v).__name__ + repr(v)[:20])
def test_every_renderer_rejects_non_addresses_with_type_error(bad):
    for render in (
        lambda: commands.render_add(None, "bl", bad, 60, "c"),
        lambda: commands.render_remove("bl", bad),
        lambda: commands.render_set_timeout("bl", bad, 60),
        lambda: commands.render_script_block(bad, "filter"),
        lambda: commands.render_address(bad),
        lambda: commands.family_path(bad),
    ):
        with pytest.raises(TypeError):
            render()


def test_remove_and_refresh_use_find_with_the_router_spelling():
    assert (
        commands.render_remove("blacklist", V4)
        == "/ip firewall address-list remove [find list=blacklist address=203.0.113.7]"
    )
    assert (
        commands.render_remove("blacklist", V6)
        == "/ipv6 firewall address-list remove [find list=blacklist address=2001:db8::7/128]"
    )
    assert (
        commands.render_set_timeout("bl", V4, 600)
        == "/ip firewall address-list set [find list=bl address=203.0.113.7] timeout=10m"
    )


def test_print_renders_terse_and_as_value():
    assert commands.render_print("bl", 4) == "/ip firewall address-list print terse where list=bl"
    assert commands.render_print("bl", 6) == "/ipv6 firewall address-list print terse where list=bl"
    assert commands.render_print_as_value("bl", 6) == ":put [/ipv6 firewall address-list print as-value where list=bl]"
    with pytest.raises(ValueError):
        commands.render_print("bl", 5)


def test_script_block_is_one_exec_line():
    assert commands.render_script_block(V4, "filter") == ":global ip 203.0.113.7; /system script run filter"
    assert commands.render_script_block(V6, "block-6") == ":global ip 2001:db8::7; /system script run block-6"
    assert commands.render_resource() == "/system resource print"


@pytest.mark.parametrize("name", ["", "a b", "bl;x", "bl]", 'bl"', "bl$x", "x" * 64, "блок", None, 7])
def test_bad_list_and_script_names_are_refused(name):
    with pytest.raises(ValueError):
        commands.check_name("list", name)
    with pytest.raises(ValueError):
        commands.render_add(None, name, V4, 60, "")
    with pytest.raises(ValueError):
        commands.render_script_block(V4, name)


def test_good_names_pass():
    for name in ("blacklist", "port-scanners", "ips_v2.1", "A"):
        assert commands.check_name("list", name) == name


def test_quote_value_escapes():
    assert quote_value('a"b\\c$d?e') == '"a\\"b\\\\c\\$d\\?e"'
    assert quote_value("\n\t") == '"\\0A\\09"'
    assert quote_value("é") == '"\\C3\\A9"'
    with pytest.raises(TypeError):
        quote_value(b"x")


@pytest.mark.parametrize("literal", ['"abc', 'abc"', '"a"b"', '"bad \\q escape"', '"'])
def test_unquote_rejects_malformed(literal):
    with pytest.raises(QuotingError):
        unquote_value(literal)


def test_unquote_reads_router_escapes():
    assert unquote_value('"a\\_b\\n\\$x\\41"') == "a b\n$xA"


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_quote_round_trips_and_stays_single_token(text):
    literal = quote_value(text)
    assert literal.isascii()
    assert not any(ch in literal for ch in "\r\n\x00")
    assert re.fullmatch(r'"(?:[^"\\]|\\.)*"', literal)
    assert unquote_value(literal) == text
