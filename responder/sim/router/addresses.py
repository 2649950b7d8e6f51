"""The simulated router's address lists: how an address is normalised, an entry, one family's table.

Pure, no clock of its own: ``AddressTable`` expires entries off a heap at the time it is given.
``state.RouterState`` owns one table per family. Rules follow ROUTEROS.md §2.
"""

from __future__ import annotations

import heapq
import ipaddress
import re
from dataclasses import dataclass

from responder.routeros.duration import MAX_TIMEOUT_SECONDS, format_clock
from responder.sim.router.items import StateError, format_id

_DNS_NAME_RE = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?$")


def normalise_address(text: str, family: int) -> str:
    """The address as the router stores and prints it (ROUTEROS.md §2 "Normalisation").

    Host bits are cleared, an IPv4 /32 is bare, an IPv4 range that is exactly one prefix
    becomes the prefix, an IPv6 address without prefix becomes /128, and anything else that
    looks like a host name is kept as a DNS name. Raises StateError otherwise.
    """
    text = text.strip()
    if family == 4:
        if "-" in text:
            ranged = _normalise_v4_range(text)
            if ranged is not None:
                return ranged
        try:
            net = ipaddress.IPv4Network(text, strict=False)
        except ValueError:
            return _dns_name(text)
        return str(net.network_address) if net.prefixlen == 32 else str(net)
    if "-" in text and ":" in text:
        raise StateError(f"failure: {text} is not a valid dns name")
    try:
        net6 = ipaddress.IPv6Network(text, strict=False)
    except ValueError:
        return _dns_name(text)
    return str(net6)


def _normalise_v4_range(text: str) -> str | None:
    """None when ``text`` is not two IPv4 addresses around a dash (then it may be a DNS name)."""
    first, _, last = text.partition("-")
    try:
        low, high = ipaddress.IPv4Address(first.strip()), ipaddress.IPv4Address(last.strip())
    except ValueError:
        return None
    if low > high:
        raise StateError(f"failure: {text} is not a valid dns name")
    nets = list(ipaddress.summarize_address_range(low, high))
    if len(nets) == 1:
        net = nets[0]
        return str(net.network_address) if net.prefixlen == 32 else str(net)
    return f"{low}-{high}"


def _dns_name(text: str) -> str:
    if ":" in text or not _DNS_NAME_RE.match(text):
        raise StateError(f"failure: {text} is not a valid dns name")
    return text.lower()


@dataclass
class AddressEntry:
    number: int  # internal id; printed as ``*HEX``
    list: str
    address: str  # normalised
    comment: str = ""
    disabled: bool = False
    dynamic: bool = False
    deadline: float | None = None  # clock time the router removes it; None = no timeout
    created: float = 0.0

    @property
    def id(self) -> str:
        return format_id(self.number)


@dataclass(frozen=True)
class AddressEntryView:
    """What callers (tests, API server) get: a snapshot, remaining timeout in seconds."""

    id: str
    list: str
    address: str
    comment: str
    disabled: bool
    dynamic: bool
    timeout: float | None
    created: float


class AddressTable:
    """The entries of one family, indexed by number and by (list, address), expiring off a heap."""

    def __init__(self) -> None:
        self.by_number: dict[int, AddressEntry] = {}  # insertion order = print order
        self.by_key: dict[tuple[str, str], int] = {}
        self._deadlines: list[tuple[float, int]] = []  # (deadline, number); stale pairs are skipped
        self.next_number = 1

    def insert(self, entry: AddressEntry) -> None:
        self.by_number[entry.number] = entry
        self.by_key[(entry.list, entry.address)] = entry.number
        self.next_number = max(self.next_number, entry.number + 1)
        self.arm(entry)

    def arm(self, entry: AddressEntry) -> None:
        if entry.deadline is not None:
            heapq.heappush(self._deadlines, (entry.deadline, entry.number))

    def holds(self, list_name: str, address: str) -> bool:
        return (list_name, address) in self.by_key

    def discard(self, entry: AddressEntry) -> None:
        self.by_number.pop(entry.number, None)
        if self.by_key.get((entry.list, entry.address)) == entry.number:
            del self.by_key[(entry.list, entry.address)]

    def rekey(self, entry: AddressEntry, list_name: str, address: str) -> None:
        """``set list=/address=``: same number, same place in print order."""
        if self.by_key.get((entry.list, entry.address)) == entry.number:
            del self.by_key[(entry.list, entry.address)]
        entry.list, entry.address = list_name, address
        self.by_key[(list_name, address)] = entry.number

    def expire(self, now: float) -> None:
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, number = heapq.heappop(self._deadlines)
            entry = self.by_number.get(number)
            if entry is not None and entry.deadline == deadline:
                self.discard(entry)

    def drop_dynamic(self) -> None:
        for entry in [e for e in self.by_number.values() if e.dynamic]:
            self.discard(entry)
        self._deadlines = []


def check_timeout(timeout: float | None, limit: float = MAX_TIMEOUT_SECONDS) -> None:
    if timeout is not None and not 0 <= timeout <= limit:
        raise StateError(f"value of timeout is out of range (00:00:00 .. {format_clock(limit)})", kind="out-of-range")


__all__ = ["AddressEntry", "AddressEntryView", "AddressTable", "check_timeout", "normalise_address"]
