"""Moving every time in the ledger by a wall-clock step, so each block still ends at the same
real instant (see ``plumbing.steadyclock``). One transaction: every row or none."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from responder.ledger import Ledger

_SHIFTS = (
    "UPDATE blocks SET first_seen = first_seen + :d, last_seen = last_seen + :d, expires_at = expires_at + :d",
    "UPDATE router_blocks SET applied_at = applied_at + :d, expires_at = expires_at + :d, updated_at = updated_at + :d",
    "UPDATE offences SET at = at + :d",
    "UPDATE router_meta SET last_seen = last_seen + :d, error_at = error_at + :d",
    "UPDATE adoption SET requested_at = requested_at + :d",
)


def shift_times(ledger: Ledger, delta: float) -> None:
    with ledger._transaction() as cur:
        for statement in _SHIFTS:
            cur.execute(statement, {"d": delta})
