"""A storm's blocks as one ledger transaction: Ledger.batch, record_blocks, Responder.batch."""

from __future__ import annotations

import ipaddress
import sqlite3

import pytest

from responder.events import BlockRequest
from responder.ledger import Ledger

ROUTERS = ("r1", "r2")


def addr(n: int):
    return ipaddress.ip_address("198.18.0.0") + n


@pytest.fixture
def ledger(tmp_path):
    led = Ledger.in_state_dir(str(tmp_path / "state"))
    yield led
    led.close()


def test_record_blocks_gives_what_record_block_gives_one_by_one(tmp_path):
    requests = [BlockRequest(addr(n % 7), 300, f"r{n}", requested_at=1000.0 + 10 * n) for n in range(20)]
    one = Ledger(str(tmp_path / "one.sqlite3"))
    many = Ledger(str(tmp_path / "many.sqlite3"))
    try:
        singly = [one.record_block(r, ROUTERS, now=1200.0) for r in requests]
        together = many.record_blocks(requests, ROUTERS, now=1200.0)
        assert together == singly
        assert {"new", "extended"} <= {o.kind for o in together}
        assert [(b.address, b.expires_at, b.last_seen, b.reason) for b in many.blocks(1200.0)] == [
            (b.address, b.expires_at, b.last_seen, b.reason) for b in one.blocks(1200.0)
        ]
        assert many.router_state("r2", addr(3)).status == "pending"
        offences = "SELECT address, at, sid, duration FROM offences ORDER BY address, at"
        assert many._read(offences) == one._read(offences)
    finally:
        one.close()
        many.close()


def test_a_batch_is_one_transaction_seen_by_others_only_once_committed(ledger, tmp_path):
    other = sqlite3.connect(ledger.path)
    try:
        with ledger.batch():
            ledger.record_blocks(
                [BlockRequest(addr(n), 300, "x", requested_at=1000.0) for n in range(1000)], ROUTERS, now=1000.0
            )
            ledger.set_status("r1", addr(1), "applied", 1000.5)  # nested: a savepoint
            assert other.execute("SELECT COUNT(*) FROM blocks").fetchone()[0] == 0
        assert other.execute("SELECT COUNT(*) FROM blocks").fetchone()[0] == 1000
        assert ledger.router_state("r1", addr(1)).status == "applied"
    finally:
        other.close()


def test_a_failed_change_inside_a_batch_is_undone_alone(ledger):
    with ledger.batch():
        ledger.record_block(BlockRequest(addr(1), 300, "kept", requested_at=1000.0), ROUTERS, now=1000.0)
        with pytest.raises(ValueError):
            ledger.set_status("r1", addr(1), "no-such-status", 1000.0)
        with pytest.raises(sqlite3.IntegrityError):
            with ledger._transaction() as cur:
                cur.execute(
                    "INSERT INTO blocks (address, reason, sid, first_seen, last_seen, expires_at, state) "
                    "VALUES ('198.18.0.9', 'x', '', 1, 1, 2, 'active')"
                )
                cur.execute(
                    "INSERT INTO blocks (address, reason, sid, first_seen, last_seen, expires_at, state) "
                    "VALUES ('198.18.0.9', 'x', '', 1, 1, 2, 'active')"
                )  # a duplicate key
    assert [str(b.address) for b in ledger.blocks(1000.0)] == ["198.18.0.1"]


def test_an_exception_in_a_batch_rolls_it_all_back(ledger):
    with pytest.raises(RuntimeError):
        with ledger.batch():
            ledger.record_block(BlockRequest(addr(1), 300, "x", requested_at=1000.0), ROUTERS, now=1000.0)
            raise RuntimeError("crash before the commit")
    assert ledger.blocks(1000.0) == []


def test_responder_batch_records_at_the_end_and_an_unblock_inside_comes_after_its_block(tmp_path):
    from bridge.config.load import parse_config
    from responder.responder import Responder

    config = parse_config(
        {
            "state_dir": str(tmp_path / "state"),
            "routers": [
                {"name": "r1", "host": "127.0.0.1", "port": 9, "user": "ips", "key_file": str(tmp_path / "absent-key")}
            ],
        }
    )
    responder = Responder(config, session_factory=lambda cfg: (_ for _ in ()).throw(OSError("no router")))
    try:
        with responder.batch():
            assert responder.block(BlockRequest(addr(1), 300, "x", requested_at=1000.0)) is None
            responder.block(BlockRequest(addr(2), 300, "x", requested_at=1000.0))
            assert responder.ledger.router_state("r1", addr(2)) is None  # not yet: at the end
            responder.unblock(addr(1))
        assert responder.ledger.router_state("r1", addr(1)).status == "removing"
        assert responder.ledger.router_state("r1", addr(2)).status == "pending"
    finally:
        responder.ledger.close()
