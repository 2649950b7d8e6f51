"""A damaged ledger file: found by SQLite's own check, moved aside (never deleted), replaced.

A ledger can be damaged by a bad disk, an unclean copy or a restore of half a file. Then it is
checked with ``PRAGMA quick_check``; if that fails (or the file is not a database at all), the
file and its WAL go aside as ``responder.sqlite3.damaged-20261207T134501Z`` (with ``-wal`` and
``-shm`` beside it), what could still be read of it is said, and a new, empty ledger starts. The
routers still hold our entries (their comments mark them as ours, their timeouts say how long
they have left): ``Ledger.request_adoption`` has each router's worker take them back into the
new ledger at its next full sync.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass

_SIDECARS = ("-wal", "-shm")


@dataclass(frozen=True)
class Damage:
    """A ledger that was moved aside: where it went, why, and what it held (as far as readable)."""

    path: str  # the ledger's own name, now a new, empty ledger
    moved_to: str
    problem: str  # what SQLite said
    lost: str  # "12 block(s) in force (2 static), 40 offence(s)", or why that is unknown

    def describe(self) -> str:
        return (
            f"the ledger {self.path} is damaged ({self.problem}); moved aside to {self.moved_to}; "
            f"it held {self.lost}; a new ledger is started and refilled from what the routers hold"
        )


def problem_of(path: str) -> str | None:
    """What is wrong with the database file at ``path`` (SQLite's words), or None if it is sound
    or absent. It never creates the file; it may replay its WAL, as any open does. A file that
    cannot be opened at all (permissions, a lock) is not called damaged: opening it says why."""
    if not os.path.exists(path):
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=10.0)) as conn:
            rows = conn.execute("PRAGMA quick_check(5)").fetchall()
    except sqlite3.OperationalError:
        return None
    except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed"
        return str(exc)
    problems = [str(row[0]) for row in rows if row and row[0] != "ok"]
    return "; ".join(problems)[:300] if problems else None


def is_damage(exc: BaseException) -> bool:
    """Is this SQLite error one a damaged file raises (rather than a full disk, a lock...)?"""
    if not isinstance(exc, sqlite3.DatabaseError) or isinstance(exc, sqlite3.OperationalError):
        return False
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text or "corrupt" in text


def what_it_held(path: str, now: float) -> str:
    """Counts from a damaged file, each as far as it can still be read."""
    queries = (
        ("block(s) in force", "SELECT count(*) FROM blocks WHERE state = 'active' AND expires_at > ?", (now,)),
        ("static", "SELECT count(DISTINCT address) FROM router_blocks WHERE static = 1 AND status = 'applied'", ()),
        ("offence(s)", "SELECT count(*) FROM offences", ()),
    )
    counts = {}
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2.0)) as conn:
            for name, sql, params in queries:
                try:
                    counts[name] = str(conn.execute(sql, params).fetchone()[0])
                except sqlite3.Error:
                    counts[name] = "an unknown number of"
    except sqlite3.Error as exc:
        return f"an unknown number of blocks and offences (unreadable: {exc})"
    return (
        f"{counts['block(s) in force']} block(s) in force ({counts['static']} static), "
        f"{counts['offence(s)']} offence(s) (escalation starts over for them)"
    )


def move_aside(path: str, now: float) -> str:
    """Rename ``path`` (and its -wal and -shm) to ``<path>.damaged-<UTC time>``; the new name."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    target = f"{path}.damaged-{stamp}"
    counter = 1
    while os.path.exists(target):  # two in one second: never overwrite an earlier one
        counter += 1
        target = f"{path}.damaged-{stamp}-{counter}"
    os.rename(path, target)
    for suffix in _SIDECARS:
        with contextlib.suppress(FileNotFoundError):
            os.rename(path + suffix, target + suffix)
    return target


def set_aside(path: str, problem: str, now: float) -> Damage:
    """Count what the damaged file held, then move it aside."""
    lost = what_it_held(path, now)
    return Damage(path=path, moved_to=move_aside(path, now), problem=problem, lost=lost)
