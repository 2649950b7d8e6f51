"""The rsyslog files in tzsp_ips_data/snort/rsyslog/ are valid for the rsyslog Debian ships (rsyslogd -N1), as is,
and mark what a user must set. Their behaviour across hosts is tested in test_netns_sensors.py."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import free_port, require_tool

from tzsp_ips_data import data_root

RSYSLOG = data_root() / "snort" / "rsyslog"
CONFIGS = sorted(p.name for p in RSYSLOG.glob("*.conf") if not p.name.endswith(".sysctl.conf"))


@pytest.mark.parametrize("name", CONFIGS)
def test_the_shipped_rsyslog_file_passes_rsyslogs_own_check(tmp_path, name):
    rsyslogd = require_tool("rsyslogd")
    main = tmp_path / "rsyslog.conf"
    main.write_text(f'global(workDirectory="{tmp_path}")\ninclude(file="{RSYSLOG / name}")\n')
    result = subprocess.run([rsyslogd, "-N1", "-f", str(main)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in (result.stdout + result.stderr).lower(), result.stdout + result.stderr


@pytest.mark.parametrize(
    "name,settings",
    [
        (
            "40-tzsp-ips-sensor.conf",
            ('file="/var/log/snort/alert_json.txt"', 'tag="alert_json"', 'target="central.example.net"', 'port="2514"'),
        ),
        ("40-tzsp-ips-central.conf", ('port="2514"', "/var/log/tzsp-ips/sensors/")),
    ],
)
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


# -- TLS: the commented lines of both files, turned on, between two real rsyslogd on loopback ------


def _certificates(directory: Path, names) -> None:
    """A CA and, for each name, a certificate (CN and DNS name) and key signed by it, as PEM files."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def pem_key(key, path: Path) -> None:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        path.chmod(0o600)

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tzsp-ips test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for name in names:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        pem_key(key, directory / f"{name}.key")


def _tls_on(text: str, tls_dir: Path, own: str, peers) -> str:
    """The commented TLS lines uncommented, with this host's certificate and the permitted peers."""
    lines = []
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("# tls"):
            line = line[: len(line) - len(stripped)] + stripped[2:]
        lines.append(line)
    text = "\n".join(lines) + "\n"
    text = text.replace("/etc/tzsp-ips/tls/ca.pem", str(tls_dir / "ca.pem"))
    text = re.sub(r'tls\.myCert="[^"]*"', f'tls.myCert="{tls_dir / own}.pem"', text)
    text = re.sub(r'tls\.myPrivKey="[^"]*"', f'tls.myPrivKey="{tls_dir / own}.key"', text)
    text = re.sub(
        r"tls\.permittedPeer=\[[^\]]*\]", "tls.permittedPeer=[" + ", ".join(f'"{p}"' for p in peers) + "]", text
    )
    assert 'tls="on"' in text and str(tls_dir / own) in text
    return text


class _Rsyslogd:
    def __init__(self, home: Path, config: str, hostname: str = ""):
        home.mkdir(parents=True)
        (home / "40.conf").write_text(config)
        extra = f' localHostname="{hostname}"' if hostname else ""
        (home / "rsyslog.conf").write_text(
            f'global(workDirectory="{home}"{extra})\ninclude(file="{home / "40.conf"}")\n'
        )
        self.log = home / "log"
        self.process = subprocess.Popen(
            ["rsyslogd", "-n", "-i", str(home / "pid"), "-f", str(home / "rsyslog.conf")],
            stdout=open(self.log, "wb"),
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


@pytest.mark.slow
def test_tls_as_the_files_describe_it_delivers_only_from_a_permitted_sensor(tmp_path):
    require_tool("rsyslogd")
    tls = tmp_path / "tls"
    tls.mkdir()
    _certificates(tls, ["central.example.net", "edge1.example.net", "rogue.example.net"])
    port = free_port(socket.SOCK_STREAM)
    out = tmp_path / "sensors"
    central = (RSYSLOG / "40-tzsp-ips-central.conf").read_text().replace('port="2514"', f'port="{port}"')
    central = central.replace("/var/log/tzsp-ips/sensors/", f"{out}/")
    daemons = [_Rsyslogd(tmp_path / "central", _tls_on(central, tls, "central.example.net", ["edge1.example.net"]))]
    try:
        for name in ("edge1", "rogue"):
            alerts = tmp_path / f"{name}.txt"
            alerts.write_text(f'{{"rule" : "1:1:1", "msg" : "from {name}"}}\n')
            sensor = (RSYSLOG / "40-tzsp-ips-sensor.conf").read_text()
            sensor = sensor.replace('file="/var/log/snort/alert_json.txt"', f'file="{alerts}"')
            sensor = sensor.replace('target="central.example.net"', 'target="127.0.0.1"').replace(
                'port="2514"', f'port="{port}"'
            )
            daemons.append(
                _Rsyslogd(
                    tmp_path / name, _tls_on(sensor, tls, f"{name}.example.net", ["central.example.net"]), hostname=name
                )
            )
        delivered = out / "edge1" / "alert_json.txt"
        deadline = time.monotonic() + 30
        while not (delivered.exists() and delivered.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        logs = "\n".join(d.log.read_text(errors="replace") for d in daemons)
        # RELP delivers at least once: a session broken before its acknowledgement (a slow handshake
        # on a loaded machine) sends the line again, so it may be there twice, never changed
        assert delivered.exists() and set(delivered.read_text().splitlines()) == {
            '{"rule" : "1:1:1", "msg" : "from edge1"}'
        }, logs
        time.sleep(2)  # the rogue sensor had as long and more: its certificate name is not permitted
        assert not (out / "rogue").exists(), logs
        assert "rogue.example.net" in daemons[0].log.read_text(errors="replace"), logs  # it tried, and was refused
    finally:
        for daemon in daemons:
            daemon.stop()
