"""The ledger file's shape: its tables, the statuses a router row may have, the key an address
is stored under, and bringing a file written by an older version up to date.

What the statuses mean is told in ``responder.ledger``; here they are the values the
``router_blocks`` CHECK constraint accepts.
"""

from __future__ import annotations

import ipaddress
import sqlite3

from responder.events import IPAddress

SCHEMA_VERSION = 2

STATUSES = ("pending", "applied", "failed", "removing", "removed", "expired")
OPEN_STATUSES = ("pending", "applied", "failed", "removing")  # the worker still has something to check
FINAL_STATUSES = ("removed", "expired")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    address    TEXT PRIMARY KEY,               -- ipaddress-normalised text
    reason     TEXT NOT NULL,
    sid        TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen  REAL NOT NULL,
    expires_at REAL NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('active', 'unblocked')),
    duration   REAL NOT NULL DEFAULT 0,        -- as requested, seconds
    duration_why TEXT NOT NULL DEFAULT '',     -- how the duration was reached, or "by hand"
    source     TEXT NOT NULL DEFAULT ''        -- where the deciding alert was read: "file:line"
);
CREATE TABLE IF NOT EXISTS router_blocks (
    router     TEXT NOT NULL,
    address    TEXT NOT NULL REFERENCES blocks(address) ON DELETE CASCADE,
    status     TEXT NOT NULL CHECK (status IN ('pending','applied','failed','removing','removed','expired')),
    applied_at REAL,
    expires_at REAL,                           -- when the router's entry runs out, as last sent
    last_error TEXT,
    attempts   INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0,     -- bumped by every block/unblock: stale results lose
    static     INTEGER NOT NULL DEFAULT 0,     -- a static entry (beyond the router timeouts), removed by us
    PRIMARY KEY (router, address)
);
CREATE INDEX IF NOT EXISTS router_blocks_open ON router_blocks (router, status);
CREATE TABLE IF NOT EXISTS router_meta (
    router      TEXT PRIMARY KEY,
    reachable   INTEGER NOT NULL DEFAULT 0,
    last_uptime REAL,
    last_seen   REAL,                          -- last successful exchange
    last_error  TEXT,
    error_at    REAL,
    reboots     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS offences (
    address    TEXT NOT NULL,
    at         REAL NOT NULL,
    sid        TEXT NOT NULL,
    duration   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS offences_by_address ON offences (address, at);
CREATE TABLE IF NOT EXISTS adoption (          -- routers whose entries of ours are to be taken back
    router       TEXT PRIMARY KEY,             --   into this ledger (responder.ledger.adoption)
    requested_at REAL NOT NULL
);
"""
# Columns added since version 1, each added in place where a ledger lacks it: version 1 ledgers
# (before escalation and static entries), and early version 2 ones (before sources were kept).
_ADDED_COLUMNS = (
    ("blocks", "duration", "REAL NOT NULL DEFAULT 0"),
    ("blocks", "duration_why", "TEXT NOT NULL DEFAULT ''"),
    ("blocks", "source", "TEXT NOT NULL DEFAULT ''"),
    ("router_blocks", "static", "INTEGER NOT NULL DEFAULT 0"),
)


class LedgerError(RuntimeError):
    """The ledger file cannot be used (unknown schema version, not a database...)."""


def address_key(address: IPAddress) -> str:
    if not isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        raise TypeError(f"the ledger stores ipaddress addresses only, got {type(address).__name__}")
    return str(address)


def migrate(cur: sqlite3.Cursor, path: str) -> None:
    """Create what is missing and bring an older ledger to ``SCHEMA_VERSION``, inside the
    caller's transaction (so two processes opening one new file do not both create it)."""
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            cur.execute(statement)
    for table, column, declaration in _ADDED_COLUMNS:
        if column not in {info[1] for info in cur.execute(f"PRAGMA table_info({table})")}:
            cur.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
    row = cur.execute("SELECT version FROM schema_version").fetchone()
    if row is None:
        cur.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
    elif row[0] == 1:
        cur.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
    elif row[0] != SCHEMA_VERSION:
        raise LedgerError(
            f"{path}: ledger schema version {row[0]}, this program knows {SCHEMA_VERSION}; "
            "move the file aside to start a fresh ledger"
        )
