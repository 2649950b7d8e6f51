"""routeros-sim's RouterOS API server, spoken to over real TCP/TLS on loopback with raw sentences."""

from __future__ import annotations

import hashlib
import socket
import ssl
import subprocess
import time

import paramiko
import pytest
from conftest import console_script

from responder.sim import SimRouter
from responder.sim.wire.api_protocol import SentenceDecoder, encode_sentence, parse_reply
from responder.sim.wire.api_server import challenge_response


@pytest.fixture(scope="module")
def host_key():
    return paramiko.RSAKey.generate(2048)


class RawApi:
    """A minimal API client: send sentences, read reply sentences (text words)."""

    def __init__(self, port: int, *, context: ssl.SSLContext = None):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock = context.wrap_socket(sock, server_hostname="127.0.0.1") if context else sock
        self.decoder = SentenceDecoder()
        self.queue = []

    def send(self, *sentences):
        self.sock.sendall(b"".join(encode_sentence(list(s)) for s in sentences))

    def sentence(self):
        while not self.queue:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("closed")
            self.queue.extend(self.decoder.feed(data))
        return [w.decode() for w in self.queue.pop(0)]

    def until_done(self):
        """Reply sentences up to and including !done (or a !fatal)."""
        out = []
        while True:
            kind, attributes, tag = parse_reply(self.sentence())
            out.append((kind, attributes, tag))
            if kind in ("!done", "!fatal"):
                return out

    def call(self, *words):
        self.send(words)
        return self.until_done()

    def login(self, name="ips", password="pw"):
        return self.call("/login", f"=name={name}", f"=password={password}")

    def closed(self) -> bool:
        try:
            self.sock.settimeout(2)
            return self.sock.recv(1) == b""
        except (ConnectionResetError, ssl.SSLError):
            return True

    def close(self):
        self.sock.close()


@pytest.fixture
def sim(host_key):
    router = SimRouter(host_key=host_key)
    router.add_user("ips", password="pw", policies=("api", "read", "write"))
    yield router
    router.stop()


@pytest.fixture
def api(sim):
    client = RawApi(sim.start_api())
    yield client
    client.close()


def test_login_then_add_print_set_remove_with_the_same_state_as_ssh(sim, api):
    assert api.login() == [("!done", {}, None)]
    assert api.call(
        "/ip/firewall/address-list/add", "=list=bl", "=address=203.0.113.7", "=timeout=5m", "=comment=a=b c"
    ) == [("!done", {"ret": "*1"}, None)]
    [(kind, row, _), done] = api.call("/ip/firewall/address-list/print", "?list=bl")
    assert kind == "!re" and done[0] == "!done"
    assert row[".id"] == "*1" and row["address"] == "203.0.113.7" and row["comment"] == "a=b c"
    assert row["dynamic"] == "true" and row["disabled"] == "false" and row["timeout"] in ("5m", "4m59s")
    # the SSH side sees the same entry
    sim.add_user("admin", password="x", policies=("ssh", "read", "write"))
    assert "203.0.113.7" in sim.execute("admin", "/ip firewall address-list print terse").output
    sim.execute("admin", "/ip firewall address-list add list=bl address=198.51.100.1")
    assert api.call("/ip/firewall/address-list/set", "=.id=*1", "=timeout=1h") == [("!done", {}, None)]
    rows = api.call("/ip/firewall/address-list/getall", "=.proplist=address,timeout")
    assert [r[1] for r in rows[:-1]] == [{"address": "203.0.113.7", "timeout": "1h"}, {"address": "198.51.100.1"}]
    assert api.call("/ip/firewall/address-list/remove", "=.id=*1,*2") == [("!done", {}, None)]
    assert sim.address_list("bl") == []


