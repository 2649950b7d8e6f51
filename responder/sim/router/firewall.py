"""The simulated router's firewall filter: connection tracking, rules, and the log lines they write.

Pure: a packet and its arrival time in, a verdict and the firewall log messages out (delivering
them is ``remote_log``'s job). Enough of RouterOS for trying the IPS's logging rules:

- connection tracking as Linux's nf_conntrack (RouterOS's) decides ``connection-state``: a TCP
  segment with a flag combination conntrack deems impossible (FIN alone, NULL, XMAS, SYN+FIN) is
  ``invalid`` whatever the table holds; without an entry a SYN is ``new``, a bare ACK is picked up
  as ``new`` (``loose-tcp-tracking=yes``, the default), and anything else (SYN+ACK, RST, FIN+ACK)
  is ``invalid``; packets of a tracked connection are ``new`` until the other side answered, then
  ``established``. UDP and ICMP echo open entries too; ICMP errors are ``related``.
- rules match ``chain``, ``protocol``, ``connection-state``, ``tcp-flags`` (``fin,!ack``: every
  listed flag set, every ``!`` flag clear), ``src-/dst-address-list``, ``limit`` (a token bucket:
  ``rate[/time],burst[:packet]``); ``action=log`` (or ``log=yes``) writes the message and goes on,
  accept/drop/reject end the chain.
- the message is RouterOS's (ROUTEROS.md §7): ``[prefix ]input: in:ether1 out:(unknown 0),
  connection-state:invalid src-mac 00:0c:29:..., proto TCP (FIN,PSH,URG), 192.168.1.10:35503->
  192.168.1.25:80, len 40`` (v6 prints no ``connection-state``). Flags print in the order real
  logs show them (SYN,ACK / ACK,FIN,PSH / ACK,RST); a segment without flags prints ``proto TCP ()``
  -- an assumption, no real log of one was found; ``snort-bridge`` reads it with or without ``()``.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import dpkt

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
_LOG_ORDER = (
    ("SYN", SYN),
    ("ACK", ACK),
    ("FIN", FIN),
    ("RST", RST),
    ("PSH", PSH),
    ("URG", URG),
    ("ECE", ECE),
    ("CWR", CWR),
)
_FLAG_NAMES = {"fin": FIN, "syn": SYN, "rst": RST, "psh": PSH, "ack": ACK, "urg": URG, "ece": ECE, "cwr": CWR}
# nf_conntrack_proto_tcp.c tcp_valid_flags: the combinations of FIN/SYN/RST/PSH/ACK/URG that can
# occur in a real connection; every other one is "invalid" before the table is even looked at.
_VALID_TCP = frozenset(
    {
        SYN,
        SYN | URG,
        SYN | ACK,
        RST,
        RST | ACK,
        RST | ACK | PSH,
        FIN | ACK,
        FIN | ACK | URG,
        ACK,
        ACK | URG,
        FIN | ACK | PSH,
        FIN | ACK | PSH | URG,
        ACK | PSH,
        ACK | PSH | URG,
    }
)
_ICMP_ERRORS = {1: {3, 4, 5, 11, 12}, 58: {1, 2, 3, 4}}  # by IP protocol: destination unreachable, ...
_ICMP_ECHO = {1: (8, 0), 58: (128, 129)}  # request, reply
PROTOCOL_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "ipv6-icmp": 58}
CONNECTION_STATES = ("established", "invalid", "new", "related", "untracked")
ACTIONS = ("accept", "drop", "reject", "log", "passthrough")


class RuleError(ValueError):
    """A rule property the router refuses (RouterOS says ``invalid value for argument X``)."""


@dataclass(frozen=True)
class Packet:
    """What the firewall looks at in one IP packet."""

    family: int
    src: str
    dst: str
    proto: int
    length: int  # the IP packet's length, as the log's ``len``
    sport: int | None = None
    dport: int | None = None
    tcp_flags: int = 0
    icmp: tuple[int, int] | None = None  # (type, code)
    src_mac: str = ""


def decode_frame(frame: bytes) -> Packet | None:
    """An Ethernet frame (VLAN tags allowed) as a Packet; None for non-IP or damaged frames."""
    try:
        ether = dpkt.ethernet.Ethernet(frame)
    except (dpkt.UnpackError, ValueError):
        return None
    ip = ether.data
    mac = ":".join(f"{b:02x}" for b in ether.src)
    if isinstance(ip, dpkt.ip.IP):
        family, src, dst, length = 4, ipaddress.IPv4Address(ip.src), ipaddress.IPv4Address(ip.dst), ip.len
    elif isinstance(ip, dpkt.ip6.IP6):
        family, src, dst, length = 6, ipaddress.IPv6Address(ip.src), ipaddress.IPv6Address(ip.dst), ip.plen + 40
    else:
        return None
    proto, layer = ip.p, ip.data
    common = dict(family=family, src=str(src), dst=str(dst), proto=proto, length=length, src_mac=mac)
    if isinstance(layer, dpkt.tcp.TCP):
        return Packet(sport=layer.sport, dport=layer.dport, tcp_flags=layer.flags, **common)
    if isinstance(layer, dpkt.udp.UDP):
        return Packet(sport=layer.sport, dport=layer.dport, **common)
    if isinstance(layer, (dpkt.icmp.ICMP, dpkt.icmp6.ICMP6)):
        return Packet(icmp=(layer.type, layer.code), **common)
    return Packet(**common)


class Conntrack:
    """Connection states as RouterOS (Linux) tracks them; bounded, least recently used dropped."""

    def __init__(self, max_entries: int = 65536):
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple, bool] = OrderedDict()  # original-direction key -> replied

    def state_of(self, packet: Packet) -> str:
        if packet.proto == 6 and packet.tcp_flags & (FIN | SYN | RST | PSH | ACK | URG) not in _VALID_TCP:
            return "invalid"
        key = (packet.proto, packet.src, packet.sport, packet.dst, packet.dport)
        reverse = (packet.proto, packet.dst, packet.dport, packet.src, packet.sport)
        if packet.proto in _ICMP_ECHO and packet.icmp is not None:
            request, reply = _ICMP_ECHO[packet.proto]
            if packet.icmp[0] in _ICMP_ERRORS[packet.proto]:
                return "related"
            if packet.icmp[0] == reply:
                key, reverse = None, (packet.proto, packet.dst, None, packet.src, None)
            elif packet.icmp[0] == request:
                key = (packet.proto, packet.src, None, packet.dst, None)
            else:
                return "invalid"
        if reverse in self._entries:
            self._entries[reverse] = True
            self._entries.move_to_end(reverse)
            self._forget_if_reset(packet, reverse)
            return "established"
        if key is not None and key in self._entries:
            self._entries.move_to_end(key)
            self._forget_if_reset(packet, key)
            return "established" if self._entries.get(key) else "new"
        if key is None or (packet.proto == 6 and not self._opens(packet.tcp_flags)):
            return "invalid"
        self._entries[key] = False
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return "new"

    @staticmethod
    def _opens(flags: int) -> bool:
        core = flags & (FIN | SYN | RST | ACK)
        return core in (SYN, ACK)  # a SYN, or a mid-stream ACK picked up by loose tracking

    def _forget_if_reset(self, packet: Packet, key: tuple) -> None:
        if packet.proto == 6 and packet.tcp_flags & RST:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


def parse_tcp_flags(text: str) -> tuple[int, int]:
    """``fin,!syn,!ack`` -> (flags that must be set, flags that must be clear)."""
    must, must_not = 0, 0
    for word in (w.strip().lower() for w in text.split(",") if w.strip()):
        negated, name = word.startswith("!"), word.lstrip("!")
        if name not in _FLAG_NAMES:
            raise RuleError("tcp-flags")
        if negated:
            must_not |= _FLAG_NAMES[name]
        else:
            must |= _FLAG_NAMES[name]
    return must, must_not


def format_tcp_flags(must: int, must_not: int) -> str:
    names = [n for n, b in _FLAG_NAMES.items() if must & b] + ["!" + n for n, b in _FLAG_NAMES.items() if must_not & b]
    return ",".join(names)


@dataclass
class Limit:
    """``limit=rate[/time],burst[:packet]``: a token bucket refilled at rate/time per second."""

    text: str
    per_second: float
    burst: int
    tokens: float = field(default=0.0)
    last: float | None = None

    @classmethod
    def parse(cls, text: str, flavour: str) -> Limit:
        body, _, mode = text.partition(":")
        if mode not in ("", "packet") or (mode and flavour == "v6"):
            raise RuleError("limit")
        rate_text, _, burst_text = body.partition(",")
        count_text, _, period_text = rate_text.partition("/")
        seconds = {"": 1.0, "1s": 1.0, "s": 1.0, "1m": 60.0, "m": 60.0, "1h": 3600.0, "h": 3600.0}.get(period_text)
        if seconds is None and period_text.endswith("s") and period_text[:-1].isdigit():
            seconds = float(period_text[:-1])
        if not count_text.isdigit() or not burst_text.isdigit() or not seconds:
            raise RuleError("limit")
        burst = int(burst_text)
        return cls(text, int(count_text) / seconds, burst, tokens=float(burst))

    def take(self, now: float) -> bool:
        if self.last is not None:
            self.tokens = min(self.burst, self.tokens + max(0.0, now - self.last) * self.per_second)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class FilterRule:
    number: int
    chain: str
    action: str = "accept"
    protocol: int | None = None
    protocol_text: str = ""
    connection_state: tuple[str, ...] = ()
    tcp_flags: tuple[int, int] = (0, 0)
    src_address_list: str = ""
    dst_address_list: str = ""
    limit: Limit | None = None
    log: bool = False
    log_prefix: str = ""
    comment: str = ""
    disabled: bool = False
    packets: int = 0  # the rule's counter, as `print stats` shows it
    extra: dict[str, str] = field(default_factory=dict)  # matchers kept and printed, not matched (in-interface=...)

    def matches(self, packet: Packet, state: str, in_list: Callable[[str, str], bool], now: float) -> bool:
        if self.disabled:
            return False
        if self.protocol is not None and packet.proto != self.protocol:
            return False
        if self.connection_state and state not in self.connection_state:
            return False
        must, must_not = self.tcp_flags
        if (must or must_not) and (packet.proto != 6 or packet.tcp_flags & must != must or packet.tcp_flags & must_not):
            return False
        if self.src_address_list and not in_list(self.src_address_list, packet.src):
            return False
        if self.dst_address_list and not in_list(self.dst_address_list, packet.dst):
            return False
        return self.limit is None or self.limit.take(now)  # the limit is spent only by packets that got this far


def log_message(rule: FilterRule, packet: Packet, state: str, flavour: str, in_interface: str) -> str:
    """The log line's message as RouterOS writes it (ROUTEROS.md §7)."""
    head = f"{rule.log_prefix} {rule.chain}" if rule.log_prefix else rule.chain
    parts = [f"{head}: in:{in_interface} out:(unknown 0)"]
    tracked = f"connection-state:{state} " if flavour == "v7" else ""
    mac = f"src-mac {packet.src_mac}" if packet.src_mac else ""
    if tracked or mac:
        parts.append((tracked + mac).rstrip())
    if packet.proto == 6:
        flags = ",".join(name for name, bit in _LOG_ORDER if packet.tcp_flags & bit)
        parts.append(f"proto TCP ({flags})")
    elif packet.proto == 17:
        parts.append("proto UDP")
    elif packet.icmp is not None:
        parts.append(
            f"proto {'ICMP' if packet.proto == 1 else 'ICMPv6'} (type {packet.icmp[0]}, code {packet.icmp[1]})"
        )
    else:
        parts.append(f"proto {packet.proto}")
    if packet.sport is not None:
        parts.append(f"{packet.src}:{packet.sport}->{packet.dst}:{packet.dport}")
    else:
        parts.append(f"{packet.src}->{packet.dst}")
    parts.append(f"len {packet.length}")
    return ", ".join(parts)


@dataclass
class Verdict:
    state: str
    action: str  # "accept" when no rule ended the chain (a chain's default policy)
    messages: list[str]


class Firewall:
    """The filter rules of one address family, and its connection tracking."""

    def __init__(self) -> None:
        self.rules: list[FilterRule] = []
        self.conntrack = Conntrack()

    def handle(
        self,
        packet: Packet,
        now: float,
        flavour: str,
        in_list: Callable[[str, str], bool],
        chain: str = "input",
        in_interface: str = "ether1",
    ) -> Verdict:
        state = self.conntrack.state_of(packet)
        messages: list[str] = []
        for rule in self.rules:
            if rule.chain != chain or not rule.matches(packet, state, in_list, now):
                continue
            rule.packets += 1
            if rule.log or rule.action == "log":
                messages.append(log_message(rule, packet, state, flavour, in_interface))
            if rule.action in ("accept", "drop", "reject"):
                return Verdict(state, rule.action, messages)
        return Verdict(state, "accept", messages)
