"""The provisioning script: pure rendering from validated inputs."""

from __future__ import annotations

import base64
import ipaddress
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from responder.provision import (
    ProvisionError,
    ProvisionPlan,
    exec_lines,
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
    assert "/user group add name=tzsp-ips policy=ssh,read,write" in script
    [user_line] = [line for line in script.splitlines() if line.strip().startswith("/user add ")]
    assert "name=ips group=tzsp-ips address=198.51.100.5/32" in user_line
    assert 'password="pw"' in user_line
    # a second run sets the group and address back, never the password
    [update] = [line for line in script.splitlines() if line.strip().startswith("/user set ")]
    assert "group=tzsp-ips address=198.51.100.5/32" in update and "password" not in update


def test_public_key_is_imported_verbatim_without_its_comment():
    line = ed25519_line(comment='evil" ; /system reset')
    key = parse_public_key(line)
    script = render_provision(plan(public_key=key))
    [key_line] = [row.strip() for row in script.splitlines() if row.strip().startswith("/user ssh-keys add")]
    literal = re.search(r'key=(".*")$', key_line).group(1)
    assert unquote_value(literal) == " ".join(line.split()[:2]) + " " + key.owner  # our comment, not theirs
    assert key.owner.startswith("tzsp-ips-") and len(key.owner) == len("tzsp-ips-") + 16
    assert "system reset" not in script
    # one key, however often run; a key somebody else gave the user is left alone
    assert f":if ([:len [/user ssh-keys find where user=ips key-owner={key.owner}]] = 0) do={{" in script
    removals = [row for row in script.splitlines() if "/user ssh-keys remove" in row]
    assert removals and all(f"key-owner={key.owner}]" in row for row in removals)  # only copies of ours


def test_v6_flavour_imports_the_key_from_a_file():
    script = render_provision(plan(public_key=parse_public_key(ed25519_line()), flavour="v6"))
    assert "/user ssh-keys import user=ips public-key-file=tzsp-ips.pub" in script
    assert "ssh-keys add" not in script


def blocks_with(script_lines, text):
    return [line for line in script_lines if text in line]


def test_every_rule_is_added_only_when_its_mark_is_absent_and_set_back_otherwise():
    lines = exec_lines(plan(list_name="ips-block"))
    for menu in ("/ip firewall filter", "/ipv6 firewall filter"):
        for chain, direction in (("input", "src"), ("forward", "src"), ("forward", "dst")):
            args = f"chain={chain} action=drop {direction}-address-list=ips-block"
            [block] = [line for line in lines if line.startswith(":if") and f"{menu} add" in line and args in line]
            mark = re.search(r'find where (comment="[^"]+")', block).group(1)
            assert block.startswith(f":if ([:len [{menu} find where {mark}]] = 0) do={{")
            assert f"place-before=[:pick [{menu} find] 0]" in block  # above every existing rule
            assert "on-error=" in block  # an empty table: appending is the top
            assert f"}} else={{ {menu} set [{menu} find where {mark}] {args} disabled=no; " in block
            assert f"{menu} remove [:pick [{menu} find where {mark}] 1 1000]" in block  # duplicates go
    assert not blocks_with(lines, "/ip firewall raw add")  # block_in = "filter": raw only cleaned of our drops
    assert blocks_with(lines, '/ip firewall raw remove [/ip firewall raw find where comment="tzsp-ips: drop ')


def test_block_in_raw_drops_in_prerouting_and_takes_the_filter_drops_out():
    lines = exec_lines(plan(block_in="raw"))
    for menu in ("/ip firewall raw", "/ipv6 firewall raw"):
        for direction in ("src", "dst"):
            assert blocks_with(lines, f"{menu} add comment=") and blocks_with(
                lines, f"chain=prerouting action=drop {direction}-address-list=blacklist"
            )
    assert not [line for line in lines if "/ip firewall filter add" in line and "action=drop" in line]
    assert blocks_with(lines, '/ip firewall filter remove [/ip firewall filter find where comment="tzsp-ips: drop ')
    assert blocks_with(lines, "find where chain=prerouting")  # the position check covers raw too


def test_drops_below_an_accept_are_moved_back_to_the_top():
    lines = exec_lines(plan())
    checks = [i for i, line in enumerate(lines) if line.startswith("{ :local ours ")]
    first_add = min(i for i, line in enumerate(lines) if "/ip firewall filter add" in line)
    assert checks and max(checks) < first_add
    assert any("[/ip firewall filter find where chain=input]" in lines[i] for i in checks)
    assert any("[/ipv6 firewall filter find where chain=forward]" in lines[i] for i in checks)


def test_drops_end_up_above_the_scan_log_rule():
    # each rule is put before the current first one, so the later a rule is added the higher it sits
    adds = [line for line in exec_lines(plan()) if "/ip firewall filter add" in line]
    assert all("action=log" in line for line in adds[:2]) and all("action=drop" in line for line in adds[2:])


@pytest.mark.parametrize("flavour,limit", [("v7", "limit=10,30:packet"), ("v6", "limit=10,30")])
def test_stealth_probes_are_logged_and_only_they_with_a_limit(flavour, limit):
    script = render_provision(plan(flavour=flavour))
    for menu in ("/ip firewall filter", "/ipv6 firewall filter"):
        [rule] = [line for line in script.splitlines() if f"{menu} add" in line and "stealth" in line]
        args = (
            "chain=input action=log protocol=tcp connection-state=invalid tcp-flags=!ack,!rst "
            f"{limit} log-prefix=tzsp-ips-stealth"
        )
        assert args in rule and "place-before=" in rule
    # the burst carries a scan past the detector's threshold on its own, however fast it is
    assert "limit=10,80:packet" in render_provision(plan(scan_ports=40))


def test_tzsp_by_mangle_or_sniffer():
    mangle = render_provision(plan(tzsp="mangle", tzsp_port=37009))
    assert (
        '/ip firewall mangle add comment="tzsp-ips: to tzspd" chain=prerouting action=sniff-tzsp '
        "sniff-target=198.51.100.5 sniff-target-port=37009"
    ) in mangle
    assert ':if ([:len [/ip firewall mangle find where comment="tzsp-ips: to tzspd"]] = 0) do={' in mangle
    sniffer = render_provision(plan(tzsp="sniffer"))
    assert "/tool sniffer set streaming-enabled=yes streaming-server=198.51.100.5:37008 filter-stream=yes" in sniffer
    assert "/tool sniffer start" in sniffer and "sniff-tzsp" not in sniffer
    assert "/ip firewall mangle remove [/ip firewall mangle find where comment=" in sniffer  # a switch from mangle
    none = render_provision(plan(tzsp="none"))
    assert "sniff" not in "\n".join(command_lines(none))


def test_remote_logging_of_firewall_events_only_with_a_listener():
    script = render_provision(plan(syslog_port=5514))
    assert "/system logging action add name=tzspips target=remote remote=198.51.100.5 remote-port=5514" in script
    assert "/system logging add action=tzspips topics=firewall" in script
    assert ":if ([:len [/system logging find where action=tzspips]] = 0) do={" in script
    assert "/system logging" not in "\n".join(command_lines(render_provision(plan(syslog_port=None))))


def test_memory_logging_of_firewall_events_when_scan_routers_reads_the_router_log():
    script = render_provision(plan(memory_logging=True))
    assert ":if ([:len [/system logging find where action=memory topics=firewall]] = 0) do={" in script
    assert "/system logging add action=memory topics=firewall" in script
    # the router's default `topics=info action=memory` rule is never taken for ours and changed
    assert "/system logging set [/system logging find where action=memory" not in script
    assert "action=memory" not in "\n".join(command_lines(render_provision(plan())))


def test_ipv6_host():
    host = ipaddress.ip_address("2001:db8::5")
    script = render_provision(plan(this_host=host, tzsp="sniffer"))
    assert "address=2001:db8::5/128" in script
    assert 'streaming-server="[2001:db8::5]:37008"' in script  # quoted: a bare [ starts a command


def test_every_command_is_a_single_ascii_line():
    script = render_provision(plan(public_key=parse_public_key(ed25519_line()), throwaway_password="p\u00e9\n$x"))
    for line in command_lines(script):
        assert line.isascii() and "\r" not in line
    assert 'password="p\\C3\\A9\\0A\\$x"' in script
    for line in exec_lines(plan(public_key=parse_public_key(ed25519_line()))):
        assert "\n" not in line and line.count("{") == line.count("}")


def test_the_rsc_linter_finds_nothing_to_say_about_idempotency(tmp_path):
    """mikrotik-rsc-auditor's --lint: every add guarded by :if ([:len [find where ...]] = 0)."""
    auditor = shutil.which("mikrotik-audit") or str(Path(sys.executable).with_name("mikrotik-audit"))
    assert Path(auditor).exists(), "mikrotik-rsc-auditor is a test dependency (pyproject.toml)"
    for variant in (plan(), plan(block_in="raw", tzsp="sniffer", flavour="v6"), plan(transport="api")):
        script = tmp_path / "provision.rsc"
        script.write_text(render_provision(variant))
        report = subprocess.run(
            [auditor, str(script), "--lint", str(script)], capture_output=True, text=True, timeout=60
        ).stdout
        assert "LINT-" not in report, report[report.find("SCRIPT LINTING") :]
    # it does speak up about an unguarded add (the script as it was before)
    script.write_text("/ip firewall filter add chain=input action=drop src-address-list=blacklist\n")
    report = subprocess.run([auditor, str(script), "--lint", str(script)], capture_output=True, text=True, timeout=60)
    assert "idempotency/unguarded-add" in report.stdout


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
        ("block_in", "prerouting", ProvisionError),
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
