"""routeros-sim over real SSH: paramiko client against the simulator on loopback."""

from __future__ import annotations

import os
import re
import signal
import socket
import struct
import subprocess
import time

import paramiko
import pytest
from conftest import console_script, free_port, require_tool
from responder_rig import FakeClock, write_ed25519

from responder.sim import SimRouter
from responder.sim.wire.ssh_server import CIPHERS, KEX, MACS

AL = "/ip firewall address-list"


@pytest.fixture(scope="session")
def host_key() -> paramiko.RSAKey:
    return paramiko.RSAKey.generate(2048)  # once per test session: keygen is the slow part


@pytest.fixture(scope="session")
def client_key(tmp_path_factory) -> paramiko.PKey:
    return write_ed25519(tmp_path_factory.mktemp("keys") / "id_ed25519")


@pytest.fixture
def sim(host_key):
    router = SimRouter(host_key=host_key)
    router.add_user("ips", password="s3cret")
    router.add_user("viewer", password="look", policies=("ssh", "read"))
    router.start()
    yield router
    router.stop()


def connect(router: SimRouter, user: str = "ips", **kwargs) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.get_host_keys().add(f"[127.0.0.1]:{router.port}", "rsa-sha2-256", router.host_key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    kwargs.setdefault("timeout", 10)
    kwargs.setdefault("banner_timeout", 10)
    client.connect("127.0.0.1", port=router.port, username=user, look_for_keys=False, allow_agent=False, **kwargs)
    return client


def run(client: paramiko.SSHClient, command: str):
    _, stdout, stderr = client.exec_command(command, timeout=10)
    out = stdout.read()
    err = stderr.read()
    return out, err, stdout.channel.recv_exit_status()


def _read_kexinit(port: int):
    """The server's banner and the name-lists of its first KEXINIT (sent in the clear)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"SSH-2.0-probe\r\n")
        data = b""
        while b"\r\n" not in data:
            data += sock.recv(4096)
        banner, _, rest = data.partition(b"\r\n")
        while len(rest) < 4 or len(rest) < 4 + struct.unpack(">I", rest[:4])[0]:
            rest += sock.recv(4096)
    length, padding = struct.unpack(">IB", rest[:5])
    payload = rest[5 : 4 + length - padding]
    assert payload[0] == 20  # SSH_MSG_KEXINIT
    pos, lists = 17, []
    for _ in range(10):
        (n,) = struct.unpack(">I", payload[pos : pos + 4])
        lists.append(payload[pos + 4 : pos + 4 + n].decode().split(","))
        pos += 4 + n
    return banner.decode(), lists


def test_banner_and_offered_algorithms_are_routeros_like(sim):
    banner, lists = _read_kexinit(sim.port)
    assert banner == "SSH-2.0-ROSSSH"
    kex, host_keys, ciphers = lists[0], lists[1], lists[2]
    assert [k for k in kex if not k.startswith("kex-strict")] == list(KEX)
    assert host_keys == ["rsa-sha2-256"]
    assert ciphers == list(CIPHERS) and lists[4] == list(MACS)


def test_password_login_with_terminal_suffix_and_exec_output(sim):
    with connect(sim, "ips+ct80w", password="s3cret") as client:
        transport = client.get_transport()
        assert transport.remote_version == "SSH-2.0-ROSSSH"
        assert transport.host_key_type == "rsa-sha2-256"
        assert transport.remote_cipher in CIPHERS and transport.remote_mac in MACS
        assert run(client, f"{AL} add list=blk address=192.0.2.1 timeout=1h") == (b"", b"", 0)
        out, err, status = run(client, f"{AL} print")
        assert err == b"" and status == 0
        assert out.endswith(b"\r\n") and b"\n" not in out.replace(b"\r\n", b"")
        assert b"0 D blk   192.0.2.1" in out
        out, err, status = run(client, "/nosuch")  # errors on stdout, exit status 0
        assert (out, err, status) == (b"bad command name nosuch (line 1 column 2)\r\n", b"", 0)
    assert sim.commands_log[0] == ("ips", f"{AL} add list=blk address=192.0.2.1 timeout=1h")


def test_wrong_password_and_unknown_user_are_refused(sim):
    for user, password in (("ips", "wrong"), ("nobody", "s3cret"), ("ips+C!", "s3cret")):
        with pytest.raises(paramiko.AuthenticationException):
            connect(sim, user, password=password)


def test_key_login_and_password_refused_for_a_user_with_keys(host_key, client_key):
    with SimRouter(host_key=host_key) as router:
        router.add_user("keyed", password="also", authorized_keys=[client_key])
        router.start()
        with connect(router, "keyed+cet1024w", pkey=client_key) as client:
            assert run(client, ":put [/system identity get name]") == (b"MikroTik\r\n", b"", 0)
        with pytest.raises(paramiko.AuthenticationException):
            connect(router, "keyed", password="also")


def test_user_address_restriction_applies_to_the_peer(host_key):
    with SimRouter(host_key=host_key) as router:
        router.add_user("far", password="pw", address="192.0.2.10/32")
        router.add_user("near", password="pw", address="127.0.0.0/8")
        router.start()
        with pytest.raises(paramiko.AuthenticationException):
            connect(router, "far", password="pw")
        with connect(router, "near", password="pw") as client:
            assert run(client, ":put ok")[0] == b"ok\r\n"


def test_user_without_ssh_policy_cannot_log_in(host_key):
    with SimRouter(host_key=host_key) as router:
        router.add_user("apionly", password="pw", policies=("api", "read", "write"))
        router.start()
        with pytest.raises(paramiko.AuthenticationException):
            connect(router, "apionly", password="pw")


@pytest.mark.parametrize("flavour", ["v6", "v7"])
def test_add_print_remove_round_trip(host_key, flavour):
    with SimRouter(host_key=host_key, flavour=flavour) as router:
        router.add_user("ips", password="pw")
        router.start()
        with connect(router, password="pw") as client:
            assert run(client, f'{AL} add list=blk address=203.0.113.77/24 timeout=1d comment="sid 1"')[0] == b""
            assert run(client, "/ipv6 firewall address-list add list=blk address=2001:db8::1")[0] == b""
            terse = run(client, f"{AL} print terse where list=blk")[0].decode()
            assert "list=blk address=203.0.113.0/24 " in terse and "comment=sid 1 " in terse
            as_value = run(client, f":put [{AL} print as-value where list=blk]")[0].decode()
            assert as_value.startswith(".id=*1;address=203.0.113.0/24;comment=sid 1;") and as_value.endswith("\r\n")
            duplicate = run(client, f"{AL} add list=blk address=203.0.113.0/24 timeout=1d")
            assert duplicate == (b"failure: already have such entry\r\n", b"", 0)
            assert run(client, f"{AL} remove [find list=blk address=203.0.113.0/24]")[0] == b""
            assert run(client, f"{AL} print count-only where list=blk")[0] == b"0\r\n"
        assert [e.address for e in router.address_list("blk", family=6)] == ["2001:db8::1/128"]


def test_holds_answers_for_the_normalised_address_until_the_timeout_ends(host_key):
    clock = FakeClock()
    router = SimRouter(host_key=host_key, clock=clock)
    router.add_user("admin", password="pw")
    router.execute("admin", f"{AL} add list=blk address=203.0.113.7 timeout=1m")
    router.execute("admin", "/ipv6 firewall address-list add list=blk address=2001:db8::1")
    assert router.holds("blk", "203.0.113.7") and router.holds("blk", "203.0.113.7/32")
    assert not router.holds("other", "203.0.113.7") and not router.holds("blk", "203.0.113.8")
    assert router.holds("blk", "2001:db8::1", family=6) and router.holds("blk", "2001:db8::1/128", family=6)
    clock.advance(61)
    assert not router.holds("blk", "203.0.113.7")  # expired, as print would show
    assert router.holds("blk", "2001:db8::1", family=6)  # static: stays


def test_permission_error_for_read_only_user(sim):
    with connect(sim, "viewer", password="look") as client:
        out, err, status = run(client, f"{AL} add list=blk address=192.0.2.1")
        assert (out, err, status) == (b"not enough permissions (9) (/ip/firewall/address-list/add; line 1)\r\n", b"", 0)
        assert run(client, f"{AL} print count-only")[0] == b"0\r\n"


def test_global_in_one_exec_is_seen_by_a_script_in_the_next(sim):
    sim.add_script("block", ":global ip; /ip firewall address-list add list=blk address=$ip timeout=1d", owner="ips")
    with connect(sim, password="s3cret") as client:
        assert run(client, ":global ip 198.51.100.9")[0] == b""
        assert run(client, "/system script run block")[0] == b""
    with connect(sim, "viewer", password="look") as other:  # globals are per user
        assert run(other, ":global ip; :put $ip")[0] == b"\r\n"
    assert [e.address for e in sim.address_list("blk")] == ["198.51.100.9"]


def test_timeout_expiry_with_an_injected_clock(host_key):
    now = [1_800_000_000.0]
    with SimRouter(host_key=host_key, clock=lambda: now[0]) as router:
        router.add_user("ips", password="pw")
        router.start()
        with connect(router, password="pw") as client:
            run(client, f"{AL} add list=blk address=192.0.2.1 timeout=10m")
            now[0] += 299
            assert b"timeout=5m1s" in run(client, f"{AL} print terse")[0]
            now[0] += 301
            assert run(client, f"{AL} print count-only")[0] == b"0\r\n"


def test_reboot_drops_dynamic_entries_globals_and_sessions(sim):
    with connect(sim, password="s3cret") as client:
        run(client, f"{AL} add list=blk address=192.0.2.1 timeout=1h; {AL} add list=blk address=192.0.2.2")
        run(client, ":global ip 1.2.3.4")
        sim.reboot()
        deadline = time.monotonic() + 10
        while client.get_transport().is_active() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not client.get_transport().is_active()
    with connect(sim, password="s3cret") as client:
        assert run(client, f"{AL} print count-only")[0] == b"1\r\n"
        assert run(client, ":global ip; :put $ip")[0] == b"\r\n"
        assert re.search(rb"uptime: \d{1,2}s\r\n", run(client, "/system resource print")[0])


def test_hang_mode_accepts_tcp_and_never_answers(sim):
    sim.hang = True
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as sock:
        sock.settimeout(0.5)
        with pytest.raises(socket.timeout):
            sock.recv(100)
    with pytest.raises((paramiko.SSHException, EOFError, OSError)):
        connect(sim, password="s3cret", timeout=2, banner_timeout=0.5)
    sim.hang = False
    with connect(sim, password="s3cret") as client:
        assert run(client, ":put back")[0] == b"back\r\n"


def test_stop_and_start_again_on_the_same_port(host_key):
    router = SimRouter(host_key=host_key)
    router.add_user("ips", password="pw")
    port = router.start()
    router.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert router.start(port=port) == port
    try:
        with connect(router, password="pw") as client:
            assert run(client, ":put up")[0] == b"up\r\n"
    finally:
        router.stop()


def test_routeros_sim_command(tmp_path, host_key):
    key_file = tmp_path / "host_key"
    host_key.write_private_key_file(str(key_file))
    port = free_port(socket.SOCK_STREAM)
    env = dict(os.environ, SIM_PW="pw from env")
    proc = subprocess.Popen(
        console_script("routeros-sim")
        + [
            "--port",
            str(port),
            "--user",
            "ips",
            "--password-env",
            "SIM_PW",
            "--host-key",
            str(key_file),
            "--flavour",
            "v6",
            "--identity",
            "lab",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        banner = []
        while not banner or banner[-1] != "Ctrl-C stops.\n":
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            banner.append(line)
        text = "".join(banner)
        assert f"127.0.0.1:{port}" in text and SimRouter(host_key=host_key).fingerprint in text
        assert "pw from env" not in text
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect(
            "127.0.0.1",
            port=port,
            username="ips",
            password="pw from env",
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
        )
        with client:
            assert run(client, "/system identity print")[0] == b"name: lab\r\n"
            assert b"Flags: X - disabled, D - dynamic" in run(client, f"{AL} print")[0]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


def test_password_option_warns_that_ps_shows_it(capsys):
    from responder.sim.cli import build_parser, read_password

    assert read_password(build_parser().parse_args(["--password", "visible"])) == "visible"
    assert "visible to every user in `ps`" in capsys.readouterr().err


def test_routeros_sim_command_refuses_a_bad_password_file(tmp_path):
    missing = subprocess.run(
        console_script("routeros-sim") + ["--password-file", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert missing.returncode == 2 and "--password-file" in missing.stderr


def test_openssh_client_negotiates_curve25519_and_rsa_sha2_256(tmp_path, host_key):
    ssh = require_tool("ssh")
    keygen = require_tool("ssh-keygen")
    key = tmp_path / "id_ed25519"
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    with SimRouter(host_key=host_key) as router:
        router.add_user("ips", authorized_keys=[(tmp_path / "id_ed25519.pub").read_text().strip()])
        port = router.start()
        known = tmp_path / "known_hosts"
        known.write_text(f"[127.0.0.1]:{port} ssh-rsa {host_key.get_base64()}\n")
        done = subprocess.run(
            [
                ssh,
                "-vv",
                "-F",
                "/dev/null",
                "-i",
                str(key),
                "-o",
                f"UserKnownHostsFile={known}",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-p",
                str(port),
                "ips+ct80w@127.0.0.1",
                f"{AL} add list=blk address=192.0.2.1; :put [{AL} print count-only]",
            ],
            capture_output=True,
            timeout=30,
        )
    assert done.returncode == 0 and done.stdout == b"1\r\n"
    log = done.stderr.decode()
    assert "remote software version ROSSSH" in log
    assert "kex: algorithm: curve25519-sha256" in log and "kex: host key algorithm: rsa-sha2-256" in log


def test_hang_exec_logs_in_but_never_answers_and_latency_delays(sim):
    sim.hang_exec = True
    with connect(sim, password="s3cret") as client:
        _, stdout, _ = client.exec_command(":put x", timeout=0.5)
        with pytest.raises(socket.timeout):
            stdout.read()
    sim.hang_exec = False
    sim.latency = 0.3
    with connect(sim, password="s3cret") as client:
        start = time.monotonic()
        assert run(client, ":put slow")[0] == b"slow\r\n"
        assert time.monotonic() - start >= 0.3
