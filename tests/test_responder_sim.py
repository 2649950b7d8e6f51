"""The responder against simulated RouterOS routers over real SSH on loopback (issue 4 item 7).

Every wait is bounded; "does not slow the others" is checked against a hanging router's own
timeout, not against a stopwatch.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time

import pytest
from responder_rig import LIST, wait_until

from responder.events import BlockRequest
from responder.ledger import Ledger
from responder.responder import TargetRefused
from responder.routeros.duration import parse_duration
from responder.sim import SimRouter
from responder.transport import known_hosts

A = ipaddress.ip_address("203.0.113.7")
B = ipaddress.ip_address("2001:db8::66")


def router_status(responder, name, address):
    state = responder.states(address)[name]
    return state.status if state else None


def block(address, duration=300.0, reason="ET SCAN test", sid="1:2001", *, age=0.0):
    return BlockRequest(address, duration, reason, sid, requested_at=time.time() - age)


def test_one_block_lands_on_three_routers_at_once(lab):
    for name in ("r1", "r2", "r3"):
        lab.add(name)
    responder = lab.responder()
    responder.block(block(A))
    responder.block(block(B, 600))
    assert responder.wait_applied(A, timeout=15) and responder.wait_applied(B, timeout=15)
    for name in ("r1", "r2", "r3"):
        entry = lab.entries(name)[str(A)]
        assert 290 <= entry.timeout <= 300 and entry.dynamic
        assert entry.comment == "tzsp-ips [1:2001] ET SCAN test"
        assert 590 <= lab.entries(name, 6)[str(B)].timeout <= 600
        assert len(lab.adds(name)) == 2
    # and unblock takes it off everywhere
    assert responder.unblock(A) is True
    assert responder.wait_removed(A, timeout=15)
    assert all(str(A) not in lab.entries(name) for name in ("r1", "r2", "r3"))


def test_refused_targets_never_reach_a_router(lab):
    lab.add("r1")
    responder = lab.responder()
    assert wait_until(lambda: responder.status()[0].last_seen is not None)
    for bad in ("127.0.0.1", "::1", "0.0.0.0", "224.0.0.251", "ff02::1", "255.255.255.255", "::ffff:127.0.0.2"):
        with pytest.raises(TargetRefused):
            responder.block(block(ipaddress.ip_address(bad)))
    with pytest.raises(TypeError):  # text is not an address: refused when the request is made
        responder.block(block("203.0.113.7"))
    for text in ("203.0.113.7 comment=x", "example.com", "203.0.113.0/24", ""):
        with pytest.raises(TargetRefused):
            responder.unblock(text)
    time.sleep(0.3)  # a few worker polls
    assert lab.adds("r1") == [] and lab.sent("r1", "remove") == []
    assert responder.ledger.blocks(now=0, include_inactive=True) == []


def test_duplicates_cost_nothing_and_a_longer_block_refreshes(lab):
    lab.add("r1")
    responder = lab.responder()
    assert wait_until(lambda: responder.status()[0].last_seen is not None)
    responder.block(block(A, 300))
    assert responder.wait_applied(A, timeout=15)
    assert responder.block(block(A, 300)).kind == "unchanged"
    time.sleep(0.3)
    assert len(lab.adds("r1")) == 1
    # a longer block re-arms the timeout: the router says "already have such entry", we set it
    assert responder.block(block(A, 3600)).kind == "extended"
    assert wait_until(lambda: router_status(responder, "r1", A) == "applied" and lab.sent("r1", " set "))
    assert len(lab.adds("r1")) == 2
    assert lab.entries("r1")[str(A)].timeout > 3000


def test_entry_already_on_the_router_is_confirmed_not_resent(lab):
    sim = lab.add("r1")
    config = lab.config()
    # An earlier run died after the router took the add and before the ledger recorded it.
    ledger = Ledger.in_state_dir(config.state_dir)
    ledger.record_block(block(A, 300), ["r1"], now=time.time())
    ledger.close()
    sim.add_user("admin", password="secret")
    sim.execute("admin", f"/ip firewall address-list add list={LIST} address={A} timeout=5m")
    assert str(A) in lab.entries("r1")
    responder = lab.responder(config)
    assert responder.wait_applied(A, timeout=15)
    assert lab.adds("r1") == [] and len(lab.sent("r1", "print")) >= 1


def test_permission_error_names_the_router_and_spares_the_others(lab):
    lab.add("good")
    lab.add("readonly", policies=("ssh", "read"))
    responder = lab.responder()
    responder.block(block(A))
    assert wait_until(
        lambda: router_status(responder, "good", A) == "applied" and router_status(responder, "readonly", A) == "failed"
    )
    state = responder.states(A)["readonly"]
    assert "router readonly" in state.last_error and "permission" in state.last_error
    status = {s.name: s for s in responder.status()}
    assert "router readonly" in status["readonly"].last_error and status["readonly"].pending == 1
    assert status["good"].pending == 0


def test_router_down_then_up_receives_its_pending_blocks_with_the_remaining_time(lab):
    lab.add("up")
    port = _closed_port()
    late = lab.add("late", start=False, port=port)
    responder = lab.responder()
    responder.block(block(A, 300, age=100))  # decided 100 s ago: 200 s remain
    assert wait_until(lambda: router_status(responder, "up", A) == "applied")
    assert wait_until(lambda: (responder.status()[1].last_error or "").find("cannot connect") >= 0)
    assert router_status(responder, "late", A) == "pending"
    late.start("127.0.0.1", port)
    assert wait_until(lambda: router_status(responder, "late", A) == "applied", timeout=20)
    [add] = lab.adds("late")
    assert 150 < parse_duration(add.split("timeout=")[1].split()[0]) <= 200
    assert 150 < lab.entries("late")[str(A)].timeout <= 200


def test_a_router_that_accepts_tcp_and_never_answers_does_not_slow_the_others(lab):
    for name in ("r1", "r2"):
        lab.add(name)
    silent = socket.create_server(("127.0.0.1", 0))
    held = []
    stop = threading.Event()

    def accept():
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])  # accept, then say nothing at all
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        hang_timeout = 5.0
        hanging = lab.router_table("mute", silent.getsockname()[1], connect_timeout=f"{hang_timeout:.0f}s")
        responder = lab.responder(lab.config(extra_routers=[hanging]))
        started = time.monotonic()
        responder.block(block(A))
        assert wait_until(
            lambda: all(router_status(responder, n, A) == "applied" for n in ("r1", "r2")), timeout=hang_timeout - 1
        )
        assert time.monotonic() - started < hang_timeout  # not behind the silent router's timeout
        assert router_status(responder, "mute", A) == "pending"
        assert wait_until(lambda: "timed out" in (responder.status()[2].last_error or ""), timeout=hang_timeout + 5)
        stop_started = time.monotonic()
        assert responder.stop(timeout=hang_timeout + 2)
        assert time.monotonic() - stop_started < hang_timeout + 2
    finally:
        stop.set()
        thread.join(2)
        silent.close()
        for sock in held:
            sock.close()


def test_a_router_that_logs_in_but_never_answers_a_command_is_cut_off_in_time(lab):
    lab.add("r1")
    stuck = lab.add("stuck")
    stuck.hang_exec = True
    responder = lab.responder(lab.config(command_timeout="2s"))
    responder.block(block(A))
    assert wait_until(lambda: router_status(responder, "r1", A) == "applied", timeout=10)
    assert wait_until(lambda: "stuck" in (responder.status()[1].last_error or ""), timeout=10)
    assert router_status(responder, "stuck", A) == "pending"
    stuck.hang_exec = False  # it recovers: the block follows
    assert wait_until(lambda: router_status(responder, "stuck", A) == "applied", timeout=20)


def test_changed_host_key_is_refused_until_trusted(lab):
    sim = lab.add("r1")
    other = SimRouter()  # a different host key recorded for this address: a man in the middle, or a re-key
    known_hosts.record(
        lab.known_hosts,
        known_hosts.host_name("127.0.0.1", lab.ports["r1"]),
        other.host_key.get_name(),
        other.host_key.asbytes(),
    )
    responder = lab.responder()
    responder.block(block(A))
    assert wait_until(lambda: "trust" in (responder.status()[0].last_error or ""))
    assert "router r1" in responder.status()[0].last_error
    assert router_status(responder, "r1", A) == "pending"
    assert sim.commands_log == []  # we never logged in, nothing was sent


def test_after_a_reboot_unexpired_blocks_return_with_their_remaining_time(lab):
    sim = lab.add("r1")
    responder = lab.responder(lab.config(reconcile_interval="1s"))
    responder.block(block(A, 300, age=50))
    responder.block(block(B, 2, sid="1:3"))  # expires before the reboot is noticed
    assert responder.wait_applied(A, timeout=15)
    time.sleep(2.1)
    sim.reboot()
    assert str(A) not in lab.entries("r1")
    assert wait_until(lambda: str(A) in lab.entries("r1"), timeout=20)
    assert 200 < lab.entries("r1")[str(A)].timeout <= 250 - 2
    assert str(B) not in lab.entries("r1", 6)
    assert len(lab.adds("r1")) == 3  # A, B, then A again; B was let lapse


def test_a_restart_of_our_process_sends_nothing_twice(lab):
    for name in ("r1", "r2"):
        lab.add(name)
    config = lab.config()
    first = lab.responder(config)
    first.block(block(A))
    first.block(block(B))
    assert first.wait_applied(A, timeout=15) and first.wait_applied(B, timeout=15)
    assert first.stop(timeout=5)
    lists_before = {n: len(lab.sent(n, "print")) for n in ("r1", "r2")}

    second = lab.responder(config)
    # it has looked (listed) at every router...
    assert wait_until(lambda: all(len(lab.sent(n, "print")) > lists_before[n] for n in ("r1", "r2")))
    time.sleep(0.5)  # ...and a few polls later still has nothing to send
    for name in ("r1", "r2"):
        assert len(lab.adds(name)) == 2
        assert lab.sent(name, "remove") == []
    assert second.wait_applied(A, timeout=1) and second.wait_applied(B, timeout=1)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