def test_trap_is_followed_by_done_and_tags_are_echoed_on_every_reply(sim, api):
    api.login()
    api.send(
        ["/ip/firewall/address-list/add", "=list=bl", "=address=192.0.2.1", ".tag=a"],
        ["/ip/firewall/address-list/add", "=list=bl", "=address=192.0.2.1", ".tag=b"],
        ["/ip/firewall/address-list/print", ".tag=c"],
    )
    replies = api.until_done() + api.until_done() + api.until_done()
    assert replies == [
        ("!done", {"ret": "*1"}, "a"),
        ("!trap", {"message": "failure: already have such entry"}, "b"),
        ("!done", {}, "b"),
        ("!re", replies[3][1], "c"),
        ("!done", {}, "c"),
    ]
    assert api.call("/ip/firewall/address-list/remove", "=.id=*9")[0][1] == {"message": "no such item"}
    assert api.call("/ip/firewall/address-list/add", "=list=bl", "=address=192.0.2.2", "=bogus=1")[0][1] == {
        "message": "unknown parameter bogus"
    }
    assert api.call("/ip/firewall/address-list/add", "=list=bl", "=address=192.0.2.3", "=timeout=99999w")[0][1][
        "message"
    ].startswith("value of timeout is out of range")
    assert api.call("/no/such/menu/print")[0][1] == {"message": "no such command prefix"}
    assert api.call("/ip/firewall/address-list/frobnicate")[0][1] == {"message": "no such command"}
    assert api.call("/cancel", "=tag=a") == [("!done", {}, None)]  # nothing runs in the background here


def test_empty_print_gives_empty_then_done_in_v7_and_only_done_in_v6(host_key):
    for flavour, expected in (("v7", ["!empty", "!done"]), ("v6", ["!done"])):
        router = SimRouter(flavour=flavour, host_key=host_key)
        router.add_user("ips", password="pw", policies=("api", "read"))
        client = RawApi(router.start_api())
        try:
            client.login()
            assert [kind for kind, _, _ in client.call("/ipv6/firewall/address-list/print", "?list=none")] == expected
            [(_, row, _), _] = client.call("/system/resource/print", "=.proplist=uptime,board-name")
            assert set(row) == {"uptime", "board-name"}
        finally:
            client.close()
            router.stop()


def test_queries_filter_print(sim, api):
    api.login()
    for address in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        api.call("/ip/firewall/address-list/add", "=list=bl", f"=address={address}")
    api.call("/ip/firewall/address-list/add", "=list=other", "=address=192.0.2.1", "=timeout=1m")
    rows = api.call("/ip/firewall/address-list/print", "?address=192.0.2.1", "?address=192.0.2.3", "?#|", "?list=bl")
    assert [(r[1]["list"], r[1]["address"]) for r in rows[:-1]] == [("bl", "192.0.2.1"), ("bl", "192.0.2.3")]
    assert [r[1]["list"] for r in api.call("/ip/firewall/address-list/print", "?timeout")[:-1]] == ["other"]
    assert api.call("/ip/firewall/address-list/print", "?#|")[0][0] == "!trap"  # malformed: refused, session kept
    assert api.call("/system/identity/print")[0][1] == {"name": "MikroTik"}


def test_before_login_anything_else_is_fatal(sim, api):
    assert api.call("/ip/firewall/address-list/print") == [("!fatal", {"message": "not logged in"}, None)]
    assert api.closed()
    assert sim.commands_log == []


def test_quit_ends_the_session(sim, api):
    api.login()
    assert api.call("/quit") == [("!fatal", {"message": "session terminated on request"}, None)]
    assert api.closed()


@pytest.mark.parametrize(
    "name,password,policies,address",
    [
        ("ips", "wrong", ("api", "read", "write"), None),
        ("nobody", "pw", ("api", "read", "write"), None),
        ("ips", "pw", ("ssh", "read", "write"), None),  # no api policy
        ("ips", "pw", ("api", "read", "write"), "192.0.2.0/24"),  # not from this address
    ],
)
def test_login_refusals(host_key, name, password, policies, address):
    router = SimRouter(host_key=host_key)
    router.add_user("ips", password="pw", policies=policies, address=address)
    client = RawApi(router.start_api())
    try:
        assert client.login(name, password) == [
            ("!trap", {"message": "invalid user name or password (6)"}, None),
            ("!done", {}, None),
        ]
        assert client.call("/system/resource/print")[0][0] == "!fatal"  # still not logged in
    finally:
        client.close()
        router.stop()


