"""The ledger: blocks and per-router state in SQLite, surviving a reopen, shared between connections."""

from __future__ import annotations

import ipaddress
import sqlite3
import threading

import pytest

from responder.events import BlockRequest
from responder.ledger import SCHEMA_VERSION, Ledger, LedgerError, refresh_threshold

A = ipaddress.ip_address("203.0.113.7")
B = ipaddress.ip_address("2001:db8::66")
ROUTERS = ("r1", "r2")


@pytest.fixture
def ledger(tmp_path):
    led = Ledger.in_state_dir(str(tmp_path / "state"))
    yield led
    led.close()


def statuses(ledger, address):
    return {name: ledger.router_state(name, address).status for name in ROUTERS}


def test_new_block_is_pending_on_every_router_and_survives_reopen(tmp_path):
    led = Ledger.in_state_dir(str(tmp_path))
    outcome = led.record_block(BlockRequest(A, 300, "scan", "122:1", requested_at=1000.0), ROUTERS, now=1000.0)
    assert (outcome.kind, outcome.expires_at) == ("new", 1300.0)
    led.set_status("r1", A, "applied", 1000.5, expires_at=1300.0, attempted=True)
    led.close()

    again = Ledger.in_state_dir(str(tmp_path))
    assert statuses(again, A) == {"r1": "applied", "r2": "pending"}
    [record] = again.blocks(now=1001.0)
    assert (record.address, record.reason, record.sid, record.expires_at) == (A, "scan", "122:1", 1300.0)
    assert record.routers["r1"].attempts == 1
    assert again.pending_count("r2", now=1001.0) == 1
    assert again.pending_count("r1", now=1001.0) == 0
    assert again.pending_count("r2", now=1301.0) == 0  # expired: nothing left to send
    again.close()


