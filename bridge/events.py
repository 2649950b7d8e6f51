"""The events that travel along the bridge: alert line -> Alert -> Decision.

Both are small frozen dataclasses. Addresses are always ``ipaddress`` objects (never text
taken from a line), so whatever later reaches a router has been accepted by ``ipaddress``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

PORTSCAN_GID = 122  # Snort 2 sfportscan and Snort 3 port_scan both raise gid 122


@dataclass(frozen=True)
class Origin:
    """Where an alert line was read: file (or "-" / "udp:host:port"), byte offset, 1-based line number."""

    source: str
    offset: int = 0
    line: int = 0

    def __str__(self) -> str:
        return f"{self.source}:{self.line}" if self.line else f"{self.source}@{self.offset}"


_set = object.__setattr__  # how a frozen instance gets its attributes


@dataclass(frozen=True, init=False)
class Alert:
    """One alert as the engine wrote it, whatever the output format.

    A frozen dataclass whose ``__init__`` is written out (same parameters, order and
    defaults as the fields; a test keeps them equal): it fills the instance dict in one step
    instead of one ``object.__setattr__`` per field, which made construction a third of the
    cost of parsing a line.
    """

    gid: int
    sid: int
    rev: int
    msg: str
    format: str  # fast | syslog | json | csv | eve | routeros-log | scan-detector
    origin: Origin
    priority: int | None = None
    classification: str | None = None
    proto: str | None = None  # "TCP", "UDP", "ICMP", "PROTO:255", ...
    src: IPAddress | None = None
    sport: int | None = None
    dst: IPAddress | None = None
    dport: int | None = None
    time: datetime | None = None
    engine: str | None = None  # "snort2" | "snort3" | "suricata" | "tzsp-ips" when known
    # Evidence for attribution; only some formats carry it (Snort 3 alert_json, Suricata eve).
    direction: str | None = None  # "C2S" | "S2C" | ...
    tcp_flags: str | None = None  # Snort's "***A*R**" form
    icmp_type: int | None = None

    def __init__(
        self,
        gid: int,
        sid: int,
        rev: int,
        msg: str,
        format: str,
        origin: Origin,
        priority: int | None = None,
        classification: str | None = None,
        proto: str | None = None,
        src: IPAddress | None = None,
        sport: int | None = None,
        dst: IPAddress | None = None,
        dport: int | None = None,
        time: datetime | None = None,
        engine: str | None = None,
        direction: str | None = None,
        tcp_flags: str | None = None,
        icmp_type: int | None = None,
    ) -> None:
        _set(
            self,
            "__dict__",
            {
                "gid": gid,
                "sid": sid,
                "rev": rev,
                "msg": msg,
                "format": format,
                "origin": origin,
                "priority": priority,
                "classification": classification,
                "proto": proto,
                "src": src,
                "sport": sport,
                "dst": dst,
                "dport": dport,
                "time": time,
                "engine": engine,
                "direction": direction,
                "tcp_flags": tcp_flags,
                "icmp_type": icmp_type,
            },
        )

    @property
    def gid_sid(self) -> str:
        return f"{self.gid}:{self.sid}"

    @property
    def is_portscan(self) -> bool:
        return self.gid == PORTSCAN_GID


# Every value Decision.reason takes; metrics label decisions with these and nothing else.
DECISION_REASONS = (
    "priority",  # block: priority <= min_priority
    "portscan",  # block: a port scan (gid 122 or the built-in detector)
    "included",  # block: gid:sid in include_sids
    "excluded",  # ignore: gid:sid in exclude_sids
    "not_included",  # ignore: include_sids is set and this is not in it
    "low_priority",  # ignore: priority > min_priority
    "portscan_off",  # ignore: a port scan while policy.portscan = false
    "no_priority",  # ignore: the format carries no priority
    "no_attacker",  # ignore: no end could be safely named the attacker
    "protected",  # ignore: the attacker end is protected
    "threshold",  # ignore: fewer than threshold alerts within window
    "already_blocked",  # ignore: folded into a block in force
    "flood_guard",  # ignore: the flood guard holds
)


@dataclass(frozen=True)
class Decision:
    """What the policy made of one alert. ``target`` is set only when ``action == "block"``."""

    action: Literal["block", "ignore"]
    why: str
    alert: Alert
    target: IPAddress | None = None
    block_for: float = 0.0  # seconds; the address-list timeout
    attribution: str = ""  # how the attacker end was chosen, e.g. "src (default)", "dst: reply packet (S2C)"
    # Why, as one word from DECISION_REASONS: a bounded label for metrics and digests (``why`` is for people).
    reason: str = ""
    duration_why: str = ""  # how block_for was reached, e.g. "3rd offence; rule 1:1000122 sets 1h; ×16"

    @property
    def source(self) -> str:
        """Where the alert was read ("file:line"; with several sensors, the file names the sensor)."""
        return str(self.alert.origin)

    def __post_init__(self) -> None:
        if self.action == "block":
            if not isinstance(self.target, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
                raise TypeError("a block decision needs an ipaddress target")
        elif self.target is not None:
            raise ValueError("an ignore decision has no target")
