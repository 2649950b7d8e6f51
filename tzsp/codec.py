"""TZSP (TaZmen Sniffer Protocol) datagrams: decode and encode, pure functions over bytes.

Wire format (see the README and docs/TZSP.md): a 4-byte header ``version(1) type(1)
encapsulation(2, big-endian)``, then tagged fields ending with the END tag, then the
encapsulated frame up to the end of the UDP payload. PAD (0) and END (1) are a single
byte; every other tag is ``number(1) length(1) value(length)``. Keepalive (4) and
port-opener (5) datagrams carry neither tags nor a frame.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

VERSION = 1

RX_PACKET, TX_PACKET, RESERVED, CONFIG, KEEPALIVE, PORT_OPENER = 0, 1, 2, 3, 4, 5
TYPE_NAMES = {
    RX_PACKET: "rx",
    TX_PACKET: "tx",
    RESERVED: "reserved",
    CONFIG: "config",
    KEEPALIVE: "keepalive",
    PORT_OPENER: "port-opener",
}
_FRAME_TYPES = (RX_PACKET, TX_PACKET)
_TAGLESS_TYPES = (KEEPALIVE, PORT_OPENER)

# What RouterOS /tool sniffer and sniff-tzsp put in front of every Ethernet frame.
FAST_HEADER = b"\x01\x00\x00\x01\x01"  # v1, RX, Ethernet, END

HEADER = struct.Struct("!BBH")

# Tag numbers (Wireshark packet-tzsp.c names; scapy's in the comments where they differ).
TAG_PADDING = 0
TAG_END = 1
TAG_RAW_RSSI = 10  # WS "signal"
TAG_SNR = 11  # WS "silence"/noise
TAG_DATA_RATE = 12
TAG_TIMESTAMP = 13  # MAC receive counter in microseconds, not wall-clock time
TAG_MSG_TYPE = 14
TAG_CONTENTION_FREE = 15
TAG_DECRYPTED = 16  # WS "undecrypted": polarity differs between implementations
TAG_FCS_ERROR = 17
TAG_RX_CHANNEL = 18
TAG_WLAN_STA = 30
TAG_WLAN_PKT = 31
TAG_PACKET_ID = 40  # scapy PACKET_COUNT
TAG_ORIGINAL_LENGTH = 41  # scapy RX_FRAME_LENGTH
TAG_SENSOR = 60  # scapy WLAN_RADIO_HDR_SERIAL
TAG_DEVICE_NAME = 80
TAG_CAPTURE_LOCATION = 81
TAG_TIME_STAMP = 82  # absolute capture time: uint32 seconds + uint32 nanoseconds
TAG_INFO = 83
TAG_CAPTURE_ID = 84

TAG_NAMES = {
    value: name[4:].lower()
    for name, value in dict(globals()).items()
    if name.startswith("TAG_") and isinstance(value, int)
}

MAX_TAG_VALUE = 255


class TzspError(ValueError):
    """A datagram that is not valid TZSP. ``reason`` is a short label for counters."""

    reason = "malformed"


class ShortDatagram(TzspError):
    reason = "short"


class BadVersion(TzspError):
    reason = "bad-version"


class UnknownType(TzspError):
    reason = "unknown-type"


class TagOverrun(TzspError):
    reason = "tag-overrun"


class MissingEnd(TzspError):
    reason = "no-end"


@dataclass(frozen=True)
class Tag:
    """One tagged field. PAD and END are structure, never kept as Tags."""

    number: int
    value: bytes


@dataclass(frozen=True)
class Datagram:
    version: int
    type: int
    encapsulation: int
    tags: tuple[Tag, ...]
    frame: bytes

    @property
    def carries_frame(self) -> bool:
        # Type 1 (TX) is accepted as a received frame: RSniffer sends its captures that way.
        return self.type in _FRAME_TYPES

    def tag(self, number: int) -> Tag | None:
        for tag in self.tags:
            if tag.number == number:
                return tag
        return None

    @property
    def original_length(self) -> int | None:
        return _unsigned(self.tag(TAG_ORIGINAL_LENGTH), (2, 4))

    @property
    def packet_id(self) -> int | None:
        return _unsigned(self.tag(TAG_PACKET_ID), (4,))

    @property
    def capture_time_ns(self) -> int | None:
        tag = self.tag(TAG_TIME_STAMP)
        if tag is None or len(tag.value) != 8:
            return None
        seconds, nanoseconds = struct.unpack("!II", tag.value)
        if nanoseconds >= 1_000_000_000:
            return None
        return seconds * 1_000_000_000 + nanoseconds


@dataclass(frozen=True)
class Frame:
    """One captured frame as it goes into a pcap record."""

    encapsulation: int
    data: bytes
    timestamp_ns: int
    orig_len: int


def _unsigned(tag: Tag | None, sizes: tuple[int, ...]) -> int | None:
    if tag is None or len(tag.value) not in sizes:
        return None
    return int.from_bytes(tag.value, "big")


def decode(data: bytes) -> Datagram:
    """Parse one UDP payload. Raises only TzspError subclasses, whatever the input."""
    data = bytes(data)
    if data[:5] == FAST_HEADER:  # what RouterOS sends: no tags to walk
        return Datagram(VERSION, RX_PACKET, 1, (), data[5:])
    if len(data) < HEADER.size:
        raise ShortDatagram(f"{len(data)} bytes is shorter than the 4-byte TZSP header")
    version, kind, encapsulation = HEADER.unpack_from(data)
    if version != VERSION:
        raise BadVersion(f"version {version}, only version {VERSION} exists")
    if kind not in TYPE_NAMES:
        raise UnknownType(f"packet type {kind} is not one of 0-5")
    if kind in _TAGLESS_TYPES:
        # Wireshark skips whatever follows a keepalive/port-opener header; so do we.
        return Datagram(version, kind, encapsulation, (), b"")
    tags, frame_start = _decode_tags(data, HEADER.size)
    return Datagram(version, kind, encapsulation, tuple(tags), data[frame_start:])


def _decode_tags(data: bytes, offset: int) -> tuple[list[Tag], int]:
    tags: list[Tag] = []
    end = len(data)
    while offset < end:
        number = data[offset]
        if number == TAG_END:
            return tags, offset + 1
        if number == TAG_PADDING:
            offset += 1
            continue
        if offset + 1 >= end:
            raise TagOverrun(f"tag {number} at offset {offset} has no length byte")
        length = data[offset + 1]
        start = offset + 2
        remaining = end - start
        if length > remaining:
            raise TagOverrun(f"tag {number} at offset {offset} claims {length} bytes but only {remaining} remain")
        tags.append(Tag(number, data[start : start + length]))
        offset = start + length
    raise MissingEnd(f"no END tag in {end} bytes: the tag list runs to the end of the datagram")


def frame_from_datagram(datagram: Datagram, received_ns: int) -> Frame:
    """The pcap view of a frame-carrying datagram: tag 82 time if present, else receive time;
    original length from tag 41 when it is larger than what arrived (sender-side slicing)."""
    if not datagram.carries_frame:
        raise ValueError(f"a {TYPE_NAMES[datagram.type]} datagram carries no frame")
    if not datagram.tags:
        return Frame(datagram.encapsulation, datagram.frame, received_ns, len(datagram.frame))
    captured = datagram.capture_time_ns
    original = datagram.original_length or 0
    return Frame(
        encapsulation=datagram.encapsulation,
        data=datagram.frame,
        timestamp_ns=received_ns if captured is None else captured,
        orig_len=max(len(datagram.frame), original),
    )


def encode(datagram: Datagram) -> bytes:
    """Serialise a Datagram; decode(encode(d)) == d for every valid d."""
    if datagram.version != VERSION:
        raise ValueError(f"cannot encode version {datagram.version}")
    if datagram.type not in TYPE_NAMES:
        raise ValueError(f"cannot encode packet type {datagram.type}")
    if not 0 <= datagram.encapsulation <= 0xFFFF:
        raise ValueError(f"encapsulation {datagram.encapsulation} does not fit in 16 bits")
    header = HEADER.pack(datagram.version, datagram.type, datagram.encapsulation)
    if datagram.type in _TAGLESS_TYPES:
        if datagram.tags or datagram.frame:
            raise ValueError(f"a {TYPE_NAMES[datagram.type]} datagram has no tags and no frame")
        return header
    return b"".join((header, _encode_tags(datagram.tags), datagram.frame))


def _encode_tags(tags: Iterable[Tag]) -> bytes:
    parts = []
    for tag in tags:
        if not TAG_END < tag.number <= 0xFF:
            raise ValueError(f"tag number {tag.number} is not 2-255 (PAD/END are implicit)")
        if len(tag.value) > MAX_TAG_VALUE:
            raise ValueError(f"tag {tag.number} value of {len(tag.value)} bytes exceeds 255")
        parts.append(bytes((tag.number, len(tag.value))) + bytes(tag.value))
    parts.append(bytes((TAG_END,)))
    return b"".join(parts)


def encode_frame(
    frame: bytes,
    encapsulation: int = 1,
    tags: Iterable[Tag] = (),
    type: int = RX_PACKET,  # noqa: A002 - the protocol's own word
) -> bytes:
    """One frame as a TZSP datagram; with no tags this is exactly what RouterOS sends."""
    tags = tuple(tags)
    if encapsulation == 1 and not tags and type == RX_PACKET:
        return FAST_HEADER + bytes(frame)
    return encode(Datagram(VERSION, type, encapsulation, tags, bytes(frame)))
