"""How the ledger's writes hold its connection: the lock and the SQLite transactions.

A ``Ledger`` has one connection and one re-entrant lock. Every change is a ``Transaction``:
the lock, then ``BEGIN IMMEDIATE`` (the write lock between processes is taken at once, so
SQLite's busy timeout, not a failed upgrade from a read, is what serialises writers). Inside a
``Batch`` of the same thread a change is a savepoint of the batch's one transaction instead,
so a storm costs one commit, and a change that fails is undone alone.
"""

from __future__ import annotations

import sqlite3
import threading
from types import TracebackType
from typing import Protocol


class Ledger(Protocol):
    """What the transactions hold of ``responder.ledger.Ledger`` (described here, not imported,
    so that the ledger imports this module and not the other way round)."""

    _conn: sqlite3.Connection
    _lock: threading.RLock
    _batch_depth: int


class Transaction:
    """``with`` block holding the ledger lock around one IMMEDIATE transaction, or, inside a
    batch of the same thread, around a savepoint of the batch's transaction."""

    def __init__(self, ledger: Ledger) -> None:
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

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._nested:
                if exc_type:
                    self._conn.execute("ROLLBACK TO change")
                self._conn.execute("RELEASE change")
            else:
                self._conn.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self._lock.release()


class Batch:
    """See Ledger.batch. Re-entrant: an inner batch joins the outer one."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def __enter__(self) -> Batch:
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

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
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
