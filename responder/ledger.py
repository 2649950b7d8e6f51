"""The responder's memory: every block and its state on each router, in SQLite (WAL).

The ledger is the persistent queue: a block for a router that is down stays ``pending`` here
until that router's worker applies it, across restarts of our process. Several processes may
share the file (``snort-bridge run`` and a ``snort-bridge block`` from a shell); each holds one
connection guarded by a lock, and SQLite's busy timeout serialises writers between processes.

Per-router status of one address:
  pending   wanted on the router, not yet confirmed there
  applied   the router accepted it; it expires there at ``expires_at`` by RouterOS's own timeout
  failed    the router refused it (permission, bad command...); retried at each reconcile
  removing  unblocked here; the entry must be removed from the router
  removed   removed (or found absent) after an unblock
  expired   its time ran out before or after it was applied; nothing left to do

A block longer than the router's longest timeout is a *static* entry there (``static = 1``): it
survives the router's reboots, and the worker removes it itself when the block ends, also after
our own restart (the row stays ``applied`` until then).

Offences: every new block of an address (not an extension of one in force) is one row in
``offences``, kept for ``remember_for`` (the policy's escalation counts them); ``unblock`` clears
them unless asked to keep them.
"""

from __future__ import annotations

import ipaddress
import os
import sqlite3
import threading
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from responder.events import BlockRequest, IPAddress

SCHEMA_VERSION = 2
LEDGER_FILE = "responder.sqlite3"
REBOOT_SLACK = 5.0  # seconds of disagreement between our clock and a router's uptime we ignore

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
"""
# Columns added since version 1, each added in place where a ledger lacks it: version 1 ledgers
# (before escalation and static entries), and early version 2 ones (before sources were kept).
_ADDED_COLUMNS = (
    ("blocks", "duration", "REAL NOT NULL DEFAULT 0"),
    ("blocks", "duration_why", "TEXT NOT NULL DEFAULT ''"),
    ("blocks", "source", "TEXT NOT NULL DEFAULT ''"),
    ("router_blocks", "static", "INTEGER NOT NULL DEFAULT 0"),
)
_UPSERT_STATUS = (
    "INSERT INTO router_blocks (router, address, status, attempts, updated_at) VALUES (?, ?, ?, 0, ?) "
    "ON CONFLICT (router, address) DO UPDATE SET status = excluded.status, last_error = NULL, "
    "updated_at = excluded.updated_at, generation = generation + 1"
)


class LedgerError(RuntimeError):
    """The ledger file cannot be used (unknown schema version, not a database...)."""


@dataclass(frozen=True)
class RouterBlock:
    """One address as one router's worker sees it: the block joined with its state there."""

    router: str
    address: IPAddress
    reason: str
    sid: str
    block_state: str  # active | unblocked
    block_expires_at: float
    status: str
    expires_at: Optional[float]  # the router entry's end as last sent
    last_error: Optional[str]
    attempts: int
    generation: int = 0
    static: bool = False  # the router holds a static entry we must remove when the block ends


@dataclass(frozen=True)
class RouterState:
    status: str
    expires_at: Optional[float]
    last_error: Optional[str]
    attempts: int
    static: bool = False


@dataclass(frozen=True)
class BlockRecord:
    address: IPAddress
    reason: str
    sid: str
    first_seen: float
    last_seen: float
    expires_at: float
    state: str
    routers: Dict[str, RouterState]
    duration: float = 0.0
    duration_why: str = ""
    offences: int = 0  # within the remember_for the caller asked about
    source: str = ""  # where the alert that made (or last renewed) the block was read: "file:line"


@dataclass(frozen=True)
class RouterMeta:
    router: str
    reachable: bool
    last_uptime: Optional[float]
    last_seen: Optional[float]
    last_error: Optional[str]
    error_at: Optional[float]
    reboots: int


@dataclass(frozen=True)
class BlockOutcome:
    """What record_block did: ``new``, ``extended`` (routers re-armed) or ``unchanged``."""

    kind: str
    expires_at: float


def address_key(address: IPAddress) -> str:
    if not isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        raise TypeError(f"the ledger stores ipaddress addresses only, got {type(address).__name__}")
    return str(address)


