"""`snort-bridge check` and `snort-bridge config` as a user runs them: real subprocesses."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import DATA, console_script

from bridge import cli
from bridge.check import JSON_KEYS
from bridge.config.load import parse_config

CALIBRATION = DATA / "snort" / "calibration" / "alerts"
OPEN = '[policy]\nprotected = ["10.99.0.0/16"]\n'  # the nmap attackers live in 192.168.0.0/16


def run(args, stdin: bytes = b"", env_config=None, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("TZSP_IPS_CONFIG", None)
    if env_config is not None:
        env["TZSP_IPS_CONFIG"] = str(env_config)
    return subprocess.run(
        console_script("snort-bridge") + list(args), input=stdin, capture_output=True, env=env, timeout=60, cwd=cwd
    )


@pytest.fixture
def open_config(tmp_path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(OPEN)
    return path


def json_lines(out: bytes):
    return [json.loads(line) for line in out.decode().splitlines()]


def test_check_json_on_real_snort3_lines(open_config):
    lines = (CALIBRATION / "snort3" / "TCP_CONNECT_SCAN.pcap" / "alert_json.txt").read_bytes()
    lines += (CALIBRATION / "snort3" / "http_dvwa_directorytraversal.pcapng" / "alert_fast.txt").read_bytes()
    result = run(["check", "--json", "--config", str(open_config), "-"], stdin=lines)
    assert result.returncode == 0, result.stderr
    objects = json_lines(result.stdout)
    assert len(objects) == 4
    for number, obj in enumerate(objects, start=1):
        assert set(obj) == set(JSON_KEYS) and obj["line"] == number
    scan, traversal = objects[0], objects[1]
    assert (scan["format"], scan["gid"], scan["sid"], scan["rev"]) == ("json", 122, 1, 1)
    assert (scan["src"], scan["sport"], scan["dst"], scan["dport"]) == ("192.168.1.25", 389, "192.168.1.10", 2042)
    assert scan["decision"] == "block" and scan["target"] == "192.168.1.10"  # the scanner, not the src
    assert "reply" in scan["attribution"] and "S2C" in scan["why"]
    assert traversal["format"] == "fast" and traversal["priority"] == 1
    assert traversal["classification"] == "Web Application Attack" and traversal["proto"] == "TCP"
    assert traversal["decision"] == "block" and traversal["target"] == "10.2.2.101"
    assert objects[2]["decision"] == "ignore" and "already blocked" in objects[2]["why"]


def test_check_reports_unparsable_lines_and_hostile_ones(open_config, tmp_path):
    hostile = (
        b"garbage that is no alert\n"
        b"\n"
        + b"A" * 1_000_000
        + b"\n"
        + b'01/03-19:20:36.968966 [**] [1:1000101:1] "x 6.6.6.6; /system reset-configuration" [**] [Priority: 1] '
        b"{TCP} 203.0.113.9:40000 -> 198.51.100.2:80\n"
        b"\xff\xfe\x00binary\n"
        b'{ "gid" : 1, "sid" : 2, "rev" : 1, "msg" : "m", "priority" : 1, "src_addr" : "1.2.3.4; /ip firewall", "dst_addr" : "10.0.0.1" }\n'
    )
    source = tmp_path / "hostile.txt"
    source.write_bytes(hostile)
    result = run(["check", "--json", "--config", str(open_config), str(source)])
    assert result.returncode == 0, result.stderr
    objects = json_lines(result.stdout)
    stderr = result.stderr.decode()
    assert "line 1: NOT PARSED" in stderr and "line 3: NOT PARSED" in stderr and "line 5: NOT PARSED" in stderr
    for obj in objects:
        if obj["target"] is not None:
            ipaddress.ip_address(obj["target"])  # only ever an address
    blocks = [o for o in objects if o["decision"] == "block"]
    assert [o["target"] for o in blocks] == ["203.0.113.9"] and blocks[0]["line"] == 4
    assert all(o["line"] != 6 or o["decision"] == "ignore" for o in objects)


def test_check_human_output_without_config_uses_defaults(tmp_path):
    lines = (CALIBRATION / "snort2" / "TCP_CONNECT_SCAN.pcap" / "alert.fast").read_bytes()
    ssh = (CALIBRATION / "snort2" / "malicious-ssh-bruteforce.pcap" / "alert.fast").read_bytes()
    lines += b"".join(ssh.splitlines(keepends=True)[:10])
    result = run(["check"], stdin=lines, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out, err = result.stdout.decode(), result.stderr.decode()
    if not os.path.exists("/etc/tzsp-ips/config.toml"):
        assert "using the built-in defaults" in err
        # the default protected 192.168.0.0/16 holds the nmap scanner; the SSH attacker is outside it
        assert "192.168.1.10 is protected (policy.protected 192.168.0.0/16)" in out
        assert "=> BLOCK 147.32.80.40" in out
    assert out.startswith(
        'line 1: fast 122:1:1 "(portscan) TCP Portscan" [Attempted Information Leak] priority 2 PROTO:255'
    )
    assert "Snort 2 port-scan pseudo-packet" in out
    assert out.rstrip().splitlines()[-1].startswith("11 alert(s), 0 unparsable line(s); blocked:")


def test_check_evidence_less_scan_line_blocks_nobody_and_says_why(open_config):
    line = (CALIBRATION / "snort3" / "TCP_SYN_SCAN.pcap" / "alert_fast.txt").read_bytes()
    result = run(["check", "--json", "-"], stdin=line, env_config=open_config)  # config from the environment
    (obj,) = json_lines(result.stdout)
    assert obj["decision"] == "ignore" and obj["target"] is None
    assert "not blocking rather than risk blocking the victim" in obj["why"]
    assert "using the built-in defaults" not in result.stderr.decode()


def test_bad_config_is_refused_with_the_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[policy]\nblock_for = "5 min"\n[[routers]]\nname = "r"\n')
    result = run(["check", "--config", str(bad), "-"], stdin=b"")
    assert result.returncode == 2
    err = result.stderr.decode()
    assert 'policy.block_for: expected a duration such as "30s"' in err and "routers[0].host: missing" in err
    missing = run(["check", "--config", str(tmp_path / "nope.toml"), "-"])
    assert missing.returncode == 2 and "cannot read the configuration file" in missing.stderr.decode()


def test_config_example_round_trips_and_config_check(tmp_path):
    example = run(["config", "example"])
    assert example.returncode == 0
    parse_config(example.stdout.decode())
    path = tmp_path / "config.toml"
    path.write_bytes(example.stdout)
    checked = run(["config", "check", "--config", str(path)])
    assert checked.returncode == 0, checked.stderr
    assert f"{path}: OK" in checked.stdout.decode() and "core1 192.0.2.1:22" in checked.stdout.decode()
    before = run(["--config", str(path), "config", "check"])  # --config before the subcommand works too
    assert before.returncode == 0 and "edge2" in before.stdout.decode()


def test_every_subcommand_takes_config():
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in ("check", "config", "run", "block", "unblock", "list", "routers", "trust", "provision", "scan"):
        assert name in subparsers.choices
        assert "--config" in subparsers.choices[name]._option_string_actions, name


def test_modules_register_their_own_subcommands(monkeypatch, tmp_path):
    module = tmp_path / "extra_cmds_for_test.py"
    module.write_text(
        "def register(subparsers):\n"
        "    p = subparsers.add_parser('run', help='test run')\n"
        "    p.set_defaults(func=lambda args: 7 if args.config == 'X' else 8)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    parser = cli.build_parser(modules=("bridge.cli.check", "extra_cmds_for_test", "no_such_module_xyz"))
    args = parser.parse_args(["run", "--config", "X"])
    assert args.func(args) == 7  # the module's own, not the placeholder


def test_placeholder_says_what_is_missing(monkeypatch):
    monkeypatch.setattr(cli, "SUBCOMMAND_MODULES", ("bridge.cli.check",))
    assert cli.main(["provision", "core1"]) == 2
