"""The provisioning script: pure rendering from validated inputs."""

from __future__ import annotations

import base64
import ipaddress
import re
import struct

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from responder.provision import (
    ProvisionError,
    ProvisionPlan,
    parse_public_key,
    parse_this_host,
    render_provision,
    syslog_port_of,
)
from responder.routeros.quoting import unquote_value

HOST = ipaddress.ip_address("198.51.100.5")


def ed25519_line(comment="me@host"):
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    text = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return f"{text} {comment}"


def plan(**overrides):
    base = dict(router="core1", router_host="192.0.2.1", this_host=HOST, syslog_port=5514)
    base.update(overrides)
    return ProvisionPlan(**base)


def command_lines(script):
    return [line for line in script.splitlines() if line and not line.startswith("#")]


def test_group_has_exactly_ssh_read_write_and_user_is_limited_to_this_host():
    script = render_provision(plan(throwaway_password="pw"))
    assert "/user group add name=tzsp-ips policy=ssh,read,write " in script
    [user_line] = [line for line in script.splitlines() if line.startswith("/user add ")]
    assert "name=ips group=tzsp-ips address=198.51.100.5/32" in user_line
    assert 'password="pw"' in user_line


def test_public_key_is_imported_verbatim_without_its_comment():
    line = ed25519_line(comment='evil" ; /system reset')
    key = parse_public_key(line)
    script = render_provision(plan(public_key=key))
    [key_line] = [row for row in script.splitlines() if row.startswith("/user ssh-keys add")]
    literal = re.search(r'key=(".*")$', key_line).group(1)
    assert unquote_value(literal) == " ".join(line.split()[:2])
    assert "system reset" not in script


def test_v6_flavour_imports_the_key_from_a_file():
    script = render_provision(plan(public_key=parse_public_key(ed25519_line()), flavour="v6"))
    assert "/user ssh-keys import user=ips public-key-file=tzsp-ips.pub" in script
    assert "ssh-keys add" not in script


def test_drop_rules_go_to_the_top_of_input_and_forward_for_both_families():
    script = render_provision(plan(list_name="ips-block"))
    for menu in ("/ip firewall filter", "/ipv6 firewall filter"):
        for chain, direction in (("input", "src"), ("forward", "src"), ("forward", "dst")):
            args = f"chain={chain} action=drop {direction}-address-list=ips-block"
            rule = [line for line in script.splitlines() if f"{menu} add {args}" in line]
            assert len(rule) == 1, (menu, chain, direction)
            assert f"place-before=[:pick [{menu} find] 0]" in rule[0]  # above every existing rule
            assert "on-error=" in rule[0]  # an empty table: appending is the top


def test_drops_end_up_above_the_scan_log_rule():
    # each rule is put before the current first one, so the later a rule is added the higher it sits
    lines = [line for line in command_lines(render_provision(plan())) if "/ip firewall filter" in line]
    assert all("action=log" in line for line in lines[:2]) and all("action=drop" in line for line in lines[2:])


@pytest.mark.parametrize("flavour,limit", [("v7", "limit=10,30:packet"), ("v6", "limit=10,30")])
def test_stealth_probes_are_logged_and_only_they_with_a_limit(flavour, limit):
    script = render_provision(plan(flavour=flavour))
    for menu in ("/ip firewall filter", "/ipv6 firewall filter"):
        [rule] = [line for line in script.splitlines() if f"{menu} add" in line and "stealth" in line]
        args = (
            "chain=input action=log protocol=tcp connection-state=invalid tcp-flags=!ack,!rst "
            f"{limit} log-prefix=tzsp-ips-stealth "
        )
        assert f"{menu} add {args}" in rule and "place-before=" in rule
    # the burst carries a scan past the detector's threshold on its own, however fast it is
    assert "limit=10,80:packet" in render_provision(plan(scan_ports=40))


def test_tzsp_by_mangle_or_sniffer():
    mangle = render_provision(plan(tzsp="mangle", tzsp_port=37009))
    assert (
        "/ip firewall mangle add chain=prerouting action=sniff-tzsp sniff-target=198.51.100.5 sniff-target-port=37009"
    ) in mangle
    sniffer = render_provision(plan(tzsp="sniffer"))
    assert "/tool sniffer set streaming-enabled=yes streaming-server=198.51.100.5:37008 filter-stream=yes" in sniffer
    assert "/tool sniffer start" in sniffer and "sniff-tzsp" not in sniffer
    none = render_provision(plan(tzsp="none"))
    assert "sniff" not in "\n".join(command_lines(none))


def test_remote_logging_of_firewall_events_only_with_a_listener():
    script = render_provision(plan(syslog_port=5514))
    assert "/system logging action add name=tzspips target=remote remote=198.51.100.5 remote-port=5514" in script
    assert "/system logging add topics=firewall action=tzspips" in script
    assert "/system logging" not in "\n".join(command_lines(render_provision(plan(syslog_port=None))))


def test_ipv6_host():
    host = ipaddress.ip_address("2001:db8::5")
    script = render_provision(plan(this_host=host, tzsp="sniffer"))
    assert "address=2001:db8::5/128" in script
    assert "streaming-server=[2001:db8::5]:37008" in script


def test_every_command_is_a_single_ascii_line():
    script = render_provision(plan(public_key=parse_public_key(ed25519_line()), throwaway_password="p\u00e9\n$x"))
    for line in command_lines(script):
        assert line.isascii() and "\r" not in line
    assert 'password="p\\C3\\A9\\0A\\$x"' in script


@pytest.mark.parametrize(
    "field,value,error",
    [
        ("this_host", "198.51.100.5", ProvisionError),  # text is never rendered as an address
        ("this_host", ipaddress.ip_address("0.0.0.0"), ProvisionError),
        ("user", "ips; /system reset", ValueError),
        ("list_name", "a b", ValueError),
        ("group", "", ValueError),
        ("tzsp", "span", ProvisionError),
        ("flavour", "v8", ProvisionError),
        ("tzsp_port", 70000, ProvisionError),
        ("syslog_port", 0, ProvisionError),
    ],
)
def test_bad_inputs_are_refused(field, value, error):
    with pytest.raises(error):
        render_provision(plan(**{field: value}))


def test_public_key_parsing_rejects_wrong_or_damaged_keys():
    good = ed25519_line()
    kind, data = good.split()[:2]
    with pytest.raises(ProvisionError, match="ecdsa"):
        parse_public_key("ecdsa-sha2-nistp256 " + data)
    with pytest.raises(ProvisionError, match="base64"):
        parse_public_key(f"{kind} not*base64")
    swapped = base64.b64encode(struct.pack(">I", 7) + b"ssh-rsa" + b"\0" * 40).decode()
    with pytest.raises(ProvisionError, match="does not match"):
        parse_public_key(f"{kind} {swapped}")
    with pytest.raises(ProvisionError):
        parse_public_key("")
    assert parse_public_key(good).key_type == "ssh-ed25519"


def test_small_parsers():
    assert syslog_port_of("0.0.0.0:5514") == 5514
    assert syslog_port_of("[::]:514") == 514
    assert syslog_port_of(None) is None
    with pytest.raises(ProvisionError):
        syslog_port_of("localhost")
    assert parse_this_host(" 192.0.2.9 ") == ipaddress.ip_address("192.0.2.9")
    with pytest.raises(ProvisionError):
        parse_this_host("host.example")
