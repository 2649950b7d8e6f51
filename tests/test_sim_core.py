"""routeros-sim pure core: address normalisation, state rules, the line parser (no sockets)."""

from __future__ import annotations

import pytest
from responder_rig import FakeClock

from responder.sim.router.addresses import normalise_address
from responder.sim.router.state import RouterProfile, RouterState, StateError
from responder.sim.script.parser import (
    CliSyntaxError,
    Concat,
    Literal,
    MenuCommand,
    VarRef,
    parse_line,
    parse_script,
)


@pytest.mark.parametrize(
    "text,family,expected",
    [
        ("1.2.3.4", 4, "1.2.3.4"),
        ("1.2.3.4/32", 4, "1.2.3.4"),
        ("203.0.113.77/24", 4, "203.0.113.0/24"),
        ("198.51.100.0-198.51.100.255", 4, "198.51.100.0/24"),
        ("198.51.100.7-198.51.100.7", 4, "198.51.100.7"),
        ("198.51.100.1-198.51.100.5", 4, "198.51.100.1-198.51.100.5"),
        ("Example.COM", 4, "example.com"),
        ("2001:db8::1", 6, "2001:db8::1/128"),
        ("2001:db8::77/64", 6, "2001:db8::/64"),
        ("ipv6.example.net", 6, "ipv6.example.net"),
    ],
)
def test_addresses_are_normalised_like_routeros(text, family, expected):
    assert normalise_address(text, family) == expected


@pytest.mark.parametrize(
    "text,family",
    [
        ("2001:db8::1-2001:db8::5", 6),
        ("2001:db8::1", 4),
        ("bad name!", 4),
        ("1.2.3.9-1.2.3.1", 4),
    ],
)
def test_impossible_addresses_are_refused_as_dns_names(text, family):
    with pytest.raises(StateError, match="is not a valid dns name"):
        normalise_address(text, family)


def test_ids_are_hex_and_increase_per_family():
    state = RouterState(clock=FakeClock())
    ids = [state.add_address(4, list_name="l", address=f"10.0.0.{n}").id for n in range(1, 12)]
    assert ids[0] == "*1" and ids[9] == "*A" and ids[10] == "*B"
    assert state.add_address(6, list_name="l", address="2001:db8::1").id == "*1"
    state.remove_address(4, 11)
    assert state.add_address(4, list_name="l", address="10.0.1.1").id == "*C"  # numbers never reused


def test_duplicate_is_the_same_normalised_address_in_the_same_list():
    state = RouterState(clock=FakeClock())
    state.add_address(4, list_name="blk", address="203.0.113.77/24")
    with pytest.raises(StateError) as caught:
        state.add_address(4, list_name="blk", address="203.0.113.0/24")
    assert caught.value.text == "failure: already have such entry" and caught.value.kind == "duplicate"
    state.add_address(4, list_name="other", address="203.0.113.0/24")
    state.add_address(4, list_name="blk", address="203.0.113.5")  # overlapping host is accepted
    assert len(state.entries(4)) == 3


def test_timed_entries_are_dynamic_and_expire_on_the_clock():
    clock = FakeClock()
    state = RouterState(clock=clock)
    entry = state.add_address(4, list_name="blk", address="192.0.2.1", timeout=60)
    state.add_address(4, list_name="blk", address="192.0.2.2")
    assert entry.dynamic and state.view(entry).timeout == 60
    clock.advance(59.5)
    assert len(state.entries(4)) == 2
    clock.advance(0.5)
    assert [e.address for e in state.entries(4)] == ["192.0.2.2"]


def test_set_timeout_rearms_from_now():
    clock = FakeClock()
    state = RouterState(clock=clock)
    entry = state.add_address(4, list_name="blk", address="192.0.2.1", timeout=60)
    clock.advance(50)
    state.update_address(4, entry.number, timeout=60)
    clock.advance(50)
    assert state.view(state.entries(4)[0]).timeout == 10


def test_timeout_range():
    state = RouterState(clock=FakeClock())
    state.add_address(
        4, list_name="l", address="192.0.2.1", timeout=35 * 7 * 86400 + 3 * 86400 + 13 * 3600 + 13 * 60 + 56
    )
    with pytest.raises(StateError, match=r"^value of timeout is out of range \(00:00:00 \.\. 35w3d13:13:56\)$"):
        state.add_address(4, list_name="l", address="192.0.2.2", timeout=36 * 7 * 86400)


def test_reboot_keeps_static_config_and_forgets_ram():
    clock = FakeClock()
    state = RouterState(clock=clock)
    state.add_address(4, list_name="blk", address="192.0.2.1", timeout=3600)
    state.add_address(4, list_name="blk", address="192.0.2.2", dynamic=True)
    state.add_address(6, list_name="blk", address="2001:db8::1", timeout=3600)
    state.add_address(4, list_name="blk", address="192.0.2.3")
    state.set_global("ips", "ip", "192.0.2.9")
    clock.advance(1000)
    assert state.uptime() == 1000
    state.reboot()
    assert [e.address for e in state.entries(4)] == ["192.0.2.3"] and state.entries(6) == []
    assert state.get_global("ips", "ip") is None and state.uptime() == 0


