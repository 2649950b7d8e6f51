"""When the ledger file cannot be written (disk full, read-only, I/O errors): keep going in memory.

An IPS that stops blocking because a log partition filled up is worse than one that blocks from
memory for a while. ``degrade`` copies the ledger into an in-memory SQLite database (reading still
works on a full disk) and the ledger's connection switches to it: every writer (the service's
passes, the routers' workers) carries on unchanged, and the file stays as it was. ``restore``
writes the memory back over the file (SQLite's backup API, one transaction) once that works again,
so what was done meanwhile is recorded and a restart neither loses nor repeats it.

While degraded, the workers send only blocks with a RouterOS timeout: a static entry would outlive
us unrecorded should we stop before the ledger is written, so such a block waits. What is held is
bounded by the caller (``responder.Responder``: a number of new blocks).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass
from typing import Protocol


class Ledger(Protocol):
    """What the switch holds of ``responder.ledger.Ledger`` (described here, not imported, so that
    the ledger imports this module and not the other way round)."""

    path: str
    degraded: Degraded | None
    _lock: threading.RLock
    _batch_depth: int
    _conn: sqlite3.Connection
    _file_conn: sqlite3.Connection | None


_WRITE_ERRORS = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_CANTOPEN")
_WRITE_WORDS = ("disk is full", "disk i/o error", "readonly database", "unable to open database file")


@dataclass(frozen=True)
class Degraded:
    reason: str  # SQLite's words: "database or disk is full"
    since: float  # wall time, for people


def is_write_failure(exc: BaseException) -> bool:
    """Did SQLite fail to write the file (as opposed to a damaged file, a lock timeout, a bug)?"""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    name = getattr(exc, "sqlite_errorname", "") or ""  # Python 3.11+
    if name.startswith(_WRITE_ERRORS):
        return True
    text = str(exc).lower()
    return any(words in text for words in _WRITE_WORDS)


def open_file(path: str) -> sqlite3.Connection:
    """The ledger file's connection, as the ledger uses it (WAL, one connection per process)."""
    conn = sqlite3.connect(path, timeout=10.0, check_same_thread=False, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def open_in_memory(path: str) -> sqlite3.Connection:
    """A copy of the file at ``path`` in memory, read without writing anything (not even the WAL's
    index, which a full disk refuses): ``immutable`` reads the file as it is. An empty one if absent."""
    memory = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    if os.path.exists(path):
        source = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
        try:
            source.backup(memory)
        finally:
            source.close()
    memory.execute("PRAGMA foreign_keys = ON")
    return memory


def degrade(ledger: Ledger, reason: str, now: float) -> bool:
    """Switch ``ledger`` to an in-memory copy of itself; False if it already runs from memory.
    Raises sqlite3.Error if even reading the file fails (then there is nothing to go on from)."""
    with ledger._lock:
        if ledger.degraded is not None:
            return False
        if ledger._batch_depth:
            raise RuntimeError("degrade() inside a ledger batch")
        file_conn = ledger._conn
        if file_conn.in_transaction:
            file_conn.execute("ROLLBACK")
        memory = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        try:
            file_conn.backup(memory)
            memory.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            memory.close()
            raise
        ledger._file_conn, ledger._conn = file_conn, memory
        ledger.degraded = Degraded(reason, now)
        return True


def restore(ledger: Ledger) -> bool:
    """Write the in-memory ledger over the file and go back to it; False (and still in memory)
    if the file cannot be written yet, or a batch is open."""
    with ledger._lock:
        if ledger.degraded is None:
            return True
        if ledger._batch_depth:
            return False
        memory, file_conn = ledger._conn, ledger._file_conn
        try:
            if file_conn is None:  # it could not even be opened at start
                file_conn = ledger._file_conn = open_file(ledger.path)
            memory.backup(file_conn)
        except sqlite3.Error:
            if file_conn is not None and file_conn.in_transaction:
                try:
                    file_conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            return False
        ledger._conn, ledger._file_conn = file_conn, None
        ledger.degraded = None
        memory.close()
        return True


def memory_bytes(ledger: Ledger) -> int:
    """What the in-memory copy takes now (0 when the file is in use)."""
    if ledger.degraded is None:
        return 0
    with ledger._lock:
        pages = ledger._conn.execute("PRAGMA page_count").fetchone()[0]
        size = ledger._conn.execute("PRAGMA page_size").fetchone()[0]
    return int(pages) * int(size)
