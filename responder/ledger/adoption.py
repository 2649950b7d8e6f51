"""Taking our entries back from the routers into a new ledger (after a damaged one was set aside,
or ``snort-bridge ledger rebuild-from-routers``).

``request_adoption`` notes, in the ledger itself, which routers still have to be read: a restart
before a router is back keeps the request. Each router's worker, at its next full sync, hands the
entries of its listing that carry our comment (``responder.sync.adopt``) to ``adopt``, which makes
them ledger records again: a timed entry ends when its RouterOS timeout runs out, a static one at
the time its comment names (and is removed by us then, as before).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from responder.events import IPAddress
from responder.ledger.schema import address_key

if TYPE_CHECKING:
    from responder.ledger import Ledger

ADOPTED_WHY = "taken back from the routers"


@dataclass(frozen=True)
class Adopted:
    """One of our entries found on a router: blocked until ``expires_at``."""

    address: IPAddress
    expires_at: float
    static: bool
    sid: str = ""
    reason: str = ""


def request_adoption(ledger: Ledger, routers: Iterable[str], now: float) -> None:
    with ledger._transaction() as cur:
        cur.executemany(
            "INSERT INTO adoption (router, requested_at) VALUES (?, ?) ON CONFLICT (router) DO NOTHING",
            [(router, now) for router in routers],
        )


def adoption_pending(ledger: Ledger, router: str) -> bool:
    return bool(ledger._read("SELECT 1 FROM adoption WHERE router = ?", (router,)))


def routers_to_adopt(ledger: Ledger) -> list[str]:
    return [row[0] for row in ledger._read("SELECT router FROM adoption ORDER BY router")]


def adopt(ledger: Ledger, router: str, entries: Sequence[Adopted], now: float) -> int:
    """Record ``entries`` as applied on ``router`` and close its request; the number of new blocks.

    A block the ledger already has (from another router's listing, or a new alert meanwhile)
    keeps the later of the two ends; a router row that exists already is left as it is."""
    new = 0
    with ledger._transaction() as cur:
        # the other routers the ledger knows of (configured ones are all asked for their entries)
        others = [
            row[0]
            for row in cur.execute("SELECT router FROM adoption UNION SELECT router FROM router_meta")
            if row[0] != router
        ]
        for entry in entries:
            if entry.expires_at <= now:
                continue
            key = address_key(entry.address)
            row = cur.execute("SELECT expires_at FROM blocks WHERE address = ?", (key,)).fetchone()
            if row is None:
                cur.execute(
                    "INSERT INTO blocks (address, reason, sid, first_seen, last_seen, expires_at, state, duration, "
                    "duration_why, source) VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?, '')",
                    (
                        key,
                        entry.reason or "blocked",
                        entry.sid,
                        now,
                        now,
                        entry.expires_at,
                        entry.expires_at - now,
                        ADOPTED_WHY,
                    ),
                )
                cur.execute(
                    "INSERT INTO offences (address, at, sid, duration) VALUES (?, ?, ?, ?)",
                    (key, now, entry.sid, entry.expires_at - now),
                )
                # wanted on every router: one that lacks it (it was down) gets it; one that has it
                # confirms it at its full sync (its own entry, read from its listing, wins then)
                cur.executemany(
                    "INSERT INTO router_blocks (router, address, status, attempts, updated_at) "
                    "VALUES (?, ?, 'pending', 0, ?) ON CONFLICT (router, address) DO NOTHING",
                    [(other, key, now) for other in others],
                )
                new += 1
            elif entry.expires_at > row[0]:
                cur.execute(
                    "UPDATE blocks SET expires_at = ?, state = 'active' WHERE address = ?", (entry.expires_at, key)
                )
            cur.execute(
                "INSERT INTO router_blocks (router, address, status, applied_at, expires_at, attempts, updated_at, "
                "static) VALUES (?, ?, 'applied', ?, ?, 0, ?, ?) ON CONFLICT (router, address) DO UPDATE SET "
                "status = 'applied', applied_at = excluded.applied_at, expires_at = excluded.expires_at, "
                "static = excluded.static WHERE router_blocks.status = 'pending'",
                (router, key, now, entry.expires_at, now, int(entry.static)),
            )
        cur.execute("DELETE FROM adoption WHERE router = ?", (router,))
    return new