def refresh_threshold(duration: float) -> float:
    """A repeated block re-arms the routers only if it moves the expiry by more than this.

    Without it, an attacker whose every packet raises an alert would cost one command per
    alert per router; with it, at most about twenty refreshes per block duration.
    """
    return max(1.0, 0.05 * duration)


class Ledger:
    def __init__(self, path: str) -> None:
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, mode=0o750, exist_ok=True)
        self._lock = threading.RLock()
        self._batch_depth = 0  # > 0 while the thread holding the lock runs a batch
        try:
            self._conn = sqlite3.connect(path, timeout=10.0, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA busy_timeout = 10000")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"{path}: cannot use the ledger: {exc}") from exc

    @classmethod
    def in_state_dir(cls, state_dir: str) -> "Ledger":
        return cls(os.path.join(state_dir, LEDGER_FILE))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- plumbing -------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._transaction() as cur:
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
                    f"{self.path}: ledger schema version {row[0]}, this program knows {SCHEMA_VERSION}; "
                    "move the file aside to start a fresh ledger"
                )

    def _transaction(self):
        return _Transaction(self)

    def batch(self) -> "_Batch":
        """``with ledger.batch():`` -- every change made inside (by this thread) is one
        transaction, committed durably once at the end: a storm of blocks costs one commit per
        pass, not one per block. Other threads wait for the ledger meanwhile. A change that
        fails inside is undone alone (a savepoint); the rest of the batch still commits."""
        return _Batch(self)

    def _read(self, sql: str, params: Sequence = ()) -> List[tuple]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    # -- blocks ---------------------------------------------------------------------------

    def record_block(self, request: BlockRequest, routers: Iterable[str], now: float) -> BlockOutcome:
        """Remember ``request`` and mark it pending on ``routers`` where it needs sending."""
        return self.record_blocks([request], routers, now)[0]

    def record_blocks(self, requests: Sequence[BlockRequest], routers: Iterable[str],
                      now: float) -> List[BlockOutcome]:
        """``record_block`` for each request, in order, as one transaction with a few
        statements for all of them (a storm of 10,000 blocks is a handful of statements)."""
        routers = list(routers)
        keys = [address_key(request.address) for request in requests]
        outcomes: List[BlockOutcome] = []
        inserts, updates, touches = [], [], []
        pending: Dict[str, None] = {}
        with self._transaction() as cur:
            known: Dict[str, Tuple[float, str]] = {}
            unique = list(dict.fromkeys(keys))
            for start in range(0, len(unique), 500):
                chunk = unique[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for key, expires, state in cur.execute(
                        f"SELECT address, expires_at, state FROM blocks WHERE address IN ({marks})", chunk):
                    known[key] = (expires, state)
            offences = []
            for request, key in zip(requests, keys):
                start = request.requested_at or now
                expires_at = start + request.duration
                row = known.get(key)
                if row is None:
                    inserts.append((key, request.reason, request.sid, start, start, expires_at,
                                    request.duration, request.duration_why, request.source))
                    offences.append((key, start, request.sid, request.duration))
                    known[key] = (expires_at, "active")
                    outcomes.append(BlockOutcome("new", expires_at))
                    pending[key] = None
                    continue
                old_expires, state = row
                live = state == "active" and old_expires > now
                if live and expires_at - old_expires <= refresh_threshold(request.duration):
                    touches.append((start, key))
                    outcomes.append(BlockOutcome("unchanged", old_expires))
                    continue
                new_expires = max(expires_at, old_expires if live else 0.0)
                updates.append((request.reason, request.sid, start, new_expires, request.duration,
                                request.duration_why, request.source, key))
                known[key] = (new_expires, "active")
                if not live:
                    offences.append((key, start, request.sid, request.duration))
                outcomes.append(BlockOutcome("extended" if live else "new", expires_at))
                pending[key] = None
            cur.executemany(
                "INSERT INTO blocks (address, reason, sid, first_seen, last_seen, expires_at, state, duration, "
                "duration_why, source) VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?, ?)", inserts)
            cur.executemany(
                "UPDATE blocks SET reason = ?, sid = ?, last_seen = ?, expires_at = ?, state = 'active', "
                "duration = ?, duration_why = ?, source = ? WHERE address = ?", updates)
            cur.executemany("INSERT INTO offences (address, at, sid, duration) VALUES (?, ?, ?, ?)", offences)
            cur.executemany("UPDATE blocks SET last_seen = ? WHERE address = ?", touches)
            cur.executemany(_UPSERT_STATUS + ", attempts = 0",
                            [(router, key, "pending", now) for key in pending for router in routers])
        return outcomes

    def record_unblock(self, address: IPAddress, routers: Iterable[str], now: float, *, keep_offences: bool = False) -> bool:
        """Mark ``address`` for removal on ``routers``; True if it was actively blocked.

        Its offences are forgotten too (its next block starts over at block_for), unless ``keep_offences``.
        """
        key = address_key(address)
        with self._transaction() as cur:
            if not keep_offences:
                cur.execute("DELETE FROM offences WHERE address = ?", (key,))
            row = cur.execute("SELECT expires_at, state FROM blocks WHERE address = ?", (key,)).fetchone()
            if row is None:
                # Unknown here (added by hand or by an older ledger): remove it from the routers anyway.
                cur.execute(
                    "INSERT INTO blocks (address, reason, sid, first_seen, last_seen, expires_at, state) "
                    "VALUES (?, 'unblock', '', ?, ?, ?, 'unblocked')",
                    (key, now, now, now),
                )
                was_active = False
            else:
                was_active = row[1] == "active" and row[0] > now
                cur.execute("UPDATE blocks SET state = 'unblocked', last_seen = ? WHERE address = ?", (now, key))
            for router in routers:
                self._upsert_status(cur, router, key, "removing", now, reset_attempts=True)
            return was_active

    def ensure_router(self, router: str, now: float) -> int:
        """Give a router that has no row yet for a live block (newly configured) a pending one."""
        with self._transaction() as cur:
            cur.execute(
                "INSERT INTO router_blocks (router, address, status, attempts, updated_at) "
                "SELECT ?, address, 'pending', 0, ? FROM blocks "
                "WHERE state = 'active' AND expires_at > ? "
                "AND address NOT IN (SELECT address FROM router_blocks WHERE router = ?)",
                (router, now, now, router),
            )
            return cur.rowcount

    @staticmethod
    def _upsert_status(cur, router: str, key: str, status: str, now: float, reset_attempts: bool) -> None:
        cur.execute(_UPSERT_STATUS + (", attempts = 0" if reset_attempts else ""), (router, key, status, now))

    def set_status(
        self,
        router: str,
        address: IPAddress,
        status: str,
        now: float,
        *,
        expires_at: Optional[float] = None,
        error: Optional[str] = None,
        attempted: bool = False,
        generation: Optional[int] = None,
        static: Optional[bool] = None,
    ) -> bool:
        """Record a result; with ``generation``, only if no block/unblock changed the row meanwhile.

        ``static`` (when given) records whether the router's entry is static (ours to remove)."""
        if status not in STATUSES:
            raise ValueError(f"unknown router status {status!r}")
        key = address_key(address)
        with self._transaction() as cur:
            cur.execute(
                "UPDATE router_blocks SET status = ?, last_error = ?, updated_at = ?, "
                "attempts = attempts + ?, "
                "applied_at = CASE WHEN ? = 'applied' THEN ? ELSE applied_at END, "
                "expires_at = COALESCE(?, expires_at), static = COALESCE(?, static) "
                "WHERE router = ? AND address = ? AND (? IS NULL OR generation = ?)",
                (status, error, now, 1 if attempted else 0, status, now, expires_at,
                 None if static is None else int(static), router, key, generation, generation),
            )
            return cur.rowcount == 1

    def requeue_applied(self, router: str, now: float) -> int:
        """After a router reboot: its timed entries are gone, so every applied block is pending again."""
        with self._transaction() as cur:
            cur.execute(
                "UPDATE router_blocks SET status = 'pending', updated_at = ? WHERE router = ? AND status = 'applied'",
                (now, router),
            )
            return cur.rowcount

    def router_blocks(self, router: str, statuses: Sequence[str] = OPEN_STATUSES) -> List[RouterBlock]:
        """The rows of ``router`` whose status is one of ``statuses``, oldest change first."""
        marks = ",".join("?" for _ in statuses)
        rows = self._read(
            f"{_ROUTER_BLOCK_COLUMNS} WHERE rb.router = ? AND rb.status IN ({marks}) ORDER BY rb.updated_at, rb.address",
            (router, *statuses),
        )
        return [_router_block(r) for r in rows]

    def static_due(self, router: str, now: float) -> List[RouterBlock]:
        """Static entries on ``router`` whose block has ended: ours to remove now (an unblock is "removing")."""
        rows = self._read(
            f"{_ROUTER_BLOCK_COLUMNS} WHERE rb.router = ? AND rb.static = 1 AND rb.status = 'applied' "
            "AND b.expires_at <= ? ORDER BY rb.updated_at, rb.address",
            (router, now),
        )
        return [_router_block(r) for r in rows]

    # -- offences -------------------------------------------------------------------------

    def offence_count(self, address: IPAddress, since: float) -> int:
        """Blocks of ``address`` recorded at or after ``since``."""
        row = self._read("SELECT COUNT(*) FROM offences WHERE address = ? AND at >= ?", (address_key(address), since))
        return int(row[0][0])

    def offence_counts(self, since: float) -> Dict[str, int]:
        """Offences per address (ledger text form) at or after ``since``."""
        rows = self._read("SELECT address, COUNT(*) FROM offences WHERE at >= ? GROUP BY address", (since,))
        return {address: int(count) for address, count in rows}

    def purge_offences(self, before: float) -> int:
        """Forget offences older than ``before`` (now - remember_for)."""
        with self._transaction() as cur:
            cur.execute("DELETE FROM offences WHERE at < ?", (before,))
            return cur.rowcount

    def pending_count(self, router: str, now: float) -> int:
        """Blocks still to be sent to (or removed from) ``router``."""
        row = self._read(
            "SELECT COUNT(*) FROM router_blocks rb JOIN blocks b ON b.address = rb.address WHERE rb.router = ? "
            "AND ((rb.status IN ('pending', 'failed') AND b.state = 'active' AND b.expires_at > ?) "
            "OR rb.status = 'removing' OR (rb.static = 1 AND rb.status = 'applied' AND b.expires_at <= ?))",
            (router, now, now),
        )
        return int(row[0][0])

    def router_state(self, router: str, address: IPAddress) -> Optional[RouterState]:
        rows = self._read(
            "SELECT status, expires_at, last_error, attempts, static FROM router_blocks WHERE router = ? AND address = ?",
            (router, address_key(address)),
        )
        return RouterState(*rows[0][:4], bool(rows[0][4])) if rows else None

    def blocks(self, now: float, include_inactive: bool = False, offences_since: Optional[float] = None) -> List[BlockRecord]:
        """Blocks in force (and, with ``include_inactive``, expired and unblocked ones), each with per-router state
        (and, with ``offences_since``, its offences since then)."""
        where = "" if include_inactive else "WHERE (state = 'active' AND expires_at > ?) OR address IN " \
            "(SELECT address FROM router_blocks WHERE status = 'removing')"
        params: Tuple = () if include_inactive else (now,)
        rows = self._read(
            f"SELECT address, reason, sid, first_seen, last_seen, expires_at, state, duration, duration_why, source FROM blocks "
            f"{where} ORDER BY first_seen, address",
            params,
        )
        per_router: Dict[str, Dict[str, RouterState]] = {}
        for router, address, status, expires_at, error, attempts, static in self._read(
            "SELECT router, address, status, expires_at, last_error, attempts, static FROM router_blocks ORDER BY router"
        ):
            per_router.setdefault(address, {})[router] = RouterState(status, expires_at, error, attempts, bool(static))
        counts = self.offence_counts(offences_since) if offences_since is not None else {}
        return [
            BlockRecord(ipaddress.ip_address(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], per_router.get(r[0], {}),
                        r[7], r[8], counts.get(r[0], 0), r[9])
            for r in rows
        ]

    def prune(self, now: float, keep_for: float = 7 * 86400.0) -> int:
        """Forget blocks that ended more than ``keep_for`` ago and have nothing left to do anywhere."""
        with self._transaction() as cur:
            cur.execute(
                "DELETE FROM blocks WHERE last_seen < ? AND expires_at < ? AND address NOT IN "
                "(SELECT address FROM router_blocks WHERE status = 'removing' OR (static = 1 AND status = 'applied'))",
                (now - keep_for, now - keep_for),
            )
            return cur.rowcount

    # -- routers --------------------------------------------------------------------------

    def record_contact(self, router: str, uptime: float, now: float) -> bool:
        """Note a successful exchange; True if the router booted since we last read its uptime.

        It did if the uptime went down, or if its boot time (now - uptime) moved later than clock
        jitter explains. A false alarm only costs a listing: entries found in place are not re-sent.
        """
        with self._transaction() as cur:
            row = cur.execute("SELECT last_uptime, last_seen FROM router_meta WHERE router = ?", (router,)).fetchone()
            rebooted = False
            if row is not None and row[0] is not None and row[1] is not None:
                booted_later_by = (now - uptime) - (row[1] - row[0])
                rebooted = uptime < row[0] or booted_later_by > REBOOT_SLACK
            cur.execute(
                "INSERT INTO router_meta (router, reachable, last_uptime, last_seen, reboots) VALUES (?, 1, ?, ?, ?) "
                "ON CONFLICT (router) DO UPDATE SET reachable = 1, last_seen = excluded.last_seen, "
                "last_uptime = excluded.last_uptime, reboots = reboots + excluded.reboots",
                (router, uptime, now, 1 if rebooted else 0),
            )
            return rebooted

    def record_router_error(self, router: str, error: str, now: float, *, reachable: bool) -> None:
        with self._transaction() as cur:
            cur.execute(
                "INSERT INTO router_meta (router, reachable, last_error, error_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (router) DO UPDATE SET reachable = excluded.reachable, "
                "last_error = excluded.last_error, error_at = excluded.error_at",
                (router, 1 if reachable else 0, error, now),
            )

    def router_meta(self, router: str) -> RouterMeta:
        rows = self._read(
            "SELECT router, reachable, last_uptime, last_seen, last_error, error_at, reboots FROM router_meta "
            "WHERE router = ?",
            (router,),
        )
        if not rows:
            return RouterMeta(router, False, None, None, None, None, 0)
        r = rows[0]
        return RouterMeta(r[0], bool(r[1]), r[2], r[3], r[4], r[5], r[6])


_ROUTER_BLOCK_COLUMNS = (
    "SELECT rb.router, rb.address, b.reason, b.sid, b.state, b.expires_at, rb.status, rb.expires_at, "
    "rb.last_error, rb.attempts, rb.generation, rb.static FROM router_blocks rb JOIN blocks b ON b.address = rb.address"
)


def _router_block(r: tuple) -> RouterBlock:
    return RouterBlock(r[0], ipaddress.ip_address(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], bool(r[11]))


class _Transaction:
    """``with`` block holding the ledger lock around one IMMEDIATE transaction, or, inside a
    batch of the same thread, around a savepoint of the batch's transaction."""

    def __init__(self, ledger: "Ledger") -> None:
        self._ledger = ledger
        self._conn = ledger._conn
        self._lock = ledger._lock
        self._nested = False

    def __enter__(self) -> sqlite3.Cursor:
        self._lock.acquire()
        self._nested = self._ledger._batch_depth > 0  # the lock is ours: it is our batch
        try:
            self._conn.execute("SAVEPOINT change" if self._nested else "BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise
        return self._conn.cursor()

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self._nested:
                if exc_type:
                    self._conn.execute("ROLLBACK TO change")
                self._conn.execute("RELEASE change")
            else:
                self._conn.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self._lock.release()


class _Batch:
    """See Ledger.batch. Re-entrant: an inner batch joins the outer one."""

    def __init__(self, ledger: "Ledger") -> None:
        self._ledger = ledger

    def __enter__(self) -> "_Batch":
        ledger = self._ledger
        ledger._lock.acquire()
        if ledger._batch_depth == 0:
            try:
                ledger._conn.execute("BEGIN IMMEDIATE")
            except BaseException:
                ledger._lock.release()
                raise
        ledger._batch_depth += 1
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        ledger = self._ledger
        try:
            ledger._batch_depth -= 1
            if ledger._batch_depth == 0:
                try:
                    ledger._conn.execute("ROLLBACK" if exc_type else "COMMIT")
                except BaseException:
                    if ledger._conn.in_transaction:
                        ledger._conn.execute("ROLLBACK")
                    raise
        finally:
            ledger._lock.release()
