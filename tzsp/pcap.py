"""Classic libpcap stream format (what `snort -r -` reads), written little-endian; and where
each record of a batch ends. Pure."""

from __future__ import annotations

import struct
from collections.abc import Iterator

from tzsp.codec import Frame

MAGIC_US = 0xA1B2C3D4
MAGIC_NS = 0xA1B23C4D
VERSION_MAJOR, VERSION_MINOR = 2, 4
DEFAULT_SNAPLEN = 262144

GLOBAL_HEADER = struct.Struct("<IHHiIII")
RECORD_HEADER = struct.Struct("<IIII")  # ts_sec, ts_frac, incl_len, orig_len

_NS_PER_S = 1_000_000_000
_MAX_U32 = 0xFFFFFFFF


def global_header(linktype: int, nanosecond: bool = False, snaplen: int = DEFAULT_SNAPLEN) -> bytes:
    magic = MAGIC_NS if nanosecond else MAGIC_US
    return GLOBAL_HEADER.pack(magic, VERSION_MAJOR, VERSION_MINOR, 0, 0, snaplen, linktype)


def timestamp_fields(timestamp_ns: int, nanosecond: bool = False) -> tuple[int, int]:
    """(seconds, fraction) for a record header; clamped into the format's unsigned 32-bit range."""
    timestamp_ns = min(max(timestamp_ns, 0), _MAX_U32 * _NS_PER_S + _NS_PER_S - 1)
    seconds, fraction = divmod(timestamp_ns, _NS_PER_S)
    return seconds, fraction if nanosecond else fraction // 1000


def record(frame: Frame, nanosecond: bool = False) -> bytes:
    """Record header + frame bytes. orig_len never drops below the bytes actually stored."""
    seconds, fraction = timestamp_fields(frame.timestamp_ns, nanosecond)
    length = len(frame.data)
    orig_len = min(max(frame.orig_len, length), _MAX_U32)
    return RECORD_HEADER.pack(seconds, fraction, length, orig_len) + bytes(frame.data)


def record_ends(records: bytes | bytearray | memoryview) -> Iterator[int]:
    """Offsets just past each whole pcap record in ``records`` (a batch with no global header)."""
    view = memoryview(records)
    offset = 0
    header = RECORD_HEADER.size
    while offset + header <= len(view):
        incl_len = RECORD_HEADER.unpack_from(view, offset)[2]
        end = offset + header + incl_len
        if end > len(view):
            return
        yield end
        offset = end


def whole_records_within(records: bytes | bytearray | memoryview, limit: int) -> tuple[int, int]:
    """(bytes, records) of the longest prefix of whole records no longer than ``limit``."""
    size = count = 0
    for end in record_ends(records):
        if end > limit:
            break
        size, count = end, count + 1
    return size, count


def records_through(records: bytes | bytearray | memoryview, reach: int) -> tuple[int, int]:
    """(bytes, records) of the shortest prefix of whole records at least ``reach`` long (or all)."""
    size = count = 0
    for end in record_ends(records):
        size, count = end, count + 1
        if end >= reach:
            break
    return size, count
