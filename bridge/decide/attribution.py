"""Which end of an alert is the attacker, and how that was decided.

Most rules are written so that the source is the attacker. Port-scan alerts (gid 122) are the
trap: Snort 3 raises them on the packet that crossed the threshold, and when that packet is the
target's RST or ICMP unreachable the alert reads victim -> scanner (calibration, pitfall 1).
Snort 2 raises them on a pseudo-packet that always reads scanner -> target. So for gid 122 the
bridge looks for evidence: the packet's direction and flags (Snort 3 alert_json), else what it
learnt from recent alerts (``FlowMemory``) and the port pattern; without evidence it prefers not
blocking to blocking a victim, and says so.

Pure: no clock, no I/O; ``now`` is passed in.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from bridge.events import Alert, IPAddress

End = Literal["src", "dst"]

# Client ports that scanners pick to slip through firewalls (nmap -g 53 / 20 / 67 / 88): a low
# port on these says nothing about which end is the server.
EVASION_SOURCE_PORTS = frozenset({20, 53, 67, 68, 88, 123})
SERVICE_PORT_LIMIT = 1024  # below: a service port; at or above: a client (ephemeral) port

_ICMP4_REPLIES = frozenset({0, 3, 11, 12, 14, 16, 18})  # echo reply, unreachable, time exceeded, ...
_ICMP4_PROBES = frozenset({8, 13, 15, 17})  # echo, timestamp, information, address mask requests
_ICMP6_REPLIES = frozenset({1, 2, 3, 4, 129})
_ICMP6_PROBES = frozenset({128})
# Sources whose gid-122 events always name the scanner as source.
_SCANNER_IS_SOURCE_FORMATS = frozenset({"scan-detector", "routeros-log"})


@dataclass(frozen=True)
class Attribution:
    """The attacker end (None: no end can be named safely) and a short account of why."""

    end: End | None
    attacker: IPAddress | None
    how: str
    # config | default | packet | pseudo-packet | detector | context | trust-src | none
    basis: str = "none"

    def __str__(self) -> str:
        return self.how


class FlowMemory:
    """What recent alerts said about who initiates: per address pair, and confirmed attackers.

    Bounded: at most ``max_entries`` pairs and as many attackers (oldest dropped first), each
    forgotten ``ttl`` seconds after it was last seen.
    """

    def __init__(self, max_entries: int = 10_000, ttl: float = 600.0):
        self.max_entries = max_entries
        self.ttl = ttl
        self._initiators: OrderedDict[frozenset[IPAddress], tuple[float, dict[IPAddress, str]]] = OrderedDict()
        self._attackers: OrderedDict[IPAddress, tuple[float, str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._initiators) + len(self._attackers)

    def observe(self, alert: Alert, now: float) -> None:
        """Learn from any alert whose own packet shows which end initiated its flow."""
        if alert.src is None or alert.dst is None or alert.src == alert.dst:
            return
        found = _packet_evidence(alert) or _pseudo_packet_evidence(alert) or _port_evidence(alert)
        if found is None or found[0] is None:
            return
        end, how = found
        initiator = alert.src if end == "src" else alert.dst
        pair = frozenset((alert.src, alert.dst))
        entry = self._initiators.pop(pair, None)
        seen = entry[1] if entry is not None else {}
        if initiator not in seen:
            seen[initiator] = f"{alert.gid_sid}: {how}"
        self._initiators[pair] = (now, seen)
        self._trim(self._initiators, now)

    def note_attacker(self, address: IPAddress, now: float, because: str) -> None:
        """An alert the policy acts on named ``address`` as attacker (e.g. a priority-1 rule)."""
        self._attackers.pop(address, None)
        self._attackers[address] = (now, because)
        self._trim(self._attackers, now)

    def initiators(self, a: IPAddress, b: IPAddress, now: float) -> dict[IPAddress, str]:
        entry = self._initiators.get(frozenset((a, b)))
        if entry is None or now - entry[0] > self.ttl:
            return {}
        return dict(entry[1])

    def attacker(self, address: IPAddress, now: float) -> str | None:
        entry = self._attackers.get(address)
        if entry is None or now - entry[0] > self.ttl:
            return None
        return entry[1]

    def _trim(self, table: OrderedDict, now: float) -> None:
        while table:
            oldest_key = next(iter(table))
            stamp = table[oldest_key][0]
            if len(table) > self.max_entries or now - stamp > self.ttl:
                del table[oldest_key]
            else:
                break


def attribute(
    alert: Alert,
    attacker_map: Mapping[str, End],
    portscan_attribution: str = "evidence",
    memory: FlowMemory | None = None,
    now: float = 0.0,
) -> Attribution:
    """Name the attacker end of ``alert``.

    ``attacker_map`` is policy.attacker ("gid:sid" -> "src" | "dst"); ``portscan_attribution``
    is policy.portscan_attribution ("evidence" | "src").
    """
    configured = attacker_map.get(alert.gid_sid)
    if configured is not None:
        return _named(alert, configured, f'{configured} (policy.attacker "{alert.gid_sid}")', "config")
    if not alert.is_portscan:
        return _named(alert, "src", "src (default)", "default")
    return _attribute_portscan(alert, portscan_attribution, memory, now)


def _attribute_portscan(alert: Alert, mode: str, memory: FlowMemory | None, now: float) -> Attribution:
    if alert.format in _SCANNER_IS_SOURCE_FORMATS or alert.engine == "tzsp-ips":
        return _named(alert, "src", "src: the built-in detector counts ports per source", "detector")
    pseudo = _pseudo_packet_evidence(alert)
    if pseudo is not None:
        return _named(alert, pseudo[0], f"{pseudo[0]}: {pseudo[1]}", "pseudo-packet")
    packet = _packet_evidence(alert)
    if packet is not None:
        end, how = packet
        if end is None:
            return Attribution(None, None, f"nobody: {how}; not blocking rather than risk blocking the victim")
        return _named(alert, end, f"{end}: {how}", "packet")
    return _attribute_from_context(alert, mode, memory, now)


def _attribute_from_context(alert: Alert, mode: str, memory: FlowMemory | None, now: float) -> Attribution:
    """No packet-level evidence (alert_fast, syslog, csv): use what earlier alerts and the ports say."""
    votes: dict[End, set[str]] = {"src": set(), "dst": set()}
    ends: tuple[tuple[End, IPAddress | None], ...] = (("src", alert.src), ("dst", alert.dst))
    if memory is not None and alert.src is not None and alert.dst is not None:
        for initiator, because in memory.initiators(alert.src, alert.dst, now).items():
            for end, address in ends:
                if address == initiator:
                    votes[end].add(f"{address} initiated earlier ({because})")
        for end, address in ends:
            named_by = memory.attacker(address, now) if address is not None else None
            if named_by:
                votes[end].add(f"{address} was named attacker by {named_by}")
    ports = _port_evidence(alert)
    if ports is not None and ports[0] is not None:
        votes[ports[0]].add(ports[1])
    if votes["src"] and votes["dst"]:
        detail = "; ".join(sorted(votes["src"] | votes["dst"]))
        return Attribution(
            None, None, f"nobody: conflicting evidence ({detail}); not blocking rather than risk blocking the victim"
        )
    for end in ("src", "dst"):
        if votes[end]:
            return _named(alert, end, f"{end}: " + "; ".join(sorted(votes[end])), "context")
    if mode == "src":
        return _named(
            alert,
            "src",
            'src: no evidence which end scanned; trusting the source (policy.portscan_attribution = "src")',
            "trust-src",
        )
    return Attribution(
        None,
        None,
        "nobody: a port-scan alert in this format cannot show whether its packet was the victim's reply, "
        "and nothing else tells scanner from victim; not blocking rather than risk blocking the victim "
        "(Snort 3 alert_json carries dir/tcp_flags/icmp_type)",
    )


def _named(alert: Alert, end: End, how: str, basis: str) -> Attribution:
    address = alert.src if end == "src" else alert.dst
    if not isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return Attribution(None, None, f"nobody: {how}, but the alert has no {end} address")
    return Attribution(end, address, how, basis)


def _pseudo_packet_evidence(alert: Alert) -> tuple[End, str] | None:
    """Snort 2's sfportscan pseudo-packet ({PROTO:255}, no ports) always reads scanner -> target."""
    if not alert.is_portscan:
        return None
    proto = (alert.proto or "").upper()
    snort2 = alert.engine == "snort2" or alert.msg.startswith("(portscan)")
    if proto == "PROTO:255" or (snort2 and alert.sport is None and alert.dport is None):
        return "src", "Snort 2 port-scan pseudo-packet names the scanner as source"
    return None


