"""How long a block lasts: the base duration, the escalation for repeat offenders, the cap.

Pure. The base is the first that applies, in this order:

1. ``policy.block_for_networks``: the attacker is in one of these networks (the longest prefix wins);
2. ``policy.block_for_rules``: the alert's "gid:sid";
3. ``policy.block_for``.

A network wins over a rule because it says something about the address itself (a partner's NAT
gateway, a network of known scanners), whatever it did. The n-th block of an address within
``remember_for`` lasts ``base * repeat_factor^(n-1)``, at most ``max_block_for``; ``describe``
says how it got there: "16h: 3rd offence; rule 1:1000122 sets 1h; ×16".

``OffenceMemory`` is the in-memory offence history (``snort-bridge check``, tests, dry runs);
``snort-bridge run`` counts offences in the ledger instead (responder.ledger), so they survive restarts.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Protocol

from bridge.config import Network, PolicyConfig
from responder.routeros.duration import format_duration

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_REMEMBERED = 100_000  # addresses whose offences the in-memory history keeps, oldest dropped first


@dataclass(frozen=True)
class BlockDuration:
    seconds: float
    offence: int  # this block is the n-th of the address within remember_for
    base: float
    source: str  # "block_for", "rule 1:1000122", "network 203.0.113.0/24"
    factor: float  # what escalation multiplied the base by (before the cap)
    capped: bool

    def explain(self) -> str:
        """ "3rd offence; rule 1:1000122 sets 1h; ×16; capped at max_block_for 1w"."""
        parts = [f"{ordinal(self.offence)} offence", f"{self.source} sets {format_duration(self.base)}"]
        if self.factor != 1 and self.factor != float("inf"):
            parts.append(f"×{self.factor:g}")
        if self.capped:
            parts.append(f"capped at max_block_for {format_duration(self.seconds)}")
        return "; ".join(parts)

    def describe(self) -> str:
        """ "16h: 3rd offence; rule 1:1000122 sets 1h; ×16"."""
        return f"{format_duration(self.seconds)}: {self.explain()}"


def block_duration(config: PolicyConfig, target: IPAddress, gid_sid: str, earlier_offences: int) -> BlockDuration:
    """The duration of a block of ``target`` for an alert of ``gid_sid``, after ``earlier_offences``
    blocks of it within ``config.remember_for`` (``config`` is a bridge.config.PolicyConfig)."""
    base, source = base_duration(config, target, gid_sid)
    offence = max(0, earlier_offences) + 1
    try:
        factor = float(config.repeat_factor) ** (offence - 1)
    except OverflowError:  # a very persistent offender: far beyond any cap
        factor = float("inf")
    seconds = base * factor
    capped = seconds > config.max_block_for
    return BlockDuration(min(seconds, config.max_block_for), offence, base, source, factor, capped)


def base_duration(config: PolicyConfig, target: IPAddress, gid_sid: str) -> tuple[float, str]:
    """(seconds, where it came from) before escalation."""
    best: tuple[Network, float] | None = None
    for network, seconds in config.block_for_networks.items():
        if network.version == target.version and target in network:
            if best is None or network.prefixlen > best[0].prefixlen:
                best = (network, seconds)
    if best is not None:
        return best[1], f"network {best[0]}"
    if gid_sid in config.block_for_rules:
        return config.block_for_rules[gid_sid], f"rule {gid_sid}"
    return config.block_for, "block_for"


def ordinal(number: int) -> str:
    if 10 <= number % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


class OffenceHistory(Protocol):
    """Where the policy learns how often an address was blocked before."""

    def count(self, address: IPAddress, since: float) -> int:
        """Blocks of ``address`` at or after ``since``."""

    def note(self, address: IPAddress, at: float) -> None:
        """The policy decided to block ``address`` at ``at``."""


class LedgerWithOffences(Protocol):
    """What ``LedgerOffences`` needs of the responder's ledger (``responder.ledger.Ledger``)."""

    def offence_count(self, address: IPAddress, since: float) -> int: ...


class OffenceMemory:
    """Offences in memory (lost at exit): for `check`, dry runs and tests."""

    def __init__(self, limit: int = MAX_REMEMBERED) -> None:
        self._times: OrderedDict[IPAddress, deque[float]] = OrderedDict()
        self._limit = limit

    def count(self, address: IPAddress, since: float) -> int:
        return sum(1 for at in self._times.get(address, ()) if at >= since)

    def note(self, address: IPAddress, at: float) -> None:
        times = self._times.pop(address, None) or deque(maxlen=64)
        times.append(at)
        self._times[address] = times
        while len(self._times) > self._limit:
            self._times.popitem(last=False)

    def forget(self, address: IPAddress) -> None:
        self._times.pop(address, None)


class LedgerOffences:
    """Offences as the responder's ledger records them: one per new block, kept across restarts.

    ``note`` does nothing: ``Ledger.record_block`` records the offence in the same transaction as
    the block, so a block the responder refused is no offence, and `unblock` clears them.
    """

    def __init__(self, ledger: LedgerWithOffences) -> None:
        self.ledger = ledger

    def count(self, address: IPAddress, since: float) -> int:
        return self.ledger.offence_count(address, since)

    def note(self, address: IPAddress, at: float) -> None:
        pass
