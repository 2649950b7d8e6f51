"""The SSH client and RouterSession over real SSH on loopback.

Until routeros-sim is there, a minimal paramiko server below answers canned RouterOS text;
tests against the simulator itself are at the end of this file.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import paramiko
import pytest
from responder_rig import write_ed25519

from responder.config import RouterConfig
from responder.errors import (
    AuthenticationFailed,
    CommandTimeout,
    HostKeyRefused,
    RouterCommandError,
    RouterUnreachable,
    SecretRefused,
)
from responder.transport import known_hosts
from responder.transport.secrets import read_password
from responder.transport.ssh import fetch_host_key, key_fingerprint
from responder.transport.ssh_session import RouterSession

ADDR = ipaddress.ip_address("203.0.113.9")


# --------------------------------------------------------------------------- keys and files
def write_rsa(path: Path, key: paramiko.RSAKey) -> paramiko.PKey:
    key.write_private_key_file(str(path))
    path.chmod(0o600)
    return paramiko.PKey.from_path(str(path))


@pytest.fixture(scope="module")
def rsa_host_key():
    return paramiko.RSAKey.generate(2048)


@pytest.fixture(scope="module")
def other_host_key():
    return paramiko.RSAKey.generate(2048)


@pytest.fixture(scope="module")
def rsa_user_key():
    return paramiko.RSAKey.generate(2048)


def once_reachable(action: Callable[[], object], timeout: float = 20.0):
    """``action()``'s result, retried while it raises RouterUnreachable, for at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return action()
        except RouterUnreachable:
            assert time.monotonic() < deadline
            time.sleep(0.05)


# --------------------------------------------------------------------------- canned server
class CannedServer(paramiko.ServerInterface):
    """A tiny SSH exec server: ``answer(command) -> (stdout, exit status)`` or None to never answer."""

    def __init__(
        self,
        host_key: paramiko.PKey,
        answer: Callable[[str], tuple | None],
        *,
        password: str | None = None,
        authorized: tuple = (),
        port: int = 0,
    ) -> None:
        self.host_key, self.answer = host_key, answer
        self.password, self.authorized = password, [k.asbytes() for k in authorized]
        self.commands: list = []
        self.auth_attempts: list = []
        self.global_requests: list = []
        self._listener = socket.create_server(("127.0.0.1", port))
        self.port = self._listener.getsockname()[1]
        self._transports: list = []
        self._hold = threading.Event()
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    # paramiko.ServerInterface
    def get_allowed_auths(self, username):
        return "publickey,password"

    def check_auth_password(self, username, password):
        self.auth_attempts.append(("password", username))
        ok = self.password is not None and username.split("+")[0] == "ips" and password == self.password
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_auth_publickey(self, username, key):
        self.auth_attempts.append(("publickey", username))
        ok = username.split("+")[0] == "ips" and key.asbytes() in self.authorized
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_global_request(self, kind, msg):
        self.global_requests.append(kind)
        return False

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel, command):
        text = command.decode("utf-8")
        self.commands.append(text)
        threading.Thread(target=self._reply, args=(channel, text), daemon=True).start()
        return True

    def _reply(self, channel, text):
        reply = self.answer(text)
        if reply is None:  # a router that hangs: hold the channel open until the test ends
            self._hold.wait(30)
            return
        output, status = reply
        channel.sendall(output.replace("\n", "\r\n").encode("utf-8"))
        channel.send_exit_status(status)
        channel.close()

    def _accept(self):
        while not self._stopped:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            transport = paramiko.Transport(sock, disabled_algorithms={"keys": ["ssh-rsa", "rsa-sha2-512"]})
            transport.local_version = "SSH-2.0-ROSSSH"
            transport.add_server_key(self.host_key)
            self._transports.append(transport)
            try:
                transport.start_server(server=self)
            except (paramiko.SSHException, EOFError, OSError):
                continue

    def stop(self):
        self._stopped = True
        self._hold.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() so the port is free again
        except OSError:
            pass
        self._listener.close()
        for transport in self._transports:
            transport.close()


