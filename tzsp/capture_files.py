"""Read capture files (classic pcap in µs/ns, either byte order, and pcapng) with dpkt's
header/block parsers, keeping timestamps as exact integer nanoseconds.

dpkt's own Readers turn timestamps into floats and follow only the first pcapng interface,
so the record loops live here; dpkt does the field parsing.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import BinaryIO

import dpkt
from dpkt import pcap as dpcap
from dpkt import pcapng as dpcapng

_NS_PER_S = 1_000_000_000
_LINKTYPE_MASK = 0xFFFF  # upper bits of the pcap header field carry FCS flags
_PCAP_NS_MAGICS = (dpcap.TCPDUMP_MAGIC_NANO, dpcap.PMUDPCT_MAGIC_NANO)
_PCAPNG_SIMPLE_PACKET = dpcapng.PCAPNG_BT_SPB

Records = Iterator[tuple[int, bytes]]


class CaptureError(ValueError):
    """The file is missing, unreadable, not a capture, or truncated/corrupt."""


def read_capture(path) -> tuple[int, Records]:
    """(linktype, iterator of (timestamp_ns, frame)) for a pcap or pcapng file.

    The header is read now, so a wrong file fails here; damage later in the file raises
    CaptureError from the iterator, naming the file and the offset.
    """
    name = os.fspath(path)
    try:
        stream = open(name, "rb")
    except OSError as exc:
        raise CaptureError(f"{name}: cannot open: {exc.strerror or exc}") from exc
    try:
        head = stream.read(4)
        stream.seek(0)
        if len(head) < 4:
            raise CaptureError(f"{name}: {len(head)} bytes, too short to be a capture file")
        if struct.unpack(">I", head)[0] == dpcapng.PCAPNG_BT_SHB:
            linktype, records = _open_pcapng(stream, name)
        else:
            linktype, records = _open_pcap(stream, name)
    except BaseException:
        stream.close()
        raise
    return linktype, _closing(stream, records)


def _closing(stream: BinaryIO, records: Records) -> Records:
    with stream:
        yield from records


def _read_exact(stream: BinaryIO, size: int, name: str, what: str) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise CaptureError(
            f"{name}: truncated {what} at offset {stream.tell() - len(data)}: needed {size} bytes, got {len(data)}"
        )
    return data


# ---- classic pcap -----------------------------------------------------------------------------


def _open_pcap(stream: BinaryIO, name: str) -> tuple[int, Records]:
    raw = stream.read(dpcap.FileHdr.__hdr_len__)
    if len(raw) < dpcap.FileHdr.__hdr_len__:
        raise CaptureError(f"{name}: too short for a pcap file header")
    magic = struct.unpack(">I", raw[:4])[0]
    record_header = dpcap.MAGIC_TO_PKT_HDR.get(magic)
    if record_header is None:
        raise CaptureError(f"{name}: not a pcap or pcapng file (magic 0x{magic:08x})")
    little = record_header in (dpcap.LEPktHdr, dpcap.LEPktModHdr)
    header = (dpcap.LEFileHdr if little else dpcap.FileHdr)(raw)
    ns_per_unit = 1 if magic in _PCAP_NS_MAGICS else 1000
    return header.linktype & _LINKTYPE_MASK, _pcap_records(stream, name, record_header, ns_per_unit)


def _pcap_records(stream: BinaryIO, name: str, record_header, ns_per_unit: int) -> Records:
    # The four leading fields of dpkt's record header, unpacked with struct: dpkt.Packet
    # construction per record would double the cost of a replay.
    fields = struct.Struct(record_header.__hdr_fmt__[:5])
    size, read = record_header.__hdr_len__, stream.read
    while True:
        raw = read(size)
        if not raw:
            return
        if len(raw) < size:
            raise CaptureError(f"{name}: truncated record header at offset {stream.tell() - len(raw)}")
        seconds, fraction, caplen, _ = fields.unpack_from(raw)
        data = _read_exact(stream, caplen, name, "packet data")
        yield seconds * _NS_PER_S + fraction * ns_per_unit, data


# ---- pcapng -----------------------------------------------------------------------------------


class _Interface:
    __slots__ = ("linktype", "units_per_s", "offset_ns")

    def __init__(self, idb) -> None:
        self.linktype = idb.linktype
        self.units_per_s = 1_000_000
        self.offset_ns = 0
        for opt in idb.opts:
            if opt.code == dpcapng.PCAPNG_OPT_IF_TSRESOL and opt.data:
                exponent = opt.data[0] & 0x7F
                self.units_per_s = (2 if opt.data[0] & 0x80 else 10) ** exponent
            elif opt.code == dpcapng.PCAPNG_OPT_IF_TSOFFSET and len(opt.data) == 8:
                order = "little" if idb.__hdr_fmt__[0] == "<" else "big"
                self.offset_ns = int.from_bytes(opt.data, order, signed=True) * _NS_PER_S

    def timestamp_ns(self, high: int, low: int) -> int:
        return self.offset_ns + ((high << 32) | low) * _NS_PER_S // self.units_per_s


class PcapngSection:
    """Pcapng block state without I/O: the current section's byte order and interfaces. Used over
    a seekable file here, and over a pipe by ``bridge.scan.packet_source.PcapStream``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.little = True
        self.interfaces: list[_Interface] = []
        self.offset = 0  # of the block being handled, for error messages

    def block_header(self, raw: bytes, offset: int) -> tuple[int, int]:
        """(type, total length) from a block's first 12 bytes; a section header sets the byte order."""
        self.offset = offset
        block_type = struct.unpack(">I", raw[:4])[0]
        if block_type == dpcapng.PCAPNG_BT_SHB:  # byte order is set per section
            bom = struct.unpack(">I", raw[8:12])[0]
            if bom not in (dpcapng.BYTE_ORDER_MAGIC, dpcapng.BYTE_ORDER_MAGIC_LE):
                raise CaptureError(f"{self.name}: bad pcapng byte-order magic at offset {offset}")
            self.little = bom == dpcapng.BYTE_ORDER_MAGIC_LE
            self.interfaces = []
        order = "<" if self.little else ">"
        block_type, length = struct.unpack(order + "II", raw[:8])
        if length < 12 or length % 4:
            raise CaptureError(f"{self.name}: bad pcapng block length {length} at offset {offset}")
        return block_type, length

    def parse(self, little_cls, big_cls, raw: bytes):
        try:
            return (little_cls if self.little else big_cls)(raw)
        except (dpkt.UnpackError, struct.error) as exc:
            raise CaptureError(f"{self.name}: corrupt pcapng block at offset {self.offset}: {exc}") from exc

    def interface(self, index: int) -> _Interface:
        if index >= len(self.interfaces):
            raise CaptureError(f"{self.name}: packet refers to undefined interface {index}")
        return self.interfaces[index]

    def packet(self, block_type: int, raw: bytes):
        """Record an interface, or return (linktype, timestamp_ns, data) for a packet block."""
        return _packet_in_block(self, block_type, raw)


