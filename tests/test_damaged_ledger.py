"""A damaged ledger (bytes overwritten in the middle of the file) is named, set aside and rebuilt
from what the routers hold; blocking goes on without an operator.

The damage is real: a ledger with enough rows to span many pages, closed (its WAL folded in),
then 8 KiB in its middle overwritten. The routers are simulated over real SSH on loopback; the
service is a real `snort-bridge run` process.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import time
from collections.abc import Sequence

from conftest import console_script
from responder_rig import Lab, wait_until
from test_e2e_service import DEADLINE, Service, append, fast_line, write_service_config

from responder.events import BlockRequest
from responder.ledger import LEDGER_FILE, Ledger, mark_damaged
from responder.ledger.damage import problem_of
from responder.sync.adopt import ours, parse_comment

LONG = 400 * 86400.0  # beyond RouterOS v7's longest timeout: a static entry


def fill(path: str, count: int = 3000, routers: Sequence[str] = ("r1",)) -> None:
    """Record ``count`` filler blocks (10.0.0.1 onwards) in the ledger at ``path``, pending on ``routers``."""
    ledger = Ledger(path)
    now = time.time()
    requests = [
        BlockRequest(ipaddress.ip_address(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"), 600.0, "filler", "1:1")
        for i in range(1, count + 1)
    ]
    ledger.record_blocks(requests, routers, now)
    ledger.close()  # the last connection folds the WAL into the file


def damage(path: str) -> None:
    """Overwrite 8 KiB in the middle of the file, as a bad disk or a torn copy would."""
    size = os.path.getsize(path)
    assert size > 64 * 1024, size
    with open(path, "r+b") as handle:
        handle.seek(size // 2 // 4096 * 4096)
        handle.write(bytes(range(256)) * 32)


def test_overwritten_bytes_are_found_by_the_check(tmp_path):
    path = str(tmp_path / LEDGER_FILE)
    fill(path)
    assert problem_of(path) is None
    damage(path)
    problem = problem_of(path)
    assert problem is not None and problem != "ok"


def test_a_damaged_ledger_is_moved_aside_and_a_new_one_started(tmp_path):
    path = str(tmp_path / LEDGER_FILE)
    fill(path)
    damage(path)
    ledger = Ledger.open_checked(path, now=1_800_000_000.0)
    try:
        assert ledger.damage is not None
        moved = ledger.damage.moved_to
        assert moved == path + ".damaged-20270115T080000Z"
        assert os.path.exists(moved) and os.path.getsize(moved) > 64 * 1024  # kept, never deleted
        text = ledger.damage.describe()
        assert path in text and moved in text and "refilled from what the routers hold" in text
        assert ledger.blocks(time.time()) == []  # the new one starts empty
    finally:
        ledger.close()
    again = Ledger.open_checked(path)  # sound now: nothing more is moved
    assert again.damage is None
    again.close()


def test_damage_noted_while_running_is_acted_on_at_the_next_start(tmp_path):
    path = str(tmp_path / LEDGER_FILE)
    fill(path, 10)
    mark_damaged(path, "database disk image is malformed")
    ledger = Ledger.open_checked(path)
    assert ledger.damage is not None and "malformed" in ledger.damage.problem
    ledger.close()
    assert not os.path.exists(path + ".damage-found")


def test_our_comments_are_read_back_and_others_left_alone():
    assert parse_comment("tzsp-ips [1:2001] ET SCAN nmap") == ("1:2001", "ET SCAN nmap", None)
    assert parse_comment("tzsp-ips manual block") == ("", "manual block", None)
    sid, reason, until = parse_comment("tzsp-ips [1:5] until 2027-01-15 08:00Z: brute force")
    assert (sid, reason, until) == ("1:5", "brute force", 1_800_000_000.0)
    assert parse_comment("added by the admin") is None

    class Entry:
        def __init__(self, comment, timeout_s, disabled=False):
            self.comment, self.timeout_s, self.disabled = comment, timeout_s, disabled

    a, b, c, d = (ipaddress.ip_address(f"192.0.2.{i}") for i in range(1, 5))
    found = ours(
        {
            a: Entry("tzsp-ips [1:1] x", 100.0),
            b: Entry("tzsp-ips [1:2] until 2027-01-15 08:00Z: y", None),
            c: Entry("by hand", 100.0),
            d: Entry("tzsp-ips [1:3] static without an end", None),
        },
        now=1_799_000_000.0,
    )
    assert [(e.address, e.expires_at, e.static) for e in found] == [
        (a, 1_799_000_100.0, False),
        (b, 1_800_000_000.0, True),
    ]


def block_three(lab: Lab):
    responder = lab.responder()
    now = time.time()
    requests = [
        BlockRequest(ipaddress.ip_address("203.0.113.1"), 3600.0, "brute force", "1:100", requested_at=now),
        BlockRequest(ipaddress.ip_address("203.0.113.2"), LONG, "repeat offender", "1:200", requested_at=now),
        BlockRequest(ipaddress.ip_address("2001:db8::3"), 1800.0, "sweep", "", requested_at=now),
    ]
    for request in requests:
        responder.block(request)
    for request in requests:
        assert responder.wait_applied(request.address, 20), responder.states(request.address)
    assert responder.stop(5)
    return requests


def test_the_new_ledger_takes_the_blocks_back_from_the_routers(lab, tmp_path):
    lab.add("r1")
    requests = block_three(lab)
    path = str(tmp_path / "state" / LEDGER_FILE)
    ledger = Ledger(path)  # grow it past a few pages, so the damage lands in its tables
    ledger.record_blocks(
        [BlockRequest(ipaddress.ip_address(f"10.1.{i // 256}.{i % 256}"), 600.0, "x", "1:1") for i in range(3000)],
        [],
        time.time(),
    )
    ledger.close()
    damage(path)
    adds_before = len(lab.adds("r1"))

    responder = lab.responder()
    assert responder.ledger.damage is not None
    assert wait_until(lambda: len(responder.ledger.blocks(time.time())) == 3, 20), responder.ledger.blocks(time.time())
    records = {str(r.address): r for r in responder.ledger.blocks(time.time())}
    now = time.time()
    for request in requests:
        record = records[str(request.address)]
        assert abs(record.expires_at - (request.requested_at + request.duration)) < 120  # minutes, for the static one
        assert record.routers["r1"].status == "applied"
    assert records["203.0.113.2"].routers["r1"].static
    assert records["203.0.113.1"].sid == "1:100" and records["203.0.113.1"].reason == "brute force"
    assert 3500 < records["203.0.113.1"].expires_at - now <= 3600
    time.sleep(0.5)  # a poll or two: nothing is sent again
    assert len(lab.adds("r1")) == adds_before


def test_a_service_started_on_a_damaged_ledger_rebuilds_it_and_blocks_on(lab, services, tmp_path):
    lab.add("r1")
    block_three(lab)
    path = str(tmp_path / "state" / LEDGER_FILE)
    fill(path, routers=())
    damage(path)

    alerts = tmp_path / "alert_fast.txt"
    config = write_service_config(lab, alerts=alerts)
    service = Service(config, tmp_path / "run.log").start()
    services.append(service)
    log = service.text()
    assert "Traceback" not in log
    assert f"the ledger {path} is damaged" in log and f"moved aside to {path}.damaged-" in log, log
    assert "block(s) in force (1 static), 2999 offence(s)" in log or "unknown number" in log, log
    assert wait_until(lambda: "3 of our entries taken back into the new ledger" in service.text(), DEADLINE)

    append(alerts, fast_line("198.51.100.50"))
    assert wait_until(lambda: "198.51.100.50" in lab.entries("r1"), DEADLINE), service.text()

    listed = subprocess.run(
        [*console_script("snort-bridge"), "list", "--config", config], capture_output=True, text=True, timeout=60
    )
    for address in ("203.0.113.1", "203.0.113.2", "2001:db8::3", "198.51.100.50"):
        assert address in listed.stdout, listed.stdout
    checked = subprocess.run(
        [*console_script("snort-bridge"), "ledger", "check", "--config", config],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0 and "OK (quick_check)" in checked.stdout, checked.stdout + checked.stderr
    assert service.stop() == 0


def test_ledger_check_and_rebuild_by_hand(lab, tmp_path):
    lab.add("r1")
    block_three(lab)
    config = write_service_config(lab, alerts=tmp_path / "alert_fast.txt")
    path = str(tmp_path / "state" / LEDGER_FILE)
    fill(path, routers=())
    damage(path)

    def snort_bridge(*args):
        return subprocess.run(
            [*console_script("snort-bridge"), *args, "--config", config], capture_output=True, text=True, timeout=60
        )

    checked = snort_bridge("ledger", "check")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert f"{path}: DAMAGED:" in checked.stdout and "Traceback" not in checked.stderr
    listed = snort_bridge("list")  # no traceback for the operator either
    assert listed.returncode != 0 and "Traceback" not in listed.stderr and "ledger" in listed.stderr, listed.stderr

    rebuilt = snort_bridge("ledger", "rebuild-from-routers")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert f"{path} moved aside to {path}.damaged-" in rebuilt.stdout
    assert "r1: 3 entries taken back (1 static)" in rebuilt.stdout, rebuilt.stdout
    listed = snort_bridge("list")
    assert listed.returncode == 0 and "203.0.113.2" in listed.stdout, listed.stdout + listed.stderr


def test_damage_found_by_a_worker_while_running_stops_the_service_for_a_rebuild(lab, tmp_path, caplog, monkeypatch):
    import sqlite3
    from types import SimpleNamespace

    from bridge.service.keeping import Keeper
    from plumbing.steadyclock import SteadyClock
    from responder.feed import Feed

    lab.add("r1")
    responder = lab.responder()
    assert wait_until(lambda: responder.ledger.router_meta("r1").last_seen is not None, 20)

    def malformed(*args, **kwargs):
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(responder.ledger, "router_blocks", malformed)
    mark = responder.ledger.path + ".damage-found"
    assert wait_until(lambda: os.path.exists(mark), 20)
    assert "is damaged (database disk image is malformed)" in caplog.text
    assert "unexpected error in worker" not in caplog.text  # said in words, not a traceback

    service = SimpleNamespace(responder=responder, pipeline=None, follower=None, feed=Feed(), fatal=None)
    Keeper(service, SteadyClock()).keep_state()
    assert "is damaged; at the next start it is moved aside and rebuilt" in service.fatal
    monkeypatch.undo()
    assert responder.stop(5)
    again = Ledger.open_checked(responder.ledger.path)  # the next start sets it aside
    try:
        assert again.damage is not None and "malformed" in again.damage.problem
    finally:
        again.close()


def test_an_unreadable_known_hosts_is_a_refusal_in_words_not_a_worker_crash(lab, tmp_path, caplog):
    lab.add("r1")
    broken = tmp_path / "known_hosts_dir"
    broken.mkdir()  # reading it fails with IsADirectoryError, as an unreadable file would with EACCES
    responder = lab.responder(lab.config(known_hosts=str(broken)))
    assert wait_until(lambda: responder.status()[0].last_error is not None, 20)
    error = responder.status()[0].last_error
    assert f"cannot read {broken}" in error, error
    assert "unexpected error in worker" not in caplog.text


def test_a_router_that_lacks_an_entry_gets_it_from_the_rebuilt_ledger(lab, tmp_path):
    import socket

    from conftest import free_port

    lab.add("r1")
    down_port = free_port(socket.SOCK_STREAM)
    lab.add("r2", start=False, port=down_port)  # down while the block is made: only r1 has it
    responder = lab.responder()
    address = ipaddress.ip_address("203.0.113.60")
    responder.block(BlockRequest(address, 3600.0, "attack", "1:9", requested_at=time.time()))
    assert wait_until(lambda: str(address) in lab.entries("r1"), 20)
    assert responder.stop(5)
    path = str(tmp_path / "state" / LEDGER_FILE)
    ledger = Ledger(path)
    ledger.record_blocks(
        [BlockRequest(ipaddress.ip_address(f"10.4.{i // 256}.{i % 256}"), 600.0, "x", "1:1") for i in range(3000)],
        [],
        time.time(),
    )
    ledger.close()
    damage(path)

    lab.sims["r2"].start("127.0.0.1", down_port)
    rebuilt = lab.responder()
    assert rebuilt.ledger.damage is not None
    assert wait_until(lambda: str(address) in lab.entries("r2"), 30)  # taken back from r1, sent to r2
    timeout = lab.entries("r2")[str(address)].timeout
    assert timeout is not None and 3500 < timeout <= 3600
    assert sum(f"address={address} " in command for command in lab.adds("r1")) == 1  # r1 kept its own