def test_read_only_user_gets_a_permission_trap_and_keeps_the_session(host_key):
    router = SimRouter(host_key=host_key)
    router.add_user("ips", password="pw", policies=("api", "read"))
    client = RawApi(router.start_api())
    try:
        client.login()
        assert client.call("/ip/firewall/address-list/add", "=list=bl", "=address=192.0.2.1") == [
            ("!trap", {"message": "not enough permissions (9)"}, None),
            ("!done", {}, None),
        ]
        assert client.call("/ip/firewall/address-list/print")[-1][0] == "!done"
        assert router.address_list("bl") == []
    finally:
        client.close()
        router.stop()


def test_legacy_challenge_login(host_key):
    router = SimRouter(host_key=host_key, api_legacy_login=True)
    router.add_user("ips", password="pw", policies=("api", "read"))
    client = RawApi(router.start_api())
    try:
        [(kind, attributes, _)] = client.call("/login")
        challenge = bytes.fromhex(attributes["ret"])
        expected = "00" + hashlib.md5(b"\x00pw" + challenge).hexdigest()  # ROUTEROS.md section 5
        assert challenge_response("pw", challenge) == expected
        assert client.call("/login", "=name=ips", f"=response={expected}") == [("!done", {}, None)]
        assert client.call("/system/identity/print")[-1][0] == "!done"
    finally:
        client.close()
        router.stop()


def test_tls_port_serves_the_same_router_with_its_certificate(sim):
    port = sim.start_api(tls=True)
    context = ssl.create_default_context(cadata=sim.api_certificate.cert_pem.decode())
    client = RawApi(port, context=context)  # verified: chain (self-signed) and IP subjectAltName
    try:
        client.login()
        client.call("/ip/firewall/address-list/add", "=list=bl", "=address=192.0.2.9")
        assert [e.address for e in sim.address_list("bl")] == ["192.0.2.9"]
        der = client.sock.getpeercert(binary_form=True)
        assert hashlib.sha256(der).hexdigest() == sim.api_certificate.sha256
    finally:
        client.close()


def test_tls_without_a_certificate_offers_only_anonymous_ciphers(host_key):
    router = SimRouter(host_key=host_key, api_certificate=None)
    port = router.start_api(tls=True)
    try:
        plain = ssl.create_default_context()
        plain.check_hostname, plain.verify_mode = False, ssl.CERT_NONE
        with pytest.raises(ssl.SSLError):
            RawApi(port, context=plain)
    finally:
        router.stop()


def test_reboot_and_stop_drop_api_sessions(sim, api):
    api.login()
    sim.reboot()
    assert api.closed()
    again = RawApi(sim.api_port())
    assert again.login() == [("!done", {}, None)]
    sim.stop()
    assert again.closed()
    again.close()


def test_hang_exec_answers_login_but_no_command(sim, api):
    sim.hang_exec = True
    api.login()
    api.send(["/system/resource/print"])
    api.sock.settimeout(0.5)
    with pytest.raises(socket.timeout):
        api.sentence()


def test_routeros_sim_command_serves_the_api_and_keeps_its_certificate(tmp_path):
    (tmp_path / "pw").write_text("pw\n")
    (tmp_path / "pw").chmod(0o600)
    args = console_script("routeros-sim") + [
        "--port",
        "0",
        "--api-port",
        "0",
        "--api-ssl-port",
        "0",
        "--host-key",
        str(tmp_path / "hk"),
        "--password-file",
        str(tmp_path / "pw"),
        "--user",
        "ips",
        "--policy",
        "api,read,write",
    ]
    fingerprints = []
    for _ in range(2):
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            lines = []
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (lines and lines[-1].startswith("Ctrl-C")):
                lines.append(proc.stdout.readline().strip())
            api_line = next(line for line in lines if line.startswith("RouterOS API on"))
            port = int(api_line.split()[3].rsplit(":", 1)[1])
            client = RawApi(port)
            assert client.login() == [("!done", {}, None)]
            client.close()
            fingerprints.append(next(line for line in lines if line.startswith("api-ssl certificate:")))
        finally:
            proc.terminate()
            proc.wait(10)
    assert fingerprints[0] == fingerprints[1]  # the certificate is reused from beside the host key
    assert (tmp_path / "api_ssl.pem").stat().st_mode & 0o077 == 0
