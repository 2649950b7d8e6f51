"""Port-scan detection without Snort: distinct destination ports per source in a sliding window.

Fed by probes (a TCP segment without ACK or RST -- SYN, FIN, NULL, XMAS and the other nmap probe
shapes --, a UDP datagram, an ICMP echo request) from RouterOS firewall log lines or from the
packet stream itself. When the weighted count of distinct destination ports one
source touched within ``window`` seconds reaches ``ports``, it yields an Alert with gid 122 (the
port-scan generator of both Snort engines), so detections go through the same policy and responder
as Snort's alerts. Like RouterOS's ``psd``, ports below 1024 may weigh more (``low_port_weight``).
The detection names the scan type from the probes in the window ("TCP FIN scan, 17 ports in 10 s").

Pure: time is passed in; memory is bounded by ``max_sources`` (least recently active evicted).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone

from bridge.events import PORTSCAN_GID, Alert, IPAddress, Origin

ENGINE = "tzsp-ips"
# sids follow Snort's port_scan numbering so reports read alike: 1 TCP, 17 UDP, 26 ICMP sweep
SID_BY_PROTO = {"TCP": 1, "UDP": 17, "ICMP": 26, "ICMPV6": 26}

# TCP flag bits (RFC 9293 order); the names are how tcpdump and RouterOS's log print them
TCP_FLAG_BITS = {"FIN": 0x01, "SYN": 0x02, "RST": 0x04, "PSH": 0x08, "ACK": 0x10, "URG": 0x20, "ECE": 0x40, "CWR": 0x80}
_ANSWERS = TCP_FLAG_BITS["ACK"] | TCP_FLAG_BITS["RST"]
_CORE = TCP_FLAG_BITS["SYN"] | TCP_FLAG_BITS["FIN"] | TCP_FLAG_BITS["PSH"] | TCP_FLAG_BITS["URG"]
_NAMED_KINDS = {0x02: "SYN", 0x01: "FIN", 0x00: "NULL", 0x29: "XMAS"}  # 0x29 = FIN+PSH+URG
_NAME_ORDER = ("SYN", "FIN", "RST", "PSH", "ACK", "URG", "ECE", "CWR")  # "SYN+FIN+PSH+URG" reads best


def tcp_probe_kind(flags: int) -> str | None:
    """The probe a TCP segment with these flag bits is ("SYN", "FIN", "NULL", "XMAS", "SYN+FIN", ...),
    or None when it answers something (ACK or RST set): only a segment that opens nothing and answers
    nothing is a probe. ECE/CWR (ECN) do not change the name of a SYN, FIN or XMAS probe."""
    if flags & _ANSWERS:
        return None
    core = flags & _CORE
    if core in _NAMED_KINDS and (core or not flags):
        return _NAMED_KINDS[core]
    return "+".join(name for name in _NAME_ORDER if flags & TCP_FLAG_BITS[name])


def scan_type(proto: str, kind: str) -> str:
    """What a scan made of such probes is called: "TCP FIN scan", "UDP scan", "ICMP sweep"."""
    if proto in ("ICMP", "ICMPV6"):
        return "ICMPv6 sweep" if proto == "ICMPV6" else "ICMP sweep"
    return f"{proto} {kind} scan" if kind else f"{proto} scan"


@dataclass(frozen=True)
class Probe:
    """One connection attempt seen from ``src`` towards ``dst``:``dport`` (dport None for ICMP)."""

    src: IPAddress
    dst: IPAddress
    proto: str
    dport: int | None
    time: float
    sport: int | None = None
    kind: str = ""  # TCP: tcp_probe_kind ("SYN", "FIN", "NULL", "XMAS", "SYN+FIN", ...); "" otherwise


# UDP services whose replies go from their well-known port to a client's ephemeral port: a busy
# resolver answers hundreds of client ports a minute, which must not read as a port scan.
UDP_SERVICE_PORTS = frozenset({53, 67, 68, 69, 123, 137, 138, 161, 162, 443, 500, 514, 1900, 4500, 5353})


class UdpReplies:
    """Tells UDP replies from UDP probes: a datagram whose reverse flow was seen within ``ttl``
    seconds answers it, and so does one from a well-known service port to a client port (the
    request may not be in the stream when only one direction is mirrored). Bounded memory."""

    def __init__(self, ttl: float = 30.0, max_flows: int = 65536) -> None:
        self.ttl = ttl
        self.max_flows = max_flows
        self._flows: OrderedDict[tuple, float] = OrderedDict()  # (src, sport, dst, dport) -> last seen

    def is_reply(self, probe: Probe) -> bool:
        if probe.proto != "UDP" or probe.sport is None:
            return False
        key = (probe.src, probe.sport, probe.dst, probe.dport)
        reverse = (probe.dst, probe.dport, probe.src, probe.sport)
        answered = self._flows.get(reverse)
        self._flows[key] = probe.time
        self._flows.move_to_end(key)
        if len(self._flows) > self.max_flows:
            self._flows.popitem(last=False)
        if answered is not None and probe.time - answered <= self.ttl:
            return True
        return probe.sport in UDP_SERVICE_PORTS and probe.dport is not None and probe.dport >= 1024


class _SourceState:
    __slots__ = ("ports", "score", "alerted_until")

    def __init__(self) -> None:
        # (proto, port or dst) -> (last seen, scan type of the latest probe there)
        self.ports: OrderedDict[tuple, tuple[float, str]] = OrderedDict()
        self.score = 0  # sum of the weights of the keys in ports
        self.alerted_until = 0.0


class ScanDetector:
    def __init__(
        self,
        ports: int = 15,
        window: float = 10.0,
        low_port_weight: int = 1,
        max_sources: int = 65536,
        source_name: str = "scan-detector",
    ) -> None:
        if ports < 2:
            raise ValueError("scan.ports must be at least 2")
        if window <= 0:
            raise ValueError("scan.window must be positive")
        self.threshold = ports
        self.window = window
        self.low_port_weight = max(1, low_port_weight)
        self.max_sources = max_sources
        self.source_name = source_name
        self._sources: OrderedDict[IPAddress, _SourceState] = OrderedDict()
        self._udp = UdpReplies()
        self.detections = 0
        self.replies_ignored = 0

    def feed(self, probe: Probe) -> Alert | None:
        """Count one probe; returns an Alert the moment its source crosses the threshold."""
        if self._udp.is_reply(probe):
            self.replies_ignored += 1
            return None
        state = self._sources.get(probe.src)
        if state is None:
            state = _SourceState()
            self._sources[probe.src] = state
            if len(self._sources) > self.max_sources:
                self._sources.popitem(last=False)
        else:
            self._sources.move_to_end(probe.src)
        # An ICMP sweep touches many hosts rather than many ports: count destinations then.
        key = (probe.proto, probe.dport) if probe.dport is not None else (probe.proto, probe.dst)
        if key in state.ports:
            state.ports.move_to_end(key)
        else:
            state.score += self._weight(key)
        state.ports[key] = (probe.time, scan_type(probe.proto, probe.kind))
        horizon = probe.time - self.window
        while state.ports:
            oldest_key, (seen, _) = next(iter(state.ports.items()))
            if seen >= horizon:
                break
            del state.ports[oldest_key]
            state.score -= self._weight(oldest_key)
        if probe.time < state.alerted_until or state.score < self.threshold:
            return None  # below threshold, or already reported within this window
        state.alerted_until = probe.time + self.window
        self.detections += 1
        return self._alert(probe, state)

    def _weight(self, key: tuple) -> int:
        port = key[1]
        return self.low_port_weight if isinstance(port, int) and port < 1024 else 1

    def _alert(self, probe: Probe, state: _SourceState) -> Alert:
        proto = probe.proto.upper()
        types = Counter(kind for _, kind in state.ports.values()).most_common()
        name, count = types[0]
        what = "hosts" if name.endswith("sweep") else "ports"
        msg = f"(tzsp-ips scan) {name}, {count} {what} in {self.window:g} s"
        if len(types) > 1:  # one source mixing probe types: the main one names it, the rest are listed
            msg += " (also " + ", ".join(f"{other} {n}" for other, n in types[1:4]) + ")"
        msg += f" (score {state.score})"
        return Alert(
            gid=PORTSCAN_GID,
            sid=SID_BY_PROTO.get(proto, 1),
            rev=1,
            msg=msg,
            format="scan-detector",
            origin=Origin(self.source_name),
            priority=2,
            classification="Attempted Information Leak",
            proto=proto,
            src=probe.src,
            dst=probe.dst,
            dport=probe.dport,
            time=datetime.fromtimestamp(probe.time, tz=timezone.utc),
            engine=ENGINE,
            # The detector counts only the source's own probes: the source is the scanner.
            direction="C2S",
        )

    def tracked_sources(self) -> int:
        return len(self._sources)

    def snapshot(self) -> dict[str, int]:
        return {
            "tracked_sources": len(self._sources),
            "detections": self.detections,
            "replies_ignored": self.replies_ignored,
        }