class _PcapngReader(PcapngSection):
    """Walks the blocks of a file."""

    def __init__(self, stream: BinaryIO, name: str) -> None:
        super().__init__(name)
        self.stream = stream

    def next_block(self):
        """(type, raw block) or None at a clean end of file."""
        offset = self.stream.tell()
        raw = self.stream.read(12)
        if not raw:
            return None
        if len(raw) < 12:
            raise CaptureError(f"{self.name}: truncated pcapng block at offset {offset}")
        block_type, length = self.block_header(raw, offset)
        raw += _read_exact(self.stream, length - 12, self.name, "pcapng block")
        return block_type, raw


def _open_pcapng(stream: BinaryIO, name: str) -> tuple[int, Records]:
    reader = _PcapngReader(stream, name)
    while not reader.interfaces:
        block = reader.next_block()
        if block is None:
            raise CaptureError(f"{name}: pcapng file without an interface description block")
        _packet_in_block(reader, *block)  # a packet before any interface raises
    linktype = reader.interfaces[0].linktype
    return linktype, _pcapng_records(reader, linktype)


def _pcapng_records(reader: _PcapngReader, linktype: int) -> Records:
    while True:
        block = reader.next_block()
        if block is None:
            return
        packet = _packet_in_block(reader, *block)
        if packet is None:
            continue
        interface_linktype, timestamp, data = packet
        if interface_linktype != linktype:
            raise CaptureError(
                f"{reader.name}: mixes link types {linktype} and {interface_linktype}; "
                "split it by interface first (e.g. tshark -r IN -Y frame.interface_id==0 -w OUT)"
            )
        yield timestamp, data


def _packet_in_block(reader: PcapngSection, block_type: int, raw: bytes):
    """Record an interface, or return (linktype, timestamp_ns, data) for a packet block."""
    if block_type == dpcapng.PCAPNG_BT_IDB:
        idb = reader.parse(dpcapng.InterfaceDescriptionBlockLE, dpcapng.InterfaceDescriptionBlock, raw)
        reader.interfaces.append(_Interface(idb))
        return None
    if block_type in (dpcapng.PCAPNG_BT_EPB, dpcapng.PCAPNG_BT_PB):
        classes = (
            (dpcapng.EnhancedPacketBlockLE, dpcapng.EnhancedPacketBlock)
            if block_type == dpcapng.PCAPNG_BT_EPB
            else (dpcapng.PacketBlockLE, dpcapng.PacketBlock)
        )
        packet = reader.parse(*classes, raw)
        interface = reader.interface(packet.iface_id)
        return interface.linktype, interface.timestamp_ns(packet.ts_high, packet.ts_low), packet.pkt_data
    if block_type == _PCAPNG_SIMPLE_PACKET:
        # No timestamp and no caplen: the data is the block body after the original length.
        interface = reader.interface(0)
        order = "<" if reader.little else ">"
        (original,) = struct.unpack_from(order + "I", raw, 8)
        body = raw[12:-4]
        return interface.linktype, 0, body[: min(original, len(body))]
    return None  # name resolution, statistics, custom blocks: no packets
