"""RouterOS firewall log lines (rules with ``action=log``), as they arrive by remote syslog or in a file.

Accepted framings of the same message:
- RouterOS remote logging, default format: ``firewall,info <message>`` (no time, no host);
- ``remote-log-format=syslog`` / ``bsd-syslog=yes``: ``<30>Sep 25 01:37:18 MikroTik [topics ]<message>``;
- a file written by rsyslog: ``2026-11-22T03:35:41.962312+00:00 router firewall,info <message>``
  or ``Nov 22 03:35:41 router firewall,info <message>``.

Message grammar (ROUTEROS.md §7)::

    [prefix ]<chain>: in:<if> out:<if>, [connection-state:<st> ][src-mac <mac>, ]proto <P>[ (<flags|type t, code c>)],
    <src>[:sp]-><dst>[:dp][, NAT (...)->dst[:dp]], len <n>

Stealth probes come from the ``connection-state=invalid`` rule ``snort-bridge provision`` adds:
``tzsp-ips-stealth input: in:ether1 out:(unknown 0), connection-state:invalid src-mac ..., proto
TCP (FIN,PSH,URG), ...``; a segment without flags is read from ``proto TCP ()`` or ``proto TCP,``.

Only addresses accepted by ``ipaddress`` come out; anything else raises NotAFirewallLine.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from bridge.events import IPAddress


class NotAFirewallLine(ValueError):
    """The line is not a RouterOS firewall log message (or an address in it is not an address)."""


@dataclass(frozen=True)
class FirewallEvent:
    prefix: str  # the rule's log-prefix ("" when none)
    chain: str
    in_interface: str
    out_interface: str
    proto: str  # "TCP", "UDP", "ICMP", "2", ...
    flags: tuple[str, ...]  # TCP flags ("SYN", "ACK", ...) or ("type 8", "code 0") for ICMP
    src: IPAddress
    sport: int | None
    dst: IPAddress
    dport: int | None
    router: str = ""  # host/identity from the syslog header, when present
    connection_state: str = ""  # "new", "established", ... when the rule logs it

    @property
    def is_connection_attempt(self) -> bool:
        """A probe a scanner sends: a TCP segment without ACK or RST (SYN; FIN, NULL, XMAS... which
        RouterOS tracks as ``invalid``), a UDP datagram, an ICMP echo request -- never a packet of a
        connection the router already tracks as established or related."""
        if self.connection_state in ("established", "related"):
            return False
        if self.proto == "TCP":
            return "ACK" not in self.flags and "RST" not in self.flags
        if self.proto == "UDP":
            return True
        if self.proto in ("ICMP", "ICMPV6"):
            return "type 8" in self.flags or "type 128" in self.flags
        return False


_PRI = r"(?:<\d{1,3}>)?"
_BSD_TIME = r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d"
_ISO_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?"
_HEADER_RE = re.compile(rf"^{_PRI}(?:(?:{_BSD_TIME}|{_ISO_TIME}) (?P<host>\S+) )?")
_TOPICS_RE = re.compile(r"^(?:[a-z]+,)*(?:firewall)(?:,[a-z]+)*\s+")
_BODY_RE = re.compile(
    r"^(?P<prefix>.*?)\s*(?P<chain>[\w.-]+): in:(?P<in>.*?) out:(?P<out>.*?), "
    r"(?:connection-state:(?P<state>[\w,-]+) )?(?:src-mac [0-9a-fA-F:]+, )?"
    r"proto (?P<proto>[\w-]+)(?: \((?P<flags>[^)]*)\))?, "
    r"(?P<src>\S+?)->(?P<dst>[^,\s]+)(?:, NAT \S+)?, len \d+"
)
_ENDPOINT_BRACKETED = re.compile(r"^\[(?P<addr>[0-9A-Fa-f:.]+)\](?::(?P<port>\d{1,5}))?$")


def _endpoint(text: str, has_ports: bool) -> tuple[IPAddress, int | None]:
    """Split ``a.b.c.d:port``, ``[v6]:port`` or a bare address into address and port."""
    bracketed = _ENDPOINT_BRACKETED.match(text)
    if bracketed:
        address, port = bracketed["addr"], bracketed["port"]
    elif text.count(":") == 1:  # IPv4 with port
        address, port = text.split(":")
    elif has_ports and text.count(":") > 1:  # bare IPv6 followed by :port, as some versions print it
        address, port = text.rsplit(":", 1)
    else:
        address, port = text, None
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        raise NotAFirewallLine(f"not an address: {address[:60]!r}") from None
    if port is not None:
        number = int(port)
        if number > 65535:
            raise NotAFirewallLine(f"port out of range: {number}")
        return parsed, number
    return parsed, None


def parse_firewall_line(line: str) -> FirewallEvent:
    """The firewall event in one log line; NotAFirewallLine for anything else."""
    text = line.strip().replace("\x00", "")
    header = _HEADER_RE.match(text)
    host = ""
    if header:
        host = header["host"] or ""
        text = text[header.end() :]
    topics = _TOPICS_RE.match(text)
    if topics:
        text = text[topics.end() :]
    body = _BODY_RE.match(text)
    if not body:
        raise NotAFirewallLine("no '<chain>: in:... out:..., proto ..., src->dst, len n' message")
    proto = body["proto"].upper()
    has_ports = proto in ("TCP", "UDP", "SCTP", "UDP-LITE", "DCCP")
    src, sport = _endpoint(body["src"], has_ports)
    dst, dport = _endpoint(body["dst"], has_ports)
    flags = tuple(part.strip() for part in (body["flags"] or "").split(",") if part.strip())
    return FirewallEvent(
        prefix=body["prefix"].strip(),
        chain=body["chain"],
        in_interface=body["in"],
        out_interface=body["out"],
        proto=proto,
        flags=flags,
        src=src,
        sport=sport,
        dst=dst,
        dport=dport,
        router=host,
        connection_state=body["state"] or "",
    )