def test_file_is_in_wal_mode_with_the_schema_version(tmp_path, ledger):
    conn = sqlite3.connect(ledger.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_unknown_schema_version_is_refused_with_advice(tmp_path):
    path = str(tmp_path / "l.sqlite3")
    Ledger(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(LedgerError, match="schema version 99.*move the file aside"):
        Ledger(path)


def test_a_file_that_is_not_a_database_is_a_ledger_error(tmp_path):
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LedgerError, match="cannot use the ledger"):
        Ledger(str(path))


def test_repeat_block_only_rearms_routers_when_it_extends_enough(ledger):
    ledger.record_block(BlockRequest(A, 300, "x", requested_at=1000.0), ROUTERS, now=1000.0)
    for name in ROUTERS:
        ledger.set_status(name, A, "applied", 1000.0, expires_at=1300.0)
    small = ledger.record_block(
        BlockRequest(A, 300, "x", requested_at=1000.0 + refresh_threshold(300) / 2), ROUTERS, now=1007.0
    )
    assert small.kind == "unchanged"
    assert statuses(ledger, A) == {"r1": "applied", "r2": "applied"}
    big = ledger.record_block(BlockRequest(A, 300, "x", requested_at=1100.0), ROUTERS, now=1100.0)
    assert (big.kind, big.expires_at) == ("extended", 1400.0)
    assert statuses(ledger, A) == {"r1": "pending", "r2": "pending"}


def test_block_after_expiry_is_new_again_and_keeps_first_seen(ledger):
    ledger.record_block(BlockRequest(A, 60, "x", requested_at=1000.0), ROUTERS, now=1000.0)
    outcome = ledger.record_block(BlockRequest(A, 60, "y", requested_at=5000.0), ROUTERS, now=5000.0)
    assert (outcome.kind, outcome.expires_at) == ("new", 5060.0)
    [record] = ledger.blocks(now=5001.0)
    assert (record.first_seen, record.last_seen, record.reason) == (1000.0, 5000.0, "y")


def test_unblock_marks_removing_everywhere_even_for_unknown_addresses(ledger):
    ledger.record_block(BlockRequest(A, 300, "x", requested_at=1000.0), ROUTERS, now=1000.0)
    assert ledger.record_unblock(A, ROUTERS, now=1010.0) is True
    assert statuses(ledger, A) == {"r1": "removing", "r2": "removing"}
    assert ledger.record_unblock(B, ROUTERS, now=1010.0) is False
    assert statuses(ledger, B) == {"r1": "removing", "r2": "removing"}
    # still listed while removal is outstanding, gone from the list once done
    assert {r.address for r in ledger.blocks(now=1011.0)} == {A, B}
    for name in ROUTERS:
        ledger.set_status(name, A, "removed", 1012.0)
        ledger.set_status(name, B, "removed", 1012.0)
    assert ledger.blocks(now=1013.0) == []
    assert {r.state for r in ledger.blocks(now=1013.0, include_inactive=True)} == {"unblocked"}


def test_stale_result_loses_against_a_newer_unblock(ledger):
    ledger.record_block(BlockRequest(A, 300, "x", requested_at=1000.0), ROUTERS, now=1000.0)
    [row] = ledger.router_blocks("r1")
    ledger.record_unblock(A, ROUTERS, now=1001.0)  # arrives while r1's worker is sending the add
    assert ledger.set_status("r1", A, "applied", 1002.0, generation=row.generation) is False
    assert ledger.router_state("r1", A).status == "removing"
    [row] = ledger.router_blocks("r1")
    assert ledger.set_status("r1", A, "removed", 1003.0, generation=row.generation) is True


def test_new_router_gets_pending_rows_for_live_blocks_only(ledger):
    ledger.record_block(BlockRequest(A, 300, "x", requested_at=1000.0), ROUTERS, now=1000.0)
    ledger.record_block(BlockRequest(B, 10, "x", requested_at=1000.0), ROUTERS, now=1000.0)
    assert ledger.ensure_router("r3", now=1100.0) == 1
    assert ledger.ensure_router("r3", now=1100.0) == 0
    assert [r.address for r in ledger.router_blocks("r3")] == [A]


def test_reboot_detection_from_uptime_and_requeue(ledger):
    assert ledger.record_contact("r1", 500.0, now=1000.0) is False
    assert ledger.record_contact("r1", 560.0, now=1060.0) is False
    ledger.record_block(BlockRequest(A, 300, "x", requested_at=1000.0), ["r1"], now=1000.0)
    ledger.set_status("r1", A, "applied", 1000.0, expires_at=1300.0)
    assert ledger.record_contact("r1", 12.0, now=1100.0) is True
    assert ledger.requeue_applied("r1", now=1100.0) == 1
    assert ledger.router_state("r1", A).status == "pending"
    meta = ledger.router_meta("r1")
    assert (meta.reachable, meta.last_uptime, meta.reboots) == (True, 12.0, 1)
    ledger.record_router_error("r1", "router r1: connection refused", 1200.0, reachable=False)
    meta = ledger.router_meta("r1")
    assert (meta.reachable, meta.last_error, meta.last_uptime) == (False, "router r1: connection refused", 12.0)
    assert ledger.router_meta("never-seen").reachable is False


def test_prune_forgets_only_long_finished_blocks(ledger):
    ledger.record_block(BlockRequest(A, 60, "x", requested_at=1000.0), ROUTERS, now=1000.0)
    ledger.record_block(BlockRequest(B, 60, "x", requested_at=1000.0), ROUTERS, now=1000.0)
    ledger.record_unblock(B, ROUTERS, now=1001.0)  # removal still outstanding: kept
    assert ledger.prune(now=1000.0 + 8 * 86400) == 1
    assert [r.address for r in ledger.blocks(now=0, include_inactive=True)] == [B]
    assert ledger.router_state("r1", A) is None  # its router rows went with it


def test_only_addresses_are_stored(ledger):
    with pytest.raises(TypeError):
        ledger.record_unblock("203.0.113.7", ROUTERS, now=1.0)
    with pytest.raises(ValueError):
        ledger.set_status("r1", A, "bogus", 1.0)


def test_concurrent_writers_from_threads_and_a_second_connection(tmp_path):
    path = str(tmp_path / "l.sqlite3")
    first, second = Ledger(path), Ledger(path)  # as `snort-bridge run` and `snort-bridge block` would
    addresses = [ipaddress.ip_address(f"198.51.100.{i}") for i in range(1, 41)]

    def write(led, chunk):
        for address in chunk:
            led.record_block(BlockRequest(address, 300, "t", requested_at=1000.0), ROUTERS, now=1000.0)
            led.set_status("r1", address, "applied", 1000.0, expires_at=1300.0)

    threads = [
        threading.Thread(target=write, args=(led, addresses[i::4]))
        for i, led in enumerate((first, second, first, second))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not any(t.is_alive() for t in threads)
    assert len(first.blocks(now=1001.0)) == 40
    assert first.pending_count("r1", now=1001.0) == 0
    assert second.pending_count("r2", now=1001.0) == 40
    first.close()
    second.close()
