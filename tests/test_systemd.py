"""The shipped systemd units pass systemd-analyze verify and keep their hardening; sd_notify speaks the protocol."""

import configparser
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_tool

from plumbing.sdnotify import Notifier
from tzsp_ips_data import UNIT_BIN_DIR, data_root

UNITS = ["tzspd.service", "snort-bridge.service"]
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "CapabilityBoundingSet": "",
    "Restart": "on-failure",
    "Type": "notify",
}


def read_unit(name):
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str
    parser.read(data_root() / "systemd" / name)
    return parser


@pytest.mark.parametrize("name", UNITS)
def test_unit_verifies_cleanly(name, tmp_path):
    systemd_analyze = require_tool("systemd-analyze")
    scripts = Path(sys.executable).parent
    binary = {"tzspd.service": "tzspd", "snort-bridge.service": "snort-bridge"}[name]
    if not (scripts / binary).exists():
        pytest.fail(f"{binary} is not installed next to {sys.executable}; run ./run setup")
    text = (data_root() / "systemd" / name).read_text().replace(f"{UNIT_BIN_DIR}/", f"{scripts}/")
    unit = tmp_path / name
    unit.write_text(text)
    result = subprocess.run([systemd_analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if name in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


@pytest.mark.parametrize("name", UNITS)
def test_unit_keeps_its_hardening(name):
    service = read_unit(name)["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == value, f"{name}: {key} should be {value!r}"
    assert set(service["RestrictAddressFamilies"].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert service.get("User") == "tzsp-ips" and "WatchdogSec" in service
    assert "password" not in service.get("ExecStart", "").lower()


def test_bridge_unit_reloads_with_sighup_and_keeps_state():
    service = read_unit("snort-bridge.service")["Service"]
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["StateDirectory"] == "tzsp-ips"


def test_sensor_unit_reloads_snort_with_sighup():
    # tzspd replaces its --exec Snort without a gap on SIGHUP (tests/test_tzspd.py)
    assert read_unit("tzspd.service")["Service"]["ExecReload"] == "/bin/kill -HUP $MAINPID"


def test_notifier_sends_ready_and_watchdog_datagrams(tmp_path):
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(5)
        notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())})
        assert notifier.enabled and notifier.watchdog_interval == 15.0
        assert notifier.ready("listening on [::]:37008")
        assert server.recv(4096) == b"READY=1\nSTATUS=listening on [::]:37008"
        assert notifier.watchdog()
        assert server.recv(4096) == b"WATCHDOG=1"


def test_notifier_is_silent_outside_systemd_and_for_another_pid():
    assert not Notifier({}).enabled and not Notifier({}).ready()
    other = Notifier({"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert other.watchdog_interval is None
    assert not other.ready()  # the socket does not exist: reported, not raised
