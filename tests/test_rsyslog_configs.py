"""The rsyslog files in snort/rsyslog/ are valid for the rsyslog Debian ships (rsyslogd -N1), as is,
and mark what a user must set. Their behaviour across hosts is tested in test_netns_sensors.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, require_tool

RSYSLOG = ROOT / "snort" / "rsyslog"
CONFIGS = sorted(p.name for p in RSYSLOG.glob("*.conf") if not p.name.endswith(".sysctl.conf"))


@pytest.mark.parametrize("name", CONFIGS)
def test_the_shipped_rsyslog_file_passes_rsyslogs_own_check(tmp_path, name):
    rsyslogd = require_tool("rsyslogd")
    main = tmp_path / "rsyslog.conf"
    main.write_text(f'global(workDirectory="{tmp_path}")\ninclude(file="{RSYSLOG / name}")\n')
    result = subprocess.run([rsyslogd, "-N1", "-f", str(main)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in (result.stdout + result.stderr).lower(), result.stdout + result.stderr


@pytest.mark.parametrize("name,settings", [
    ("40-tzsp-ips-sensor.conf", ('file="/var/log/snort/alert_json.txt"', 'tag="alert_json"',
                                 'target="central.example.net"', 'port="2514"')),
    ("40-tzsp-ips-central.conf", ('port="2514"', "/var/log/tzsp-ips/sensors/")),
])
def test_every_value_a_user_must_set_is_marked(name, settings):
    lines = (RSYSLOG / name).read_text().splitlines()
    for setting in settings:
        marked = [line for line in lines if setting in line and "# SET" in line]
        assert marked, f"{name}: {setting} is not marked '# SET'"


def test_the_sensor_sysctl_file_sets_only_known_keys():
    text = (RSYSLOG / "60-tzsp-ips-sensor.sysctl.conf").read_text()
    settings = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert settings == ["net.ipv4.tcp_retries2 = 5"]
    assert Path("/proc/sys/net/ipv4/tcp_retries2").exists()