def test_user_address_restriction_and_login_suffix():
    state = RouterState(clock=FakeClock())
    user = state.add_user("ips", group="full", address="192.0.2.10/32,2001:db8::/64")
    assert user.allows_peer("192.0.2.10") and user.allows_peer("::ffff:192.0.2.10")
    assert user.allows_peer("2001:db8::5") and not user.allows_peer("127.0.0.1")
    assert state.login_name("ips+ct80w") == "ips" and state.login_name("ips+cet1024w") == "ips"
    assert state.login_name("ips") == "ips" and state.login_name("ips+C!") is None
    with pytest.raises(StateError):
        state.add_user("a+b", group="full")


def test_profile_rejects_unknown_flavour():
    with pytest.raises(ValueError):
        RouterProfile(flavour="v8")


# ----------------------------------------------------------------------------- parser


def test_parser_reads_space_and_slash_paths_quotes_and_variables():
    (cmd,) = parse_line('/ip firewall address-list add list=blk address=$ip comment="sid 1; \\"x\\" \\$y\\_z\\41"')
    assert isinstance(cmd, MenuCommand) and cmd.path == "/ip/firewall/address-list/add"
    assert cmd.arg("list") == Literal("blk") and cmd.arg("address") == VarRef("ip", 48)
    assert cmd.arg("comment") == Literal('sid 1; "x" $y zA')
    (slash,) = parse_line("/ip/firewall/address-list/add list=blk address=1.2.3.4")
    assert slash.menu == cmd.menu and slash.verb == "add"
    (interp,) = parse_line('/ip firewall address-list add list=blk address="$ip/32"')
    assert interp.arg("address") == Concat((VarRef("ip", 49), Literal("/32")))


def test_bare_menu_sets_the_directory_for_the_rest_of_the_line():
    statements = parse_line("/ip firewall address-list; add list=a address=1.2.3.4; print")
    assert [getattr(s, "verb", None) for s in statements] == [None, "add", "print"]
    assert statements[2].menu == ("ip", "firewall", "address-list")


@pytest.mark.parametrize(
    "line,kind,text",
    [
        ("/interface fakemenuxyz", "bad-command", "bad command name interface (line 1 column 2)"),
        ("/ip firewall fakemenuxyz print", "bad-command", "bad command name fakemenuxyz (line 1 column 14)"),
        ("/ip/firewall/address-list/nosuch", "bad-command", "bad command name nosuch (line 1 column 27)"),
        (
            "/ip firewall address-list add list=blk foo=bar",
            "expected-end",
            "expected end of command (line 1 column 43)",
        ),
        ("/ip firewall address-list print bogus", "expected-end", "expected end of command (line 1 column 33)"),
        ('/ip firewall address-list add list="blk', "syntax", "syntax error (line 1 column 36)"),
        ("/ip firewall address-list add comment={x}", "syntax", "syntax error (line 1 column 39)"),
        (":put [/ip firewall address-list find", "syntax", "syntax error (line 1 column 37)"),
        (":nosuch 1", "bad-command", "bad command name nosuch (line 1 column 2)"),
    ],
)
def test_parse_errors_carry_routeros_text_and_column(line, kind, text):
    with pytest.raises(CliSyntaxError) as caught:
        parse_line(line)
    assert caught.value.kind == kind and caught.value.text == text


def test_v6_does_not_know_slash_paths_and_ssh_key_add():
    with pytest.raises(CliSyntaxError):
        parse_line("/ip/firewall/address-list/print", "v6")
    with pytest.raises(CliSyntaxError, match="bad command name add"):
        parse_line('/user ssh-keys add user=a key="ssh-ed25519 AAAA"', "v6")
    assert parse_line('/user ssh-keys add user=a key="ssh-ed25519 AAAA"', "v7")


def test_exec_line_may_not_span_lines_but_a_script_may():
    with pytest.raises(CliSyntaxError):
        parse_line("/ip firewall address-list\nadd list=a address=1.2.3.4")
    statements = parse_script("# block one address\n:global ip\n/ip firewall address-list add list=a address=$ip\n")
    assert len(statements) == 2 and statements[1].line == 3


def test_find_conditions_with_and_without_where():
    (cmd,) = parse_line("/ip firewall address-list remove [find list=blk address=1.2.3.4]")
    find = cmd.positionals[0].statement
    assert find.verb == "find" and [c.prop for c in find.conditions] == ["list", "address"]
    (cmd2,) = parse_line("/ip firewall address-list print count-only where list=blk and !dynamic")
    assert cmd2.flags == {"count-only"}
    assert [(c.prop, c.op, c.negate) for c in cmd2.conditions] == [("list", "=", False), ("dynamic", "", True)]
