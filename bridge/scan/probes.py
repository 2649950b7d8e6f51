"""Connection attempts (scan probes) out of raw frames and out of RouterOS firewall events.

Pure functions over bytes: a frame is decoded by hand (Ethernet with VLAN tags or PPPoE, or raw
IP, found by tzsp.fanout.network_offset; IPv4/IPv6; TCP/UDP/ICMP) because only a few header
fields are needed and this runs per packet.
A truncated or odd frame gives None, never an exception.
"""

from __future__ import annotations

import ipaddress
import struct

from bridge.scan.detector import TCP_FLAG_BITS, Probe, tcp_probe_kind
from bridge.scan.routeros_log import FirewallEvent
from tzsp.fanout import network_offset

_IPV6_EXTENSIONS = (0, 43, 60)  # hop-by-hop, routing, destination options: skipped to reach TCP/UDP


def probe_from_frame(linktype: int, frame: bytes, time: float) -> Probe | None:
    """The probe this frame is, if it is one: a TCP segment without ACK or RST (SYN, FIN, NULL,
    XMAS...), a UDP datagram, an ICMP echo request."""
    offset = network_offset(frame, linktype)  # the same link-layer walk as tzspd's flow split
    if offset is None or len(frame) <= offset:
        return None
    return _probe_from_ip(frame, offset, time, frame[offset] >> 4)


def _probe_from_ip(frame: bytes, offset: int, time: float, version: int) -> Probe | None:
    if version == 4:
        if len(frame) < offset + 20:
            return None
        header_len = (frame[offset] & 0x0F) * 4
        (fragment,) = struct.unpack_from("!H", frame, offset + 6)
        if fragment & 0x1FFF:  # a later fragment carries no transport header
            return None
        proto = frame[offset + 9]
        src = ipaddress.IPv4Address(frame[offset + 12 : offset + 16])
        dst = ipaddress.IPv4Address(frame[offset + 16 : offset + 20])
        transport = offset + header_len
        icmp_proto, echo_request = 1, 8
    elif version == 6:
        if len(frame) < offset + 40:
            return None
        proto = frame[offset + 6]
        src = ipaddress.IPv6Address(frame[offset + 8 : offset + 24])
        dst = ipaddress.IPv6Address(frame[offset + 24 : offset + 40])
        transport = offset + 40
        while proto in _IPV6_EXTENSIONS and len(frame) >= transport + 2:
            proto, length = frame[transport], (frame[transport + 1] + 1) * 8
            transport += length
        icmp_proto, echo_request = 58, 128
    else:
        return None
    if proto == 6 and len(frame) >= transport + 14:
        sport, dport = struct.unpack_from("!HH", frame, transport)
        kind = tcp_probe_kind(frame[transport + 13])
        return Probe(src, dst, "TCP", dport, time, sport, kind) if kind is not None else None
    if proto == 17 and len(frame) >= transport + 4:
        sport, dport = struct.unpack_from("!HH", frame, transport)
        return Probe(src, dst, "UDP", dport, time, sport)  # the detector tells replies apart
    if proto == icmp_proto and len(frame) > transport and frame[transport] == echo_request:
        return Probe(src, dst, "ICMP" if icmp_proto == 1 else "ICMPV6", None, time)
    return None


def probe_from_firewall_event(event: FirewallEvent, time: float) -> Probe | None:
    """A logged connection attempt becomes a probe; other logged packets (replies, ACKs) do not."""
    if not event.is_connection_attempt:
        return None
    proto = "ICMP" if event.proto in ("ICMP", "ICMPV6") else event.proto
    if proto == "ICMP":
        return Probe(event.src, event.dst, proto, None, time)
    kind = ""
    if proto == "TCP":
        kind = tcp_probe_kind(sum(TCP_FLAG_BITS.get(flag, 0) for flag in set(event.flags))) or ""
    return Probe(event.src, event.dst, proto, event.dport, time, event.sport, kind)
