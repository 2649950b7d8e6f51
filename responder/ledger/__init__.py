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

Here: opening the file and every change to it. The tables and their migration are in
``responder.ledger.schema``, the read-only queries in ``responder.ledger.queries``, the lock and
transaction discipline in ``responder.ledger.transactions``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from responder.events import BlockRequest, IPAddress
from responder.ledger.damage import Damage, is_damage, problem_of, set_aside
from responder.ledger.fallback import Degraded, is_write_failure, open_file, open_in_memory
from responder.ledger.queries import BlockRecord, LedgerQueries, RouterBlock, RouterMeta, RouterState
from responder.ledger.schema import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    SCHEMA_VERSION,
    STATUSES,
    LedgerError,
    address_key,
    migrate,
)
from responder.ledger.transactions import Batch, Transaction

# Users of the ledger import its names from here, whichever of the modules above holds them.
__all__ = [
    "Ledger",
    "LedgerError",
    "BlockOutcome",
    "BlockRecord",
    "RouterBlock",
    "RouterMeta",
    "RouterState",
    "STATUSES",
    "OPEN_STATUSES",
    "FINAL_STATUSES",
    "SCHEMA_VERSION",
    "LEDGER_FILE",
    "address_key",
    "refresh_threshold",
    "Damage",
    "is_damage",
    "mark_damaged",
    "DAMAGE_MARK",
]

LEDGER_FILE = "responder.sqlite3"
DAMAGE_MARK = ".damage-found"  # beside the ledger: SQLite said it is damaged while we ran
REBOOT_SLACK = 5.0  # seconds of disagreement between our clock and a router's uptime we ignore

_UPSERT_STATUS = (
    "INSERT INTO router_blocks (router, address, status, attempts, updated_at) VALUES (?, ?, ?, 0, ?) "
    "ON CONFLICT (router, address) DO UPDATE SET status = excluded.status, last_error = NULL, "
    "updated_at = excluded.updated_at, generation = generation + 1"
)


@dataclass(frozen=True)
class BlockOutcome:
    """What record_block did: ``new``, ``extended`` (routers re-armed) or ``unchanged``."""

    kind: str
    expires_at: float


def refresh_threshold(duration: float) -> float:
    """A repeated block re-arms the routers only if it moves the expiry by more than this.

    Without it, an attacker whose every packet raises an alert would cost one command per
    alert per router; with it, at most about twenty refreshes per block duration.
    """
    return max(1.0, 0.05 * duration)