def _packet_evidence(alert: Alert) -> tuple[End | None, str] | None:
    """What the alert packet itself says: a reply (attacker = dst) or a probe (attacker = src).

    None: the format carries no such evidence. (None, text): the signs contradict each other.
    """
    reply, probe = [], []
    direction = (alert.direction or "").upper()
    if direction == "S2C":
        reply.append("dir S2C")
    elif direction == "C2S":
        probe.append("dir C2S")
    flags = alert.tcp_flags or ""
    if flags:
        letters = set(flags.replace("*", "").upper())
        if "R" in letters:
            reply.append(f"tcp_flags {flags} has RST")
        elif "S" in letters and "A" in letters:
            reply.append(f"tcp_flags {flags} is SYN/ACK")
        elif "S" in letters:
            probe.append(f"tcp_flags {flags} is a SYN")
    if alert.icmp_type is not None:
        v6 = "6" in (alert.proto or "") or isinstance(alert.src, ipaddress.IPv6Address)
        replies, probes = (_ICMP6_REPLIES, _ICMP6_PROBES) if v6 else (_ICMP4_REPLIES, _ICMP4_PROBES)
        if alert.icmp_type in replies:
            reply.append(f"ICMP type {alert.icmp_type} is a reply")
        elif alert.icmp_type in probes:
            probe.append(f"ICMP type {alert.icmp_type} is a request")
    if reply and probe:
        return None, "the alert packet's signs contradict each other (" + ", ".join(reply + probe) + ")"
    if reply:
        return "dst", "the alert packet is the victim's reply (" + ", ".join(reply) + ")"
    if probe:
        return "src", "the alert packet is a probe (" + ", ".join(probe) + ")"
    return None


def _port_evidence(alert: Alert) -> tuple[End | None, str] | None:
    """A service port on one end and a client port on the other says which end is the server."""
    if alert.sport is None or alert.dport is None:
        return None

    def service(port: int) -> bool:
        return 0 < port < SERVICE_PORT_LIMIT and port not in EVASION_SOURCE_PORTS

    def client(port: int) -> bool:
        return port >= SERVICE_PORT_LIMIT

    if service(alert.sport) and client(alert.dport):
        return "dst", f"port pattern: src port {alert.sport} is a service port, dst port {alert.dport} a client port"
    if service(alert.dport) and client(alert.sport):
        return "src", f"port pattern: dst port {alert.dport} is a service port, src port {alert.sport} a client port"
    return None
