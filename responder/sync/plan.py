"""What one pass must do on one router, decided without touching it: ``plan_steps`` is a pure
function of the ledger rows for the router, the router's listing (when the pass took one) and
the time, so every catch-up case is tested without a router or a thread.

A block longer than the router's longest timeout becomes a *static* entry (no timeout), which
the router keeps across reboots and the worker removes at the block's end. Our static entries
are the ones whose comment starts with ``tzsp-ips``; a static entry someone added by hand is
never removed at expiry.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from responder.events import IPAddress
from responder.ledger import RouterBlock
from responder.routeros.commands import make_comment
from responder.routeros.duration import MAX_TIMEOUT_SECONDS

COMMENT_PREFIX = "tzsp-ips"  # make_comment's: how our entries are told from those added by hand

# A listed entry whose timeout is within this of what the ledger wants counts as in place.
# RouterOS shows whole seconds and our own clock moved while listing.
COVER_SLACK = 5.0
MIN_TIMEOUT = 1.0  # less remaining than this: let the block lapse rather than send it


@dataclass(frozen=True)
class Send:
    """Add ``address`` for ``timeout_s`` (the time remaining), so it ends at ``expires_at``;
    ``static``: without a timeout (longer than the router takes), removed by us at ``expires_at``."""

    address: IPAddress
    expires_at: float
    comment: str
    generation: int | None = None
    static: bool = False
    static_comment: str = field(default="", compare=False)  # if the router refuses the timeout as too long

    def as_static(self) -> Send:
        return replace(self, static=True, comment=self.static_comment or self.comment)


@dataclass(frozen=True)
class Remove:
    """Remove ``address``; ``final`` is the status then: "removed" (unblocked) or "expired" (our static entry ran out)."""

    address: IPAddress
    generation: int | None = None
    final: str = "removed"


@dataclass(frozen=True)
class Mark:
    """A ledger-only transition: nothing to send. ``static``: the entry found in place is our static one."""

    address: IPAddress
    status: str
    expires_at: float | None = None
    generation: int | None = None
    static: bool = False


Step = Send | Remove | Mark


def plan_steps(
    rows: Sequence[RouterBlock],
    actual: Mapping[IPAddress, object] | None,
    now: float,
    *,
    retry_failed: bool,
    max_timeout: float = float(MAX_TIMEOUT_SECONDS),
) -> list[Step]:
    """What to do on one router.

    ``rows`` are its ledger rows; ``actual`` maps each address in its list to the entry (with a
    ``timeout_s`` attribute, None for a static entry, and its ``comment``), or is None when we did
    not list (then the ledger is trusted). ``retry_failed`` also re-sends blocks the router refused
    before. A block with more than ``max_timeout`` left is sent as a static entry.
    """
    steps: list[Step] = []
    for row in rows:
        present = actual is not None and row.address in actual
        gen = row.generation
        if row.block_state == "unblocked" or row.status == "removing":
            if actual is not None and not present:
                steps.append(Mark(row.address, "removed", generation=gen))
            else:
                steps.append(Remove(row.address, gen))
            continue
        remaining = row.block_expires_at - now
        ours_static = present and _ours_static(actual[row.address])
        if remaining < MIN_TIMEOUT:
            # A dynamic entry ends by itself; a static one is ours to remove (known from the ledger,
            # or seen in the listing after we crashed between adding it and recording that).
            if (row.static and actual is None) or ours_static:
                steps.append(Remove(row.address, gen, final="expired"))
            else:
                steps.append(Mark(row.address, "expired", generation=gen))
            continue
        static = remaining > max_timeout
        send = Send(row.address, row.block_expires_at, _comment(row, static), gen, static, _comment(row, True))
        if row.status == "applied":
            if actual is not None and not present:
                steps.append(send)  # lost: rebooted, or removed by hand
            continue
        if row.status == "failed" and not retry_failed:
            continue
        if present and _covers(actual[row.address], remaining):
            steps.append(Mark(row.address, "applied", row.block_expires_at, gen, static=ours_static))
        elif row.status in ("pending", "failed"):
            steps.append(send)
    return steps


def _covers(entry: object, remaining: float) -> bool:
    timeout = getattr(entry, "timeout_s", None)
    return timeout is None or timeout >= remaining - COVER_SLACK


def _ours_static(entry: object) -> bool:
    """A static entry we added (our comment); one added by hand is never removed at expiry."""
    return getattr(entry, "timeout_s", 0) is None and str(getattr(entry, "comment", "")).startswith(COMMENT_PREFIX)


def _comment(row: RouterBlock, static: bool) -> str:
    if not static:
        return make_comment(row.sid, row.reason)
    # A static entry outlives a reboot and, should this host be gone for good, us: say when it ends.
    until = time.strftime("%Y-%m-%d %H:%MZ", time.gmtime(row.block_expires_at))
    return make_comment(row.sid, f"until {until}: {row.reason}")


def normalise_listing(listing: Mapping[object, object]) -> dict[IPAddress, object]:
    """Listing keyed by host address: ``1.2.3.4``, ``2001:db8::1/128`` and their text forms alike."""
    result: dict[IPAddress, object] = {}
    for key, entry in listing.items():
        try:
            if isinstance(key, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
                address = key
            else:
                network = ipaddress.ip_network(str(key), strict=False)
                if network.prefixlen != network.max_prefixlen:
                    continue  # a network entry is not one of our host blocks
                address = network.network_address
        except ValueError:
            continue  # a DNS-name entry someone else added
        result[address] = entry
    return result
