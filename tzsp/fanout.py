"""Which of N consumers (Snort processes) gets a frame: a symmetric hash of its flow. Pure.

Snort follows TCP sessions and reassembles streams, so every packet of a flow, in both
directions, must reach the same process. The flow key is the protocol and the two endpoints
(address and port) in a canonical order, so A->B and B->A give the same key:

- TCP, UDP, SCTP, DCCP, UDP-Lite: addresses and ports;
- other IP protocols (ICMP, GRE, ESP, ...): addresses only;
- IP fragments (IPv4 MF or offset, an IPv6 fragment header): addresses only, because only the
  first fragment carries the ports and all fragments of a datagram must go together;
- frames that are not IPv4/IPv6, or too short to read, have no key and go to consumer 0.

Ethernet frames may carry VLAN tags (802.1Q, 802.1ad, QinQ) and PPPoE sessions; the raw-IP
link types are read directly. The hash is CRC-32 of the key, so the choice is stable across
runs and processes.

``split_by_consumer`` cuts a batch of pcap records into one share per consumer, in order
(the C accelerator's ``split_records`` does the same cut byte for byte).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

from .native import native_module
from .pcap import RECORD_HEADER

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # "raw" IP; 12 and 14 are older numbers for the same
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
RAW_LINKTYPES = frozenset({LINKTYPE_RAW, 12, 14, LINKTYPE_IPV4, LINKTYPE_IPV6})

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_PPPOE_SESSION = 0x8864
VLAN_ETHERTYPES = frozenset({0x8100, 0x88A8, 0x9100})
PPP_IPV4, PPP_IPV6 = 0x0021, 0x0057
MAX_VLAN_TAGS = 4

PORT_PROTOCOLS = frozenset({6, 17, 33, 132, 136})  # TCP, UDP, DCCP, SCTP, UDP-Lite
IPV6_EXTENSIONS = frozenset({0, 43, 60})  # hop-by-hop, routing, destination options
IPV6_FRAGMENT = 44
IPV6_AH = 51
MAX_IPV6_EXTENSIONS = 8

_U16 = struct.Struct("!H")


def network_offset(frame, linktype: int) -> int | None:
    """Where the IP header starts in ``frame``, or None when the frame carries no IP."""
    if linktype in RAW_LINKTYPES:
        return 0
    if linktype != LINKTYPE_ETHERNET or len(frame) < 14:
        return None
    offset = 12
    ethertype = _U16.unpack_from(frame, offset)[0]
    tags = 0
    while ethertype in VLAN_ETHERTYPES and tags < MAX_VLAN_TAGS:
        offset += 4
        if len(frame) < offset + 2:
            return None
        ethertype = _U16.unpack_from(frame, offset)[0]
        tags += 1
    offset += 2
    if ethertype == ETHERTYPE_PPPOE_SESSION:
        if len(frame) < offset + 8:
            return None
        protocol = _U16.unpack_from(frame, offset + 6)[0]
        return offset + 8 if protocol in (PPP_IPV4, PPP_IPV6) else None
    if ethertype in (ETHERTYPE_IPV4, ETHERTYPE_IPV6):
        return offset
    return None


def flow_key(frame, linktype: int) -> bytes | None:
    """The direction-free flow key of a frame (see the module docstring), or None."""
    offset = network_offset(frame, linktype)
    if offset is None or len(frame) <= offset:
        return None
    version = frame[offset] >> 4
    if version == 4:
        return _ipv4_key(frame, offset)
    if version == 6:
        return _ipv6_key(frame, offset)
    return None


def _ipv4_key(frame, offset: int) -> bytes | None:
    if len(frame) < offset + 20:
        return None
    header_len = (frame[offset] & 0x0F) * 4
    if header_len < 20:
        return None
    protocol = frame[offset + 9]
    fragment = _U16.unpack_from(frame, offset + 6)[0] & 0x3FFF  # MF flag or a fragment offset
    source = bytes(frame[offset + 12 : offset + 16])
    destination = bytes(frame[offset + 16 : offset + 20])
    return _endpoints_key(frame, protocol, source, destination, offset + header_len, fragmented=bool(fragment))


def _ipv6_key(frame, offset: int) -> bytes | None:
    if len(frame) < offset + 40:
        return None
    protocol = frame[offset + 6]
    source = bytes(frame[offset + 8 : offset + 24])
    destination = bytes(frame[offset + 24 : offset + 40])
    at = offset + 40
    fragmented = False
    for _ in range(MAX_IPV6_EXTENSIONS):
        if protocol == IPV6_FRAGMENT:
            fragmented = True
            break
        if protocol not in IPV6_EXTENSIONS and protocol != IPV6_AH:
            break
        if len(frame) < at + 2:
            fragmented = True  # cannot see the upper layer: addresses are all there is
            break
        length = (frame[at + 1] + 2) * 4 if protocol == IPV6_AH else (frame[at + 1] + 1) * 8
        protocol = frame[at]
        at += length
    return _endpoints_key(frame, protocol, source, destination, at, fragmented)


def _endpoints_key(frame, protocol: int, source: bytes, destination: bytes, transport: int, fragmented: bool) -> bytes:
    if fragmented:
        protocol = 0xFF  # one key for every fragment, whatever its first fragment carries
    elif protocol in PORT_PROTOCOLS and len(frame) >= transport + 4:
        source += bytes(frame[transport : transport + 2])
        destination += bytes(frame[transport + 2 : transport + 4])
    low, high = (source, destination) if source <= destination else (destination, source)
    return bytes((protocol,)) + low + high


def consumer_for(frame, linktype: int, consumers: int) -> int:
    """Index (0..consumers-1) of the consumer that gets this frame; 0 when it has no flow."""
    if consumers <= 1:
        return 0
    key = flow_key(frame, linktype)
    if key is None:
        return 0
    return zlib.crc32(key) % consumers


def split_by_consumer(records, choose: Callable[[memoryview], int], consumers: int) -> list[tuple[bytearray, int]]:
    """Cut a batch of pcap records into one batch per consumer, keeping their order:
    ``choose(frame)`` gives each record's consumer index."""
    parts = [(bytearray(), [0]) for _ in range(consumers)]
    view = memoryview(records)
    offset = 0
    header = RECORD_HEADER.size
    total = len(view)
    unpack = RECORD_HEADER.unpack_from
    while offset + header <= total:
        end = offset + header + unpack(view, offset)[2]
        if end > total:
            break
        part = parts[choose(view[offset + header : end])]
        part[0].extend(view[offset:end])
        part[1][0] += 1
        offset = end
    return [(data, counted[0]) for data, counted in parts]


def record_splitter(linktype: int, consumers: int, accelerated: bool | None = None) -> Callable:
    """``split(records) -> [(bytes, count)] * consumers`` for a batch of pcap records: the C
    accelerator's ``split_records`` when built (unless ``accelerated`` is False or
    TZSPD_PURE_PYTHON is set), else the same cut in Python; both give identical bytes."""
    module = native_module(accelerated)
    if module is not None:
        native = module.split_records
        return lambda records: native(records, linktype, consumers)
    return lambda records: split_by_consumer(records, lambda frame: consumer_for(frame, linktype, consumers), consumers)
