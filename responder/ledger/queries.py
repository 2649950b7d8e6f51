"""The ledger's read side: what the workers, ``list``, ``routers`` and the status page ask of it,
and the records the answers come in.

Each read is one statement under the ledger's lock (threads share the connection) and opens
no transaction of its own: in WAL mode it sees the last commit and holds up no writer in
another process. ``LedgerQueries`` is the read half of ``responder.ledger.Ledger``, which opens the
connection and writes.
"""

from __future__ import annotations

import ipaddress
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from responder.events import IPAddress
from responder.ledger.schema import OPEN_STATUSES, address_key


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
    expires_at: float | None  # the router entry's end as last sent
    last_error: str | None
    attempts: int
    generation: int = 0
    static: bool = False  # the router holds a static entry we must remove when the block ends


@dataclass(frozen=True)
class RouterState:
    status: str
    expires_at: float | None
    last_error: str | None
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
    routers: dict[str, RouterState]
    duration: float = 0.0
    duration_why: str = ""
    offences: int = 0  # within the remember_for the caller asked about
    source: str = ""  # where the alert that made (or last renewed) the block was read: "file:line"


@dataclass(frozen=True)
class RouterMeta:
    router: str
    reachable: bool
    last_uptime: float | None
    last_seen: float | None
    last_error: str | None
    error_at: float | None
    reboots: int


_ROUTER_BLOCK_COLUMNS = (
    "SELECT rb.router, rb.address, b.reason, b.sid, b.state, b.expires_at, rb.status, rb.expires_at, "
    "rb.last_error, rb.attempts, rb.generation, rb.static FROM router_blocks rb JOIN blocks b ON b.address = rb.address"
)


def _router_block(r: tuple) -> RouterBlock:
    return RouterBlock(
        r[0], ipaddress.ip_address(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], bool(r[11])
    )


class LedgerQueries:
    """Read-only methods of ``Ledger``; it sets ``_conn`` and ``_lock``."""

    _conn: sqlite3.Connection
    _lock: threading.RLock

    def _read(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    # -- what a router's worker has to do ----------------------------------------------------

    def router_blocks(self, router: str, statuses: Sequence[str] = OPEN_STATUSES) -> list[RouterBlock]:
        """The rows of ``router`` whose status is one of ``statuses``, oldest change first."""
        marks = ",".join("?" for _ in statuses)
        rows = self._read(
            f"{_ROUTER_BLOCK_COLUMNS} WHERE rb.router = ? AND rb.status IN ({marks}) ORDER BY rb.updated_at, rb.address",
            (router, *statuses),
        )
        return [_router_block(r) for r in rows]

    def static_due(self, router: str, now: float) -> list[RouterBlock]:
        """Static entries on ``router`` whose block has ended: ours to remove now (an unblock is "removing")."""
        rows = self._read(
            f"{_ROUTER_BLOCK_COLUMNS} WHERE rb.router = ? AND rb.static = 1 AND rb.status = 'applied' "
            "AND b.expires_at <= ? ORDER BY rb.updated_at, rb.address",
            (router, now),
        )
        return [_router_block(r) for r in rows]

    def pending_count(self, router: str, now: float) -> int:
        """Blocks still to be sent to (or removed from) ``router``."""
        row = self._read(
            "SELECT COUNT(*) FROM router_blocks rb JOIN blocks b ON b.address = rb.address WHERE rb.router = ? "
            "AND ((rb.status IN ('pending', 'failed') AND b.state = 'active' AND b.expires_at > ?) "
            "OR rb.status = 'removing' OR (rb.static = 1 AND rb.status = 'applied' AND b.expires_at <= ?))",
            (router, now, now),
        )
        return int(row[0][0])

    # -- offences -----------------------------------------------------------------------------

    def offence_count(self, address: IPAddress, since: float) -> int:
        """Blocks of ``address`` recorded at or after ``since``."""
        row = self._read("SELECT COUNT(*) FROM offences WHERE address = ? AND at >= ?", (address_key(address), since))
        return int(row[0][0])

    def offence_counts(self, since: float) -> dict[str, int]:
        """Offences per address (ledger text form) at or after ``since``."""
        rows = self._read("SELECT address, COUNT(*) FROM offences WHERE at >= ? GROUP BY address", (since,))
        return {address: int(count) for address, count in rows}

    # -- blocks and routers, for list, status and the CLI ----------------------------------

    def router_state(self, router: str, address: IPAddress) -> RouterState | None:
        rows = self._read(
            "SELECT status, expires_at, last_error, attempts, static FROM router_blocks WHERE router = ? AND address = ?",
            (router, address_key(address)),
        )
        if not rows:
            return None
        status, expires_at, last_error, attempts, static = rows[0]
        return RouterState(status, expires_at, last_error, attempts, bool(static))

    def blocks(
        self, now: float, include_inactive: bool = False, offences_since: float | None = None
    ) -> list[BlockRecord]:
        """Blocks in force (and, with ``include_inactive``, expired and unblocked ones), each with per-router state
        (and, with ``offences_since``, its offences since then)."""
        where = (
            ""
            if include_inactive
            else "WHERE (state = 'active' AND expires_at > ?) OR address IN "
            "(SELECT address FROM router_blocks WHERE status = 'removing')"
        )
        params: tuple = () if include_inactive else (now,)
        rows = self._read(
            f"SELECT address, reason, sid, first_seen, last_seen, expires_at, state, duration, duration_why, source FROM blocks "
            f"{where} ORDER BY first_seen, address",
            params,
        )
        per_router: dict[str, dict[str, RouterState]] = {}
        for router, address, status, expires_at, error, attempts, static in self._read(
            "SELECT router, address, status, expires_at, last_error, attempts, static FROM router_blocks ORDER BY router"
        ):
            per_router.setdefault(address, {})[router] = RouterState(status, expires_at, error, attempts, bool(static))
        counts = self.offence_counts(offences_since) if offences_since is not None else {}
        return [
            BlockRecord(
                ipaddress.ip_address(r[0]),
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                r[6],
                per_router.get(r[0], {}),
                r[7],
                r[8],
                counts.get(r[0], 0),
                r[9],
            )
            for r in rows
        ]

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
