"""What the responder is asked to do and what it did, as small frozen dataclasses."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class BlockRequest:
    """What the bridge hands the responder: block ``address`` for ``duration`` seconds on every router."""

    address: IPAddress
    duration: float
    reason: str
    sid: str = ""  # "gid:sid" or "" for manual blocks
    requested_at: float = field(default=0.0)  # time.time() when decided
    duration_why: str = ""  # where the duration came from ("2nd offence; block_for sets 5m; ×4", "by hand")
    source: str = ""  # where the alert was read ("file:line", hence the sensor); "" for manual blocks

    def __post_init__(self) -> None:
        if not isinstance(self.address, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            raise TypeError(f"block target must be an ipaddress address, got {type(self.address).__name__}")
        if self.duration <= 0:
            raise ValueError("block duration must be positive")