class Ledger(LedgerQueries):
    """Opens the ledger file and makes every change to it; the queries come from ``LedgerQueries``."""

    def __init__(self, path: str) -> None:
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, mode=0o750, exist_ok=True)
        self._lock = threading.RLock()
        self._batch_depth = 0  # > 0 while the thread holding the lock runs a batch
        self.damage: Damage | None = None  # set by open_checked when a damaged file was set aside
        self.degraded: Degraded | None = None  # running from memory: the file cannot be written (fallback)
        self._file_conn: sqlite3.Connection | None = None  # the file's connection meanwhile (None: to open)
        try:
            self._conn = open_file(path)
            self._migrate()
        except sqlite3.DatabaseError as exc:
            if not is_write_failure(exc):
                raise LedgerError(f"{path}: cannot use the ledger: {exc}") from exc
            # A full or read-only disk at start: start from a copy in memory (fallback.restore writes it later)
            try:
                self._conn = open_in_memory(path)
                self._migrate()
            except sqlite3.DatabaseError as again:
                raise LedgerError(f"{path}: cannot use the ledger: {exc}; nor read it: {again}") from exc
            self.degraded = Degraded(str(exc), time.time())

    @classmethod
    def in_state_dir(cls, state_dir: str) -> Ledger:
        return cls(os.path.join(state_dir, LEDGER_FILE))

    @classmethod
    def open_checked(cls, path: str, now: float | None = None) -> Ledger:
        """The ledger at ``path``, checked first (``PRAGMA quick_check``, or a damage noted while
        running, ``mark_damaged``): a damaged file is moved aside and a new one started; then
        ``damage`` says what happened, and the caller has the routers' entries taken back."""
        now = time.time() if now is None else now
        mark = path + DAMAGE_MARK
        try:
            with open(mark, encoding="utf-8", errors="replace") as handle:
                problem: str | None = handle.read(300).strip() or "damage found while running"
        except FileNotFoundError:
            problem = None
        if problem is None or not os.path.exists(path):
            problem = problem_of(path)
        damage = set_aside(path, problem, now) if problem is not None else None
        ledger = cls(path)
        ledger.damage = damage
        if os.path.exists(mark):
            os.unlink(mark)
        return ledger

    @property
    def lock(self) -> threading.RLock:
        """The ledger's lock: held, no other thread reads or writes it (a clock step's shift)."""
        return self._lock

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            if self._file_conn is not None:
                self._file_conn.close()

    # -- plumbing -------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._transaction() as cur:
            migrate(cur, self.path)

    def _transaction(self) -> Transaction:
        return Transaction(self)

    def batch(self) -> Batch:
        """``with ledger.batch():`` -- every change made inside (by this thread) is one
        transaction, committed durably once at the end: a storm of blocks costs one commit per
        pass, not one per block. Other threads wait for the ledger meanwhile. A change that
        fails inside is undone alone (a savepoint); the rest of the batch still commits."""
        return Batch(self)

    # -- blocks ---------------------------------------------------------------------------

    def record_block(self, request: BlockRequest, routers: Iterable[str], now: float) -> BlockOutcome:
        """Remember ``request`` and mark it pending on ``routers`` where it needs sending."""
        return self.record_blocks([request], routers, now)[0]

    def record_blocks(self, requests: Sequence[BlockRequest], routers: Iterable[str], now: float) -> list[BlockOutcome]:
        """``record_block`` for each request, in order, as one transaction with a few
        statements for all of them (a storm of 10,000 blocks is a handful of statements)."""
        routers = list(routers)
        keys = [address_key(request.address) for request in requests]
        outcomes: list[BlockOutcome] = []
        inserts, updates, touches = [], [], []
        pending: dict[str, None] = {}
        with self._transaction() as cur:
            known: dict[str, tuple[float, str]] = {}
            unique = list(dict.fromkeys(keys))
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, expires, state in cur.execute(
                    f"SELECT address, expires_at, state FROM blocks WHERE address IN ({marks})", chunk
                ):
                    known[key] = (expires, state)
            offences = []
            for request, key in zip(requests, keys, strict=True):
                decided_at = request.requested_at or now
                expires_at = decided_at + request.duration
                row = known.get(key)
                if row is None:
                    inserts.append(
                        (
                            key,
                            request.reason,
                            request.sid,
                            decided_at,
                            decided_at,
                            expires_at,
                            request.duration,
                            request.duration_why,
                            request.source,
                        )
                    )
                    offences.append((key, decided_at, request.sid, request.duration))
                    known[key] = (expires_at, "active")
                    outcomes.append(BlockOutcome("new", expires_at))
                    pending[key] = None
                    continue
                old_expires, state = row
                live = state == "active" and old_expires > now
                if live and expires_at - old_expires <= refresh_threshold(request.duration):
                    touches.append((decided_at, key))
                    outcomes.append(BlockOutcome("unchanged", old_expires))
                    continue
                new_expires = max(expires_at, old_expires if live else 0.0)
                updates.append(
                    (
                        request.reason,
                        request.sid,
                        decided_at,
                        new_expires,
                        request.duration,
                        request.duration_why,
                        request.source,
                        key,
                    )
                )
                known[key] = (new_expires, "active")
                if not live:
                    offences.append((key, decided_at, request.sid, request.duration))
                outcomes.append(BlockOutcome("extended" if live else "new", expires_at))
                pending[key] = None
            cur.executemany(
                "INSERT INTO blocks (address, reason, sid, first_seen, last_seen, expires_at, state, duration, "
                "duration_why, source) VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?, ?)",
                inserts,
            )
            cur.executemany(
                "UPDATE blocks SET reason = ?, sid = ?, last_seen = ?, expires_at = ?, state = 'active', "
                "duration = ?, duration_why = ?, source = ? WHERE address = ?",
                updates,
            )
            cur.executemany("INSERT INTO offences (address, at, sid, duration) VALUES (?, ?, ?, ?)", offences)
            cur.executemany("UPDATE blocks SET last_seen = ? WHERE address = ?", touches)
            cur.executemany(
                _UPSERT_STATUS + ", attempts = 0",
                [(router, key, "pending", now) for key in pending for router in routers],
            )
        return outcomes

    def record_unblock(
        self, address: IPAddress, routers: Iterable[str], now: float, *, keep_offences: bool = False
    ) -> bool:
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
    def _upsert_status(
        cur: sqlite3.Cursor, router: str, key: str, status: str, now: float, reset_attempts: bool
    ) -> None:
        cur.execute(_UPSERT_STATUS + (", attempts = 0" if reset_attempts else ""), (router, key, status, now))

    def set_status(
        self,
        router: str,
        address: IPAddress,
        status: str,
        now: float,
        *,
        expires_at: float | None = None,
        error: str | None = None,
        attempted: bool = False,
        generation: int | None = None,
        static: bool | None = None,
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
                (
                    status,
                    error,
                    now,
                    1 if attempted else 0,
                    status,
                    now,
                    expires_at,
                    None if static is None else int(static),
                    router,
                    key,
                    generation,
                    generation,
                ),
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

    # -- forgetting -----------------------------------------------------------------------

    def purge_offences(self, before: float) -> int:
        """Forget offences older than ``before`` (now - remember_for)."""
        with self._transaction() as cur:
            cur.execute("DELETE FROM offences WHERE at < ?", (before,))
            return cur.rowcount

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


def mark_damaged(path: str, problem: str) -> None:
    """Note that SQLite found the ledger at ``path`` damaged while running: the next
    ``open_checked`` sets it aside even if its quick check passes. Best effort (the disk may be the problem)."""
    try:
        with open(path + DAMAGE_MARK, "w", encoding="utf-8") as handle:
            handle.write(problem[:300] + "\n")
    except OSError:
        pass
