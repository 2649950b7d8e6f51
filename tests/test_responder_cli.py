"""snort-bridge block/unblock/list/routers/trust/provision, through the real snort-bridge parser.

Routers here are simulators over real SSH (responder.sim), or a closed loopback port for a
router that is down.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import time

import pytest
from conftest import console_script, free_port
from responder_rig import client_key, write_config

from bridge.cli import main as snort_bridge
from responder.events import BlockRequest
from responder.ledger import Ledger
from responder.sim import SimRouter
from responder.transport import known_hosts

A = ipaddress.ip_address("203.0.113.7")
B = ipaddress.ip_address("198.51.100.9")


def closed_port() -> int:
    return free_port(socket.SOCK_STREAM)


def down_router(name="down1", **extra):
    return dict(name=name, host="127.0.0.1", port=closed_port(), connect_timeout="2s", command_timeout="2s", **extra)


def ledger_of(tmp_path) -> Ledger:
    return Ledger.in_state_dir(str(tmp_path / "state"))


@pytest.mark.parametrize(
    "target,message",
    [
        ("example.com", "not an IPv4 or IPv6 address"),
        ("203.0.113.7; /system reset", "not an IPv4 or IPv6 address"),
        ("203.0.113.0/24", "not an IPv4 or IPv6 address"),
        ("127.0.0.1", "loopback"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("192.168.1.20", "policy.protected"),
    ],
)
def test_block_refuses_targets_before_anything_is_recorded_or_sent(tmp_path, capsys, target, message):
    config = write_config(tmp_path, [down_router()])
    started = time.monotonic()
    assert snort_bridge(["block", target, "--config", config]) == 2
    err = capsys.readouterr().err
    assert message in err and "snort-bridge block" in err
    assert time.monotonic() - started < 2.0  # refused before any connection attempt
    assert not (tmp_path / "state").exists() or ledger_of(tmp_path).blocks(now=0, include_inactive=True) == []


def test_block_with_a_router_down_is_queued_and_says_so(tmp_path, capsys):
    config = write_config(tmp_path, [down_router()])
    assert snort_bridge(["--config", config, "block", str(A), "--for", "10m", "--reason", "by hand"]) == 1
    out = capsys.readouterr().out
    assert f"{A}: blocked for" in out
    assert "down1: pending (router down1: cannot connect" in out and "queued for snort-bridge run" in out
    ledger = ledger_of(tmp_path)
    [record] = ledger.blocks(now=time.time())
    assert (record.address, record.reason, record.routers["down1"].status) == (A, "by hand", "pending")
    assert 590 < record.expires_at - time.time() <= 600


def test_bad_duration_and_bad_config_are_usage_errors(tmp_path, capsys):
    config = write_config(tmp_path, [down_router()])
    assert snort_bridge(["block", str(A), "--for", "soon", "--config", config]) == 2
    assert "expected a duration" in capsys.readouterr().err
    assert snort_bridge(["list", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read the configuration file" in capsys.readouterr().err


def test_list_shows_each_router_state_as_text_and_json(tmp_path, capsys):
    config = write_config(tmp_path, [down_router("r1"), down_router("r2")])
    ledger = ledger_of(tmp_path)
    now = time.time()
    earlier = BlockRequest(A, 60, "ET SCAN nmap", "1:2000", requested_at=now - 3600)
    ledger.record_block(earlier, ["r1", "r2"], now - 3600)  # an earlier offence, long over
    why = "2nd offence; block_for sets 1m; ×4"
    ledger.record_block(
        BlockRequest(A, 240, "ET SCAN nmap", "1:2000", requested_at=now, duration_why=why), ["r1", "r2"], now
    )
    ledger.set_status("r1", A, "applied", now, expires_at=now + 240, static=True)
    ledger.close()

    assert snort_bridge(["list", "--config", config]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].split() == ["ADDRESS", "EXPIRES", "IN", "OFFENCES", "DURATION", "REASON", "ROUTERS"]
    assert text[1].startswith(str(A)) and "[1:2000] ET SCAN nmap" in text[1]
    assert "r1=applied(static) r2=pending" in text[1] and f"4m ({why})" in text[1] and " 2 " in text[1]

    assert snort_bridge(["list", "--json", "--config", config]) == 0
    document = json.loads(capsys.readouterr().out)
    [block] = document["blocks"]
    assert block["address"] == str(A) and block["sid"] == "1:2000" and block["state"] == "active"
    assert {k: v["status"] for k, v in block["routers"].items()} == {"r1": "applied", "r2": "pending"}
    assert block["routers"]["r1"]["static"] is True and block["routers"]["r2"]["static"] is False
    assert 230 < block["expires_in"] <= 240
    assert (block["offences"], block["duration"], block["duration_from"]) == (2, 240, why)


def test_unblock_forgets_offences_unless_told_to_keep_them(tmp_path, capsys):
    config = write_config(tmp_path, [down_router("r1")])
    ledger = ledger_of(tmp_path)
    now = time.time()
    for address in (A, B):
        ledger.record_block(BlockRequest(address, 300, "scan", "1:2000", requested_at=now), ["r1"], now)
    ledger.close()
    snort_bridge(["unblock", str(A), "--config", config])
    snort_bridge(["unblock", str(B), "--keep-offences", "--config", config])
    assert "its offences are kept" in capsys.readouterr().out
    ledger = ledger_of(tmp_path)
    assert ledger.offence_count(A, 0) == 0 and ledger.offence_count(B, 0) == 1
    ledger.close()


def test_list_when_nothing_is_blocked(tmp_path, capsys):
    config = write_config(tmp_path, [down_router()])
    assert snort_bridge(["list", "--config", config]) == 0
    assert capsys.readouterr().out.strip() == "no blocks in force"


def test_routers_reports_an_unreachable_router_with_its_error(tmp_path, capsys):
    config = write_config(tmp_path, [down_router("edge")])
    assert snort_bridge(["routers", "--config", config]) == 1
    out = capsys.readouterr().out
    row = [line for line in out.splitlines() if line.startswith("edge")][0]
    assert " no " in row and "cannot connect" in row


def test_provision_prints_the_script_with_our_key_and_address(tmp_path, capsys):
    key_path, key = client_key(tmp_path)
    config = write_config(
        tmp_path,
        [dict(name="core1", host="127.0.0.1", key_file=key_path, list="ips-block")],
        extra='[scan]\nsyslog = "0.0.0.0:5514"',
    )
    assert snort_bridge(["provision", "core1", "--config", config]) == 0
    script = capsys.readouterr().out
    assert f'key="{key.get_name()} {key.get_base64()} tzsp-ips-' in script  # derived from the private key, our mark
    assert "address=127.0.0.1/32" in script  # the address this host uses towards the router
    assert "src-address-list=ips-block" in script
    assert "remote-port=5514" in script and "sniff-target=127.0.0.1 sniff-target-port=37008" in script

    assert (
        snort_bridge(["provision", "core1", "--this-host", "2001:db8::5", "--tzsp", "sniffer", "--config", config]) == 0
    )
    script = capsys.readouterr().out
    assert "address=2001:db8::5/128" in script and 'streaming-server="[2001:db8::5]:37008"' in script


def test_provision_and_trust_name_the_known_routers_when_asked_for_another(tmp_path, capsys):
    config = write_config(tmp_path, [down_router("r1"), down_router("r2")])
    for command in ("provision", "trust"):
        assert snort_bridge([command, "nope", "--config", config]) == 2
        err = capsys.readouterr().err
        assert "no router named 'nope'" in err and "(routers: r1, r2)" in err
    assert snort_bridge(["provision", "r1", "--this-host", "example.org", "--config", config]) == 2
    assert "is not an IP address" in capsys.readouterr().err


def test_trust_of_a_router_that_is_down_fails_clearly(tmp_path, capsys):
    config = write_config(tmp_path, [down_router("r1")])
    assert snort_bridge(["trust", "r1", "--yes", "--config", config]) == 2
    assert "cannot connect" in capsys.readouterr().err


def test_subcommands_are_registered_in_the_installed_command(tmp_path):
    config = write_config(tmp_path, [down_router("r1")])
    result = subprocess.run(
        console_script("snort-bridge") + ["block", "--help"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0 and "--reason" in result.stdout and "--config" in result.stdout
    result = subprocess.run(
        console_script("snort-bridge") + ["list", "--json", "--config", config],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["blocks"] == []


# -- against simulated routers over real SSH ---------------------------------------------------


def lab_config_file(lab, tmp_path) -> str:
    return write_config(tmp_path, [lab.router_table(name, port) for name, port in lab.ports.items()])


def test_block_unblock_and_routers_on_live_routers(lab, tmp_path, capsys):
    lab.add("r1")
    lab.add("r2")
    config = lab_config_file(lab, tmp_path)
    assert snort_bridge(["block", str(A), "--for", "1h", "--reason", "seen on the console", "--config", config]) == 0
    out = capsys.readouterr().out
    assert "r1: applied" in out and "r2: applied" in out
    for name in ("r1", "r2"):
        entry = lab.entries(name)[str(A)]
        assert 3590 < entry.timeout <= 3600 and entry.comment == "tzsp-ips seen on the console"

    assert snort_bridge(["routers", "--config", config]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split()[:4] == ["ROUTER", "ADDRESS", "REACHABLE", "PENDING"]
    assert all(row.split()[2:4] == ["yes", "0"] for row in rows[1:])

    assert snort_bridge(["unblock", str(A), "--config", config]) == 0
    out = capsys.readouterr().out
    assert f"{A}: unblocked" in out and "r1: removed" in out and "r2: removed" in out
    assert all(str(A) not in lab.entries(name) for name in ("r1", "r2"))


def test_trust_asks_records_and_warns_about_a_changed_key(lab, tmp_path, capsys):
    sim = lab.add("r1")
    (tmp_path / "known_hosts").unlink()  # start with nothing trusted
    config = lab_config_file(lab, tmp_path)
    name = known_hosts.host_name("127.0.0.1", lab.ports["r1"])

    assert snort_bridge(["block", str(A), "--config", config]) == 1
    assert "snort-bridge trust r1" in capsys.readouterr().out  # the error says what to do
    assert lab.sent("r1", "") == []

    from bridge.cli import build_parser
    from bridge.cli.trust import cmd_trust

    args = build_parser().parse_args(["trust", "r1", "--config", config])
    assert cmd_trust(args, ask=lambda prompt: "n") == 1
    out = capsys.readouterr().out
    assert sim.fingerprint in out and "not recorded" in out
    assert known_hosts.load(lab.known_hosts) == []

    assert snort_bridge(["trust", "r1", "--yes", "--config", config]) == 0
    assert sim.fingerprint in capsys.readouterr().out
    assert known_hosts.check(known_hosts.load(lab.known_hosts), name, sim.host_key.asbytes()) == known_hosts.OK
    assert snort_bridge(["trust", "r1", "--config", config]) == 0  # no question when it is already trusted
    assert "already trusted" in capsys.readouterr().out
    assert snort_bridge(["block", str(A), "--config", config]) == 0
    capsys.readouterr()

    # the router comes back with another key: refused, and trust warns before replacing it
    sim.stop()
    port = lab.ports["r1"]
    impostor = SimRouter()
    impostor.add_user("ips", authorized_keys=(lab.key,))
    lab.sims["impostor"] = impostor
    impostor.start("127.0.0.1", port)
    assert snort_bridge(["block", str(B), "--config", config]) == 1
    assert "host key" in capsys.readouterr().out
    assert [c for u, c in impostor.commands_log] == []
    args = build_parser().parse_args(["trust", "r1", "--config", config])
    assert cmd_trust(args, ask=lambda prompt: "") == 1
    assert "DIFFERENT key" in capsys.readouterr().out