@pytest.fixture
def servers():
    started = []

    def start(*args, **kwargs):
        server = CannedServer(*args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def trusted(tmp_path: Path, port: int, key: paramiko.PKey) -> str:
    path = tmp_path / "known_hosts"
    known_hosts.record(str(path), known_hosts.host_name("127.0.0.1", port), key.get_name(), key.asbytes())
    return str(path)


def config(tmp_path: Path, port: int, **overrides) -> RouterConfig:
    values = dict(
        name="r1",
        host="127.0.0.1",
        port=port,
        known_hosts=str(tmp_path / "known_hosts"),
        list="blacklist",
        connect_timeout=3.0,
        command_timeout=2.0,
        keepalive=5.0,
    )
    values.update(overrides)
    return RouterConfig(**values)


def password_file(tmp_path: Path, text: str, mode: int = 0o600) -> str:
    path = tmp_path / "router.pw"
    path.write_text(text)
    path.chmod(mode)
    return str(path)


def answer_with(table: dict, default=("", 0)):
    def answer(command):
        for prefix, reply in table.items():
            if command.startswith(prefix):
                return reply
        return default

    return answer


# --------------------------------------------------------------------------- tests
def test_run_over_ssh_with_password_file(tmp_path, servers, rsa_host_key):
    server = servers(
        rsa_host_key, answer_with({"/system resource print": ("   uptime: 1w2d03:04:05\n", 0)}), password="s3cret pw"
    )
    trusted(tmp_path, server.port, rsa_host_key)
    cfg = config(tmp_path, server.port, password_file=password_file(tmp_path, "s3cret pw\n"))
    with RouterSession(cfg) as session:
        assert not session.connected
        assert session.uptime() == 788645  # connects lazily
        assert session.connected
        assert session.run("/system identity print") == ""
    assert not session.connected
    assert server.commands == ["/system resource print", "/system identity print"]


def test_password_from_environment(tmp_path, servers, rsa_host_key, monkeypatch):
    server = servers(rsa_host_key, answer_with({}), password="from-env")
    trusted(tmp_path, server.port, rsa_host_key)
    monkeypatch.setenv("R1_PASSWORD", "from-env")
    with RouterSession(config(tmp_path, server.port, password_env="R1_PASSWORD")) as session:
        session.connect()
        assert session.connected
    monkeypatch.delenv("R1_PASSWORD")
    with pytest.raises(SecretRefused, match="R1_PASSWORD"):
        RouterSession(config(tmp_path, server.port, password_env="R1_PASSWORD")).connect()


def test_password_file_readable_by_others_is_refused_before_connecting(tmp_path, servers, rsa_host_key):
    server = servers(rsa_host_key, answer_with({}), password="pw")
    trusted(tmp_path, server.port, rsa_host_key)
    cfg = config(tmp_path, server.port, password_file=password_file(tmp_path, "pw", 0o644))
    with pytest.raises(SecretRefused, match="chmod 600"):
        RouterSession(cfg).connect()
    assert server.auth_attempts == []


def test_wrong_password_is_authentication_failed(tmp_path, servers, rsa_host_key):
    server = servers(rsa_host_key, answer_with({}), password="right")
    trusted(tmp_path, server.port, rsa_host_key)
    with pytest.raises(AuthenticationFailed, match="router r1: user 'ips' refused"):
        RouterSession(config(tmp_path, server.port), password="wrong").connect()


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_key_authentication(tmp_path, servers, rsa_host_key, rsa_user_key, kind):
    key_path = tmp_path / f"id_{kind}"
    user_key = write_ed25519(key_path) if kind == "ed25519" else write_rsa(key_path, rsa_user_key)
    server = servers(rsa_host_key, answer_with({}), authorized=(user_key,))
    trusted(tmp_path, server.port, rsa_host_key)
    with RouterSession(config(tmp_path, server.port, key_file=str(key_path))) as session:
        session.connect()
        assert session.connected
    assert server.auth_attempts == [("publickey", "ips")]


def test_key_file_readable_by_others_is_refused(tmp_path, servers, rsa_host_key):
    key_path = tmp_path / "id_ed25519"
    write_ed25519(key_path)
    key_path.chmod(0o644)
    with pytest.raises(SecretRefused, match="key_file"):
        RouterSession(config(tmp_path, 22, key_file=str(key_path))).connect()


def test_unknown_host_key_refused_with_fingerprint_and_trust_hint(tmp_path, servers, rsa_host_key):
    server = servers(rsa_host_key, answer_with({}), password="pw")
    with pytest.raises(HostKeyRefused) as caught:
        RouterSession(config(tmp_path, server.port), password="pw").connect()
    message = str(caught.value)
    assert caught.value.reason == "unknown"
    assert key_fingerprint(rsa_host_key) in message and "snort-bridge trust r1" in message
    assert server.auth_attempts == []  # nothing sent to an unverified host


def test_changed_host_key_refused(tmp_path, servers, rsa_host_key, other_host_key):
    server = servers(other_host_key, answer_with({}), password="pw")
    trusted(tmp_path, server.port, rsa_host_key)
    with pytest.raises(HostKeyRefused) as caught:
        RouterSession(config(tmp_path, server.port), password="pw").connect()
    assert caught.value.reason == "changed"
    assert "CHANGED" in str(caught.value) and key_fingerprint(other_host_key) in str(caught.value)
    assert server.auth_attempts == []


def test_fetch_host_key_then_trust_then_connect(tmp_path, servers, rsa_host_key):
    server = servers(rsa_host_key, answer_with({}), password="pw")
    key = fetch_host_key("127.0.0.1", server.port, timeout=3)
    assert key.asbytes() == rsa_host_key.asbytes()
    trusted(tmp_path, server.port, key)
    with RouterSession(config(tmp_path, server.port), password="pw") as session:
        session.connect()
        transport = session._connection._transport
        assert transport.host_key_type == "rsa-sha2-256"  # what RouterOS offers; ssh-rsa is disabled here
        assert transport.remote_version == "SSH-2.0-ROSSSH"


def test_connect_refused_is_unreachable(tmp_path):
    with socket.socket() as holder:  # bound, not listening: connection refused
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        with pytest.raises(RouterUnreachable, match="cannot connect"):
            RouterSession(config(tmp_path, port), password="pw").connect()


def test_silent_server_times_out_on_connect(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts TCP (backlog), never speaks
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(RouterUnreachable, match="timed out"):
            RouterSession(config(tmp_path, port, connect_timeout=0.5), password="pw").connect()
        assert time.monotonic() - started < 10  # bounded by connect_timeout, with room for a busy machine


def test_command_timeout_drops_connection_and_next_command_reconnects(tmp_path, servers, rsa_host_key):
    hang = {"on": True}
    server = servers(rsa_host_key, lambda c: None if hang["on"] else ("", 0), password="pw")
    trusted(tmp_path, server.port, rsa_host_key)
    with RouterSession(config(tmp_path, server.port, command_timeout=0.5), password="pw") as session:
        started = time.monotonic()
        with pytest.raises(CommandTimeout, match="router r1"):
            session.run("/ip firewall address-list print terse where list=blacklist")
        assert time.monotonic() - started < 10
        assert not session.connected
        hang["on"] = False
        assert session.run("/system identity print") == ""
        assert session.connected


def test_reconnect_after_server_restart(tmp_path, servers, rsa_host_key):
    first = servers(rsa_host_key, answer_with({}), password="pw")
    trusted(tmp_path, first.port, rsa_host_key)
    session = RouterSession(config(tmp_path, first.port), password="pw")
    session.run(":put ok")
    first.stop()
    second = servers(rsa_host_key, answer_with({":put": ("back\n", 0)}), password="pw", port=first.port)
    # the caller retries (with backoff in production); the session reconnects by itself
    assert once_reachable(lambda: session.run(":put again")) == "back\n"
    session.close()
    assert second.commands[-1] == ":put again"


def duplicate_server(servers, host_key, entry_line):
    return servers(
        host_key,
        answer_with(
            {
                "/ip firewall address-list add": ("failure: already have such entry\n", 0),
                "/ip firewall address-list print": (entry_line, 0),
                "/ip firewall address-list set": ("", 0),
            }
        ),
        password="pw",
    )


def test_add_block_refreshes_only_an_entry_that_would_expire_sooner(tmp_path, servers, rsa_host_key):
    server = duplicate_server(
        servers,
        rsa_host_key,
        "list=blacklist address=203.0.113.9 creation-time=2026-10-01 08:50:30 timeout=1m dynamic=yes\n",
    )
    trusted(tmp_path, server.port, rsa_host_key)
    with RouterSession(config(tmp_path, server.port), password="pw") as session:
        assert session.add_block(ADDR, 300, 'tzsp-ips [1:2] "$x"') == "refreshed"
    assert server.commands == [
        '/ip firewall address-list add list=blacklist address=203.0.113.9 timeout=5m comment="tzsp-ips [1:2] \\"\\$x\\""',
        "/ip firewall address-list print terse where list=blacklist",
        "/ip firewall address-list set [find list=blacklist address=203.0.113.9] timeout=5m",
    ]
    with RouterSession(config(tmp_path, server.port, refresh_existing=False), password="pw") as session:
        assert session.add_block(ADDR, 300, "") == "present"
        with pytest.raises(RouterCommandError) as caught:
            session.run("/ip firewall address-list add list=blacklist address=203.0.113.9")
        assert caught.value.kind == "duplicate"
    with pytest.raises(TypeError):
        RouterSession(config(tmp_path, server.port), password="pw").add_block("203.0.113.9", 300, "")


@pytest.mark.parametrize(
    "entry_line",
    [
        "list=blacklist address=203.0.113.9 creation-time=2026-10-01 08:50:30 timeout=1d dynamic=yes\n",  # longer block
        "list=blacklist address=203.0.113.9 creation-time=2026-10-01 08:50:30 dynamic=no\n",  # permanent, added by hand
    ],
)
def test_add_block_never_shortens_a_block_or_times_out_a_static_entry(tmp_path, servers, rsa_host_key, entry_line):
    server = duplicate_server(servers, rsa_host_key, entry_line)
    trusted(tmp_path, server.port, rsa_host_key)
    with RouterSession(config(tmp_path, server.port), password="pw") as session:
        assert session.add_block(ADDR, 300, "") == "present"
    assert not any(" set " in command for command in server.commands)


def test_permission_error_names_router_and_fix(tmp_path, servers, rsa_host_key):
    server = servers(rsa_host_key, answer_with({}, default=("not enough permissions (9)\n", 0)), password="pw")
    trusted(tmp_path, server.port, rsa_host_key)
    with RouterSession(config(tmp_path, server.port, name="core1"), password="pw") as session:
        with pytest.raises(RouterCommandError) as caught:
            session.add_block(ADDR, 60, "x")
    assert caught.value.kind == "permission"
    assert str(caught.value).startswith(
        "router core1: not enough permissions (9) -- the user needs a group with ssh,read,write"
    )


def test_bad_command_with_exit_status_one(tmp_path, servers, rsa_host_key):
    server = servers(
        rsa_host_key, answer_with({}, default=("bad command name ipv6 (line 1 column 2)\n", 1)), password="pw"
    )
    trusted(tmp_path, server.port, rsa_host_key)
    with RouterSession(config(tmp_path, server.port), password="pw") as session:
        with pytest.raises(RouterCommandError) as caught:
            session.run("/ipv6 firewall address-list print terse where list=blacklist")
        assert caught.value.kind == "bad-command"
        assert session.connected  # an error reply is not a connection problem


def test_list_blocks_v6_router_without_ipv6_package(tmp_path, servers, rsa_host_key):
    v4 = (
        " 0 D list=blacklist address=203.0.113.9 creation-time=jun/14/2022 07:53:49 timeout=4m52s \n"
        " 1   list=blacklist address=198.51.100.0/24 creation-time=jun/14/2022 07:53:49 \n"
    )
    server = servers(
        rsa_host_key,
        answer_with(
            {
                "/ip firewall address-list print terse where list=blacklist": (v4, 0),
                "/ipv6": ("bad command name ipv6 (line 1 column 2)\n", 1),
            }
        ),
        password="pw",
    )
    trusted(tmp_path, server.port, rsa_host_key)
    with RouterSession(config(tmp_path, server.port), password="pw") as session:
        blocks = session.list_blocks()
        assert set(blocks) == {ADDR, ipaddress.ip_network("198.51.100.0/24")}
        assert blocks[ADDR].timeout_s == 292 and blocks[ADDR].dynamic
        session.list_blocks()
        assert session.remove_block(ADDR) is True
        assert session.remove_block(ipaddress.ip_address("192.0.2.1")) is False
    assert sum(c.startswith("/ipv6") for c in server.commands) == 1  # learned once: no ipv6 package


def test_script_mode_sends_one_exec(tmp_path, servers, rsa_host_key):
    server = servers(rsa_host_key, answer_with({}), password="pw")
    trusted(tmp_path, server.port, rsa_host_key)
    with RouterSession(config(tmp_path, server.port, mode="script", script="filter"), password="pw") as session:
        assert session.add_block(ADDR, 300, "ignored") == "added"
    assert server.commands == [":global ip 203.0.113.9; /system script run filter"]


def test_keepalive_is_sent_on_an_idle_connection(tmp_path, servers, rsa_host_key):
    server = servers(rsa_host_key, answer_with({}), password="pw")
    trusted(tmp_path, server.port, rsa_host_key)
    with RouterSession(config(tmp_path, server.port, keepalive=1), password="pw") as session:
        session.connect()
        deadline = time.monotonic() + 15
        while "keepalive@lag.net" not in server.global_requests:
            assert time.monotonic() < deadline, "no keepalive within 15 s at a 1 s interval"
            time.sleep(0.1)


def test_read_password_sources(tmp_path):
    base = RouterConfig(name="r9", host="192.0.2.9")
    assert read_password(base, environ={}) is None
    assert (
        read_password(replace(base, password_file=password_file(tmp_path, "pw with spaces\r\n")), {})
        == "pw with spaces"
    )
    assert read_password(replace(base, password_file=password_file(tmp_path, " two\nlines\n")), {}) == " two\nlines"
    assert read_password(replace(base, password_env="PW"), {"PW": "x$y"}) == "x$y"
    for bad in (
        replace(base, password_file=password_file(tmp_path, "")),
        replace(base, password_file=password_file(tmp_path, "pw", 0o640)),
        replace(base, password_file=str(tmp_path / "missing")),
        replace(base, password_file=str(tmp_path)),
        replace(base, password_env="UNSET_PW"),
    ):
        with pytest.raises(SecretRefused) as caught:
            read_password(bad, environ={})
        assert str(caught.value).startswith("router r9: ")


# --------------------------------------------------------------------------- against routeros-sim
from responder.sim.server import SimRouter  # noqa: E402  (kept next to the tests that use it)

V6_ADDR = ipaddress.ip_address("2001:db8::66")


@pytest.fixture
def sims(rsa_host_key):
    started = []

    def start(*, port: int = 0, **kwargs) -> SimRouter:
        kwargs.setdefault("host_key", rsa_host_key)  # generating an RSA key per router is slow
        sim = SimRouter(**kwargs)
        sim.start("127.0.0.1", port)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


def sim_session(tmp_path: Path, sim: SimRouter, **overrides) -> RouterSession:
    trusted(tmp_path, sim.port, sim.host_key)
    password = overrides.pop("password", "pw")
    return RouterSession(config(tmp_path, sim.port, **overrides), password=password)


@pytest.mark.parametrize("flavour", ["v6", "v7"])
def test_sim_add_duplicate_list_remove_round_trip(tmp_path, sims, flavour):
    sim = sims(flavour=flavour, users={"ips": "pw"})
    with sim_session(tmp_path, sim) as session:
        comment = 'tzsp-ips [1:2000003:4] "$ip" ; [x]\nnext'
        assert session.add_block(ADDR, 300, comment) == "added"
        assert session.add_block(V6_ADDR, 600, "v6 entry") == "added"
        [entry] = sim.address_list("blacklist", 4)
        assert entry.address == "203.0.113.9" and entry.dynamic
        assert entry.comment == 'tzsp-ips [1:2000003:4] "$ip" ; [x] next'  # stored verbatim, nothing interpolated
        assert 200 < entry.timeout <= 300

        assert session.add_block(ADDR, 900, "again") == "refreshed"
        assert 800 < sim.address_list("blacklist", 4)[0].timeout <= 900
        assert len(sim.address_list("blacklist", 4)) == 1

        blocks = session.list_blocks()
        assert set(blocks) == {ADDR, V6_ADDR}
        assert blocks[ADDR].comment == 'tzsp-ips [1:2000003:4] "$ip" ; [x] next'
        assert 800 < blocks[ADDR].timeout_s <= 900 and blocks[ADDR].dynamic
        assert 500 < blocks[V6_ADDR].timeout_s <= 600

        assert session.remove_block(V6_ADDR) is True
        assert session.remove_block(V6_ADDR) is False
        assert sim.address_list("blacklist", 6) == []
        assert set(session.list_blocks()) == {ADDR}


def test_sim_parses_as_value_too(tmp_path, sims):
    sim = sims(users={"ips": "pw"})
    with sim_session(tmp_path, sim) as session:
        session.add_block(ADDR, 60, "a; b")
        from responder.routeros.commands import render_print_as_value
        from responder.routeros.replies import parse_address_list

        [entry] = parse_address_list(session.run(render_print_as_value("blacklist", 4)))
        assert entry.address == ADDR and entry.id.startswith("*") and entry.dynamic


def test_sim_uptime_drops_after_reboot_and_entries_are_gone(tmp_path, sims):
    now = [1_000_000.0]
    sim = sims(users={"ips": "pw"}, clock=lambda: now[0])
    session = sim_session(tmp_path, sim)
    session.add_block(ADDR, 300, "")
    now[0] += 3600
    before = session.uptime()
    assert before >= 3600
    sim.reboot()
    after = once_reachable(session.uptime)  # the reboot drops the connection; the next attempt reconnects
    assert after < before
    assert session.list_blocks() == {}
    session.close()


def test_sim_permission_error(tmp_path, sims):
    sim = sims(users=[{"name": "ips", "password": "pw", "policies": ("ssh", "read")}])
    with sim_session(tmp_path, sim, name="core1") as session:
        with pytest.raises(RouterCommandError) as caught:
            session.add_block(ADDR, 60, "")
    assert caught.value.kind == "permission"
    assert str(caught.value).startswith("router core1: not enough permissions")
    assert "ssh,read,write" in str(caught.value)


def test_sim_script_mode_runs_the_wiki_script(tmp_path, sims):
    sim = sims(users={"ips": "pw"})
    sim.add_script(
        "filter", ":global ip; /ip firewall address-list add list=blacklist address=$ip timeout=1d", owner="ips"
    )
    with sim_session(tmp_path, sim, mode="script", script="filter") as session:
        assert session.add_block(ADDR, 300, "") == "added"
        assert [e.address for e in sim.address_list("blacklist")] == ["203.0.113.9"]
        assert session.add_block(ADDR, 300, "") == "present"  # the script owns the entry and its timeout


def test_sim_unknown_and_changed_host_key(tmp_path, sims, other_host_key):
    sim = sims(users={"ips": "pw"})
    with pytest.raises(HostKeyRefused) as unknown:
        RouterSession(config(tmp_path, sim.port), password="pw").connect()
    assert unknown.value.reason == "unknown" and sim.fingerprint in str(unknown.value)
    known_hosts.record(
        str(tmp_path / "known_hosts"),
        known_hosts.host_name("127.0.0.1", sim.port),
        other_host_key.get_name(),
        other_host_key.asbytes(),
    )
    with pytest.raises(HostKeyRefused) as changed:
        RouterSession(config(tmp_path, sim.port), password="pw").connect()
    assert changed.value.reason == "changed" and sim.fingerprint in str(changed.value)
    assert "snort-bridge trust r1" in str(changed.value)
    assert sim.commands_log == []


def test_sim_hanging_router_times_out_connect_and_command(tmp_path, sims):
    sim = sims(users={"ips": "pw"})
    session = sim_session(tmp_path, sim, connect_timeout=0.5, command_timeout=0.5)
    sim.hang_exec = True
    started = time.monotonic()
    with pytest.raises(CommandTimeout):
        session.run("/system resource print")
    assert not session.connected
    sim.hang_exec, sim.hang = False, True
    with pytest.raises(RouterUnreachable):
        session.connect()
    assert time.monotonic() - started < 15
    sim.hang = False
    assert session.uptime() >= 0
    session.close()


def test_sim_reconnect_after_restart(tmp_path, sims):
    sim = sims(users={"ips": "pw"})
    port = sim.port
    session = sim_session(tmp_path, sim)
    session.add_block(ADDR, 300, "")
    sim.stop()
    with pytest.raises(RouterUnreachable):
        for _ in range(50):  # the client notices the drop on its next command at the latest
            session.run("/system resource print")
            time.sleep(0.02)
    sim.start("127.0.0.1", port)
    assert ADDR in once_reachable(session.list_blocks)  # the same simulated router: its state survived the restart
    session.close()


@pytest.mark.parametrize("source", ["file", "env", "ed25519", "rsa"])
def test_sim_credentials(tmp_path, sims, monkeypatch, rsa_user_key, source):
    overrides: dict = {"password": None}
    if source == "file":
        sim = sims(users={"ips": "file pw"})
        overrides["password_file"] = password_file(tmp_path, "file pw\n")
    elif source == "env":
        sim = sims(users={"ips": "env pw"})
        monkeypatch.setenv("SIM_PW", "env pw")
        overrides["password_env"] = "SIM_PW"
    else:
        key_path = tmp_path / f"id_{source}"
        key = write_ed25519(key_path) if source == "ed25519" else write_rsa(key_path, rsa_user_key)
        sim = sims(users=[{"name": "ips", "authorized_keys": [key]}])
        overrides["key_file"] = str(key_path)
    with sim_session(tmp_path, sim, **overrides) as session:
        assert session.add_block(ADDR, 60, source) == "added"
    assert sim.commands_log[0][0] == "ips"
