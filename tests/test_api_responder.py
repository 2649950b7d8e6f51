"""The API transport (responder/transport/api.py, responder/transport/tls.py) against routeros-sim over real TCP/TLS.

The same set as tests/test_responder_sim.py for SSH (three routers, down then up, reboot,
duplicates, permissions, hangs), plus certificates: a CA-verified router, a wrong CA, a pinned
fingerprint right and wrong, the pin file written by `snort-bridge trust`, and a router whose
api-ssl has no certificate.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time

import pytest
from responder_rig import LIST, Lab, wait_until, write_config

from bridge.cli import main as snort_bridge
from bridge.config import ConfigError
from bridge.config.load import parse_config
from responder.config import RouterConfig
from responder.errors import (
    AuthenticationFailed,
    CommandTimeout,
    HostKeyRefused,
    RouterCommandError,
    SecretRefused,
)
from responder.events import BlockRequest
from responder.responder import default_session_factory
from responder.routeros.duration import parse_duration
from responder.sim import SimRouter
from responder.sim.wire.api_server import make_certificate
from responder.transport import tls
from responder.transport.api import ApiSession

A = ipaddress.ip_address("203.0.113.7")
B = ipaddress.ip_address("2001:db8::66")
PASSWORD = "s3cret pass=word"


class ApiLab(Lab):
    """Simulated routers serving api-ssl with certificates from a test CA; password login."""

    def __init__(self, tmp_path, host_key, ca, *, tls_on=True):
        super().__init__(tmp_path)
        self.host_key, self.ca, self.tls = host_key, ca, tls_on
        self.password_file = tmp_path / "router.password"
        self.password_file.write_text(PASSWORD + "\n")
        os.chmod(self.password_file, 0o600)
        self.ca_file = tmp_path / "ca.pem"
        self.ca_file.write_bytes(ca.cert_pem)

    def add(self, name, *, policies=("api", "read", "write"), start=True, port=None, **sim_options):
        sim_options.setdefault("api_certificate", make_certificate(name, hosts=("127.0.0.1",), issuer=self.ca))
        sim = SimRouter(host_key=self.host_key, **sim_options)
        sim.add_user("ips", password=PASSWORD, policies=policies)
        self.sims[name] = sim
        self.ports[name] = sim.start_api("127.0.0.1", port or 0, tls=self.tls) if start else port
        return sim

    def router_table(self, name, port, **extra):
        table = dict(
            name=name,
            host="127.0.0.1",
            port=port,
            transport="api",
            tls=self.tls,
            user="ips",
            password_file=str(self.password_file),
            known_hosts=self.known_hosts,
            list=LIST,
            connect_timeout="3s",
            command_timeout="3s",
            reconcile_interval="60s",
        )
        if self.tls:
            table["ca_file"] = str(self.ca_file)
        table.update(extra)
        return {key: value for key, value in table.items() if value is not None}  # None: leave it out

    def cfg(self, name, **extra) -> RouterConfig:
        return (
            self.config().routers[list(self.ports).index(name)]
            if not extra
            else parse_config({"routers": [self.router_table(name, self.ports[name], **extra)]}).routers[0]
        )

    def adds(self, name):
        return self.sent(name, "/address-list/add")


@pytest.fixture
def lab(tmp_path, host_key, ca):
    lab = ApiLab(tmp_path, host_key, ca)
    yield lab
    lab.close()


def router_status(responder, name, address):
    state = responder.states(address)[name]
    return state.status if state else None


def block(address, duration=300.0, reason="ET SCAN test", sid="1:2001", *, age=0.0):
    return BlockRequest(address, duration, reason, sid, requested_at=time.time() - age)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the responder over the API -----------------------------------------------------------------


def test_one_block_lands_on_three_api_routers_and_unblock_removes_it(lab):
    for name in ("r1", "r2", "r3"):
        lab.add(name)
    responder = lab.responder()
    assert {type(w._factory(w.cfg)).__name__ for w in responder._workers.values()} == {"ApiSession"}
    responder.block(block(A))
    responder.block(block(B, 600))
    assert responder.wait_applied(A, timeout=15) and responder.wait_applied(B, timeout=15)
    for name in ("r1", "r2", "r3"):
        entry = lab.entries(name)[str(A)]
        assert 290 <= entry.timeout <= 300 and entry.dynamic
        assert entry.comment == "tzsp-ips [1:2001] ET SCAN test"
        assert 590 <= lab.entries(name, 6)[str(B)].timeout <= 600
        assert len(lab.adds(name)) == 2
    assert responder.unblock(A) is True
    assert responder.wait_removed(A, timeout=15)
    assert all(str(A) not in lab.entries(name) for name in ("r1", "r2", "r3"))


def test_plain_api_works_too(tmp_path, host_key, ca):
    lab = ApiLab(tmp_path, host_key, ca, tls_on=False)
    try:
        lab.add("r1")
        assert lab.config().routers[0].tls is False
        responder = lab.responder()
        responder.block(block(A))
        assert responder.wait_applied(A, timeout=15)
        assert str(A) in lab.entries("r1")
    finally:
        lab.close()


def test_duplicates_cost_nothing_and_a_longer_block_refreshes(lab):
    lab.add("r1")
    responder = lab.responder()
    assert wait_until(lambda: responder.status()[0].last_seen is not None)
    responder.block(block(A, 300))
    assert responder.wait_applied(A, timeout=15)
    assert responder.block(block(A, 300)).kind == "unchanged"
    time.sleep(0.3)
    assert len(lab.adds("r1")) == 1
    assert responder.block(block(A, 3600)).kind == "extended"
    assert wait_until(lambda: router_status(responder, "r1", A) == "applied" and lab.sent("r1", "/address-list/set"))
    assert len(lab.adds("r1")) == 2
    assert lab.entries("r1")[str(A)].timeout > 3000


def test_session_refresh_rule_matches_ssh(lab):
    sim = lab.add("r1")
    sim.add_user("admin", password="x", policies=("ssh", "read", "write"))
    sim.execute("admin", f"/ip firewall address-list add list={LIST} address=198.51.100.1")  # static, by hand
    sim.execute("admin", f"/ip firewall address-list add list={LIST} address=198.51.100.2 timeout=1h")
    with ApiSession(lab.cfg("r1")) as session:
        assert session.add_block(A, 300, "x") == "added"
        assert session.add_block(A, 300, "x") == "present"  # same time: nothing to re-arm
        assert session.add_block(A, 900, "x") == "refreshed"
        static, longer = ipaddress.ip_address("198.51.100.1"), ipaddress.ip_address("198.51.100.2")
        assert session.add_block(static, 300, "x") == "present"  # never a timeout on a static entry
        assert session.add_block(longer, 300, "x") == "present"  # never shorten a longer block
        listed = session.list_blocks()
    assert listed[static].timeout_s is None and not listed[static].dynamic
    assert 3500 < listed[longer].timeout_s <= 3600 and 850 < listed[A].timeout_s <= 900
    assert lab.entries("r1")["198.51.100.1"].timeout is None


def test_bulk_blocks_are_pipelined_and_judged_one_by_one(lab):
    lab.add("r1")
    addresses = [ipaddress.ip_address(f"198.51.{i // 250}.{i % 250 + 1}") for i in range(300)]
    with ApiSession(lab.cfg("r1")) as session:
        session.add_block(addresses[5], 60, "earlier")
        outcomes = session.add_blocks([(a, 600, "bulk") for a in addresses] + [(addresses[7], 30, "again")])
        assert outcomes[5] == "refreshed" and outcomes[-1] == "present"
        assert outcomes[:5] == ["added"] * 5 and outcomes.count("added") == 299
        assert len(session.list_blocks()) == 300
        with pytest.raises(TypeError):  # nothing is sent for a batch holding a non-address
            session.add_blocks([(addresses[0], 60, "x"), ("198.51.100.77", 60, "x")])
    assert len(lab.adds("r1")) == 302


def test_permission_error_names_the_router_and_the_api_policy(lab):
    lab.add("good")
    lab.add("readonly", policies=("api", "read"))
    responder = lab.responder()
    responder.block(block(A))
    assert wait_until(
        lambda: router_status(responder, "good", A) == "applied" and router_status(responder, "readonly", A) == "failed"
    )
    error = responder.states(A)["readonly"].last_error
    assert "router readonly" in error and "not enough permissions" in error and "api,read,write" in error
    with ApiSession(lab.cfg("readonly")) as session:
        [outcome] = session.add_blocks([(A, 60, "x")])
        assert isinstance(outcome, RouterCommandError) and outcome.kind == "permission"
        with pytest.raises(RouterCommandError) as caught:
            session.add_block(A, 60, "x")
        assert caught.value.kind == "permission"
        assert session.list_blocks() == {}  # reading is allowed


def test_router_down_then_up_receives_its_pending_blocks_with_the_remaining_time(lab):
    lab.add("up")
    port = closed_port()
    late = lab.add("late", start=False, port=port)
    responder = lab.responder()
    responder.block(block(A, 300, age=100))
    assert wait_until(lambda: router_status(responder, "up", A) == "applied")
    assert wait_until(lambda: "cannot connect" in (responder.status()[1].last_error or ""))
    assert router_status(responder, "late", A) == "pending"
    late.start_api("127.0.0.1", port, tls=True)
    assert wait_until(lambda: router_status(responder, "late", A) == "applied", timeout=20)
    [add] = lab.adds("late")
    assert 150 < parse_duration(add.split("=timeout=")[1].split()[0]) <= 200
    assert 150 < lab.entries("late")[str(A)].timeout <= 200


def test_after_a_reboot_unexpired_blocks_return_with_their_remaining_time(lab):
    sim = lab.add("r1")
    responder = lab.responder(lab.config(reconcile_interval="1s"))
    responder.block(block(A, 300, age=50))
    responder.block(block(B, 2, sid="1:3"))
    assert responder.wait_applied(A, timeout=15)
    time.sleep(2.1)
    sim.reboot()
    assert str(A) not in lab.entries("r1")
    assert wait_until(lambda: str(A) in lab.entries("r1"), timeout=20)
    assert 200 < lab.entries("r1")[str(A)].timeout <= 248
    assert str(B) not in lab.entries("r1", 6)
    assert len(lab.adds("r1")) == 3


@pytest.mark.parametrize("flavour", ["v6", "v7"])
def test_long_blocks_become_static_over_the_api_and_end_when_due(lab, flavour):
    """Beyond the flavour's timeout limit (v6: learnt from the router's !trap), a static entry;
    a dynamic entry there before is replaced; after a reboot it is still there; at its end removed."""
    from test_static_entries import DAY, LIMITS, JumpClock

    clock = JumpClock()
    sim = lab.add("r1", flavour=flavour, clock=clock)
    responder = lab.responder(lab.config(reconcile_interval="1s"), clock=clock)
    long_block = LIMITS[flavour] + 10 * DAY
    responder.block(BlockRequest(A, 3600, "short first", "1:2", requested_at=clock()))
    assert responder.wait_applied(A, timeout=15) and lab.entries("r1")[str(A)].dynamic
    responder.block(BlockRequest(A, long_block, "ET SCAN test", "1:2", requested_at=clock()))
    responder.block(BlockRequest(B, long_block, "ET SCAN test", "1:2", requested_at=clock()))
    assert wait_until(lambda: all(responder.states(x)["r1"].static for x in (A, B)), timeout=20)
    assert lab.entries("r1")[str(A)].timeout is None and lab.entries("r1", 6)[str(B)].timeout is None
    clock.jump(5 * DAY)
    sim.reboot()
    assert wait_until(lambda: responder.ledger.router_meta("r1").reboots >= 1, timeout=20)
    assert wait_until(lambda: responder.states(A)["r1"].status == "applied", timeout=20)
    assert str(A) in lab.entries("r1") and responder.states(A)["r1"].static
    clock.jump(long_block)
    assert wait_until(lambda: lab.entries("r1") == {} and lab.entries("r1", 6) == {}, timeout=20)
    assert wait_until(lambda: responder.states(A)["r1"].status == "expired", timeout=10)


def test_a_router_that_accepts_tcp_and_never_answers_does_not_slow_the_others(lab):
    lab.add("r1")
    silent = socket.create_server(("127.0.0.1", 0))
    held, stop = [], threading.Event()

    def accept():
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        hang_timeout = 4.0
        mute = lab.router_table("mute", silent.getsockname()[1], connect_timeout=f"{hang_timeout:.0f}s")
        responder = lab.responder(lab.config(extra_routers=[mute]))
        started = time.monotonic()
        responder.block(block(A))
        assert wait_until(lambda: router_status(responder, "r1", A) == "applied", timeout=hang_timeout - 1)
        assert time.monotonic() - started < hang_timeout  # not behind the silent router's timeout
        assert router_status(responder, "mute", A) == "pending"
        assert wait_until(lambda: "timed out" in (responder.status()[1].last_error or ""), timeout=hang_timeout + 5)
        assert responder.stop(timeout=hang_timeout + 2)
    finally:
        stop.set()
        thread.join(2)
        silent.close()
        for sock in held:
            sock.close()


def test_a_router_that_logs_in_but_never_answers_is_cut_off_and_recovers(lab):
    stuck = lab.add("stuck")
    stuck.hang_exec = True
    session = ApiSession(lab.cfg("stuck", command_timeout="1s"))
    started = time.monotonic()
    with pytest.raises(CommandTimeout, match="command_timeout"):
        session.uptime()
    assert time.monotonic() - started < 5 and not session.connected
    stuck.hang_exec = False
    assert session.uptime() >= 0  # reconnected
    session.close()


def test_a_reboot_is_seen_as_a_closed_session_without_a_command(lab):
    sim = lab.add("r1")
    with ApiSession(lab.cfg("r1")) as session:
        session.connect()
        assert session.connected
        sim.reboot()
        assert wait_until(lambda: not session.connected, timeout=5)


# -- login and configuration -------------------------------------------------------------------


def test_wrong_password_and_missing_api_policy_are_authentication_failures(lab, tmp_path):
    lab.add("r1")
    lab.add("sshonly", policies=("ssh", "read", "write"))
    with pytest.raises(AuthenticationFailed, match="api policy"):
        ApiSession(lab.cfg("sshonly")).connect()
    with pytest.raises(AuthenticationFailed, match="refused the login"):
        ApiSession(lab.cfg("r1"), password="wrong").connect()
    with pytest.raises(SecretRefused, match="password"):
        ApiSession(RouterConfig(name="x", host="127.0.0.1", port=lab.ports["r1"], transport="api")).connect()
    assert lab.sims["r1"].commands_log == []


def test_legacy_challenge_login_and_v6_flavour(lab):
    lab.add("old", flavour="v6", api_legacy_login=True)
    with ApiSession(lab.cfg("old")) as session:
        assert session.add_block(A, 60, "x") == "added"
        assert session.add_block(B, 60, "x") == "added"
        assert set(session.list_blocks()) == {A, B}
        assert session.remove_block(B) is True and session.remove_block(B) is False


def test_loader_defaults_and_refusals_for_api_routers(tmp_path):
    base = dict(name="r", host="192.0.2.1", transport="api", password_env="X")
    assert parse_config({"routers": [base]}).routers[0].port == 8728
    assert parse_config({"routers": [dict(base, tls=True)]}).routers[0].port == 8729
    assert parse_config({"routers": [dict(base, tls=True, port=9000)]}).routers[0].port == 9000
    with pytest.raises(ConfigError, match="password_file or password_env"):
        parse_config({"routers": [dict(name="r", host="192.0.2.1", transport="api", key_file=str(tmp_path / "k"))]})
    with pytest.raises(ConfigError, match="script"):
        parse_config({"routers": [dict(base, mode="script")]})
    with pytest.raises(ValueError, match="script"):
        ApiSession(RouterConfig(name="r", host="h", transport="api", mode="script"))
    assert type(default_session_factory(RouterConfig(name="r", host="h", transport="api"))) is ApiSession


# -- certificates ------------------------------------------------------------------------------


def test_a_certificate_from_another_ca_is_refused_before_login(lab, host_key):
    other_ca = make_certificate("someone else", is_ca=True)
    lab.add("r1", api_certificate=make_certificate("r1", hosts=("127.0.0.1",), issuer=other_ca))
    with pytest.raises(HostKeyRefused, match="not trusted"):
        ApiSession(lab.cfg("r1")).connect()
    # right CA, wrong name (the certificate is for another host)
    lab.add("r2", api_certificate=make_certificate("r2", hosts=("192.0.2.55",), issuer=lab.ca))
    with pytest.raises(HostKeyRefused, match="not trusted"):
        ApiSession(lab.cfg("r2")).connect()
    assert lab.sims["r1"].commands_log == [] and lab.sims["r2"].commands_log == []


def test_a_pinned_fingerprint_is_checked_right_or_wrong(lab):
    sim = lab.add("r1", api_certificate=make_certificate("self-signed", hosts=("10.9.9.9",)))
    right = ":".join(sim.api_certificate.sha256[i : i + 2] for i in range(0, 64, 2))
    with ApiSession(lab.cfg("r1", ca_file=None, fingerprint=f"sha256:{right}")) as session:
        assert session.uptime() >= 0  # self-signed, names another host: the pin is what counts
    wrong = "ab" * 32
    with pytest.raises(HostKeyRefused, match="DIFFERS") as caught:
        ApiSession(lab.cfg("r1", ca_file=None, fingerprint=wrong)).connect()
    assert caught.value.fingerprint == tls.show_fingerprint(bytes.fromhex(sim.api_certificate.sha256))
    # a CA and a pin together: both must hold
    with pytest.raises(HostKeyRefused):
        ApiSession(lab.cfg("r1", fingerprint=f"sha256:{right}")).connect()
    assert [c for _, c in sim.commands_log] == ["/system/resource/print =.proplist=uptime .tag=0"]


def test_trust_pins_the_certificate_and_a_replaced_one_is_refused(lab, tmp_path, capsys):
    sim = lab.add("r1", api_certificate=make_certificate("r1", hosts=("127.0.0.1",)))
    config = write_config(tmp_path, [lab.router_table("r1", lab.ports["r1"], ca_file=None)])
    # nothing configured or pinned: refused with what to do
    assert snort_bridge(["block", str(A), "--config", config]) == 1
    assert "snort-bridge trust r1" in capsys.readouterr().out
    assert snort_bridge(["trust", "r1", "--config", config, "--yes"]) == 0
    out = capsys.readouterr().out
    pretty = tls.show_fingerprint(bytes.fromhex(sim.api_certificate.sha256))
    assert pretty in out and "recorded in" in out and "CN=r1" in out
    assert snort_bridge(["trust", "r1", "--config", config]) == 0
    assert "already pinned" in capsys.readouterr().out
    assert snort_bridge(["block", str(A), "--config", config]) == 0
    assert str(A) in lab.entries("r1")
    capsys.readouterr()
    # the router comes back with another certificate
    port = lab.ports["r1"]
    sim.stop()
    impostor = lab.add("impostor", start=False, api_certificate=make_certificate("r1", hosts=("127.0.0.1",)))
    impostor.start_api("127.0.0.1", port, tls=True)
    assert snort_bridge(["block", str(B), "--config", config]) == 1
    assert "DIFFERS" in capsys.readouterr().out
    assert impostor.commands_log == []
    from bridge.cli import build_parser
    from bridge.cli.trust import cmd_trust

    assert cmd_trust(build_parser().parse_args(["trust", "r1", "--config", config]), ask=lambda prompt: "n") == 1
    out = capsys.readouterr().out
    assert "DIFFERENT certificate" in out and "not recorded" in out
    assert tls.pin_verdict(lab.cfg("r1", ca_file=None), bytes.fromhex(impostor.api_certificate.sha256)) == "changed"


def test_a_router_without_a_certificate_gets_instructions(lab, tmp_path, capsys):
    sim = lab.add("bare", api_certificate=None)
    with pytest.raises(HostKeyRefused, match="no certificate") as caught:
        ApiSession(lab.cfg("bare")).connect()
    assert "/certificate add" in str(caught.value) and "api-ssl certificate=" in str(caught.value)
    config = write_config(tmp_path, [lab.router_table("bare", lab.ports["bare"])])
    assert snort_bridge(["trust", "bare", "--config", config, "--yes"]) == 2
    assert "/certificate sign" in capsys.readouterr().err
    assert sim.commands_log == []


def test_provision_prints_the_certificate_commands_for_api_routers(lab, tmp_path, capsys):
    config = write_config(tmp_path, [lab.router_table("r1", 8729)])
    assert snort_bridge(["provision", "r1", "--config", config, "--this-host", "192.0.2.9"]) == 0
    script = capsys.readouterr().out
    assert "policy=api,read,write" in script and "ssh-keys" not in script
    assert '/certificate add name=tzsp-ips-api common-name="127.0.0.1" subject-alt-name="IP:127.0.0.1"' in script
    assert "/ip service set api-ssl certificate=tzsp-ips-api address=192.0.2.9/32" in script
