"""A live pcap stream (tzspd's stdout, a pipe, a file) -> frames -> scan probes.

``PcapStream`` is pure: feed it bytes in any chunking, get back the complete records (classic
pcap, µs or ns, either byte order; or pcapng, as Wireshark and dumpcap write, its blocks parsed by
dpkt through ``tzsp.capture_files.PcapngSection``). ``stream_probes`` is the thin shell: it reads
whatever the pipe holds now (``os.read``, no waiting for a full buffer), so each packet is handled
as it arrives rather than at the end of the capture.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

from bridge.scan.detector import Probe
from bridge.scan.probes import probe_from_frame
from tzsp.capture_files import CaptureError, PcapngSection

READ_SIZE = 1 << 16
MAX_RECORD = 1 << 20  # a record claiming more than this is corruption, not a packet
_GLOBAL_HEADER = 24
_RECORD_HEADER = 16
_MAGICS = {  # first four bytes as written -> (byte order, timestamp fraction divisor)
    b"\xd4\xc3\xb2\xa1": ("<", 1e6),
    b"\xa1\xb2\xc3\xd4": (">", 1e6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e9),
    b"\xa1\xb2\x3c\x4d": (">", 1e9),
}
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
_PCAPNG_BLOCK_HEADER = 12  # type, total length, and the first body word (a section's byte-order magic)


class PcapStreamError(ValueError):
    """The stream is not pcap or pcapng, or a record is corrupt; ``offset`` says where."""

    def __init__(self, message: str, offset: int):
        super().__init__(f"{message} (at byte {offset})")
        self.offset = offset


class PcapStream:
    """Incremental pcap/pcapng reader over bytes: ``feed(chunk) -> [(time, frame), ...]``."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._consumed = 0  # bytes of the stream already turned into records
        self.linktype: int | None = None
        self._record: struct.Struct | None = None
        self._divisor = 1e6
        self._pcapng: PcapngSection | None = None
        self.records = 0

    def feed(self, data: bytes) -> list[tuple[float, bytes]]:
        self._buffer += data
        out: list[tuple[float, bytes]] = []
        if self._pcapng is None and self._record is None and not self._read_header():
            return out
        if self._pcapng is not None:
            return self._pcapng_records(out)
        assert self._record is not None
        buffer, position = self._buffer, 0
        while len(buffer) - position >= _RECORD_HEADER:
            seconds, fraction, stored, _ = self._record.unpack_from(buffer, position)
            if stored > MAX_RECORD:
                raise PcapStreamError(
                    f"record of {stored} bytes: not a pcap stream, or corrupt", self._consumed + position
                )
            end = position + _RECORD_HEADER + stored
            if end > len(buffer):
                break
            out.append((seconds + fraction / self._divisor, bytes(buffer[position + _RECORD_HEADER : end])))
            position = end
        del buffer[:position]
        self._consumed += position
        self.records += len(out)
        return out

    @property
    def pending(self) -> int:
        """Bytes held that do not yet make a complete record (a cut-off tail at the end of the stream)."""
        return len(self._buffer)

    def _read_header(self) -> bool:
        if len(self._buffer) < 4:
            return False
        magic = bytes(self._buffer[:4])
        if magic == _PCAPNG_MAGIC:
            self._pcapng = PcapngSection("pcapng")
            return True
        if magic not in _MAGICS:
            raise PcapStreamError(f"not a pcap stream (starts with {magic.hex()})", 0)
        if len(self._buffer) < _GLOBAL_HEADER:
            return False
        order, self._divisor = _MAGICS[magic]
        (linktype,) = struct.unpack_from(order + "I", self._buffer, 20)
        self.linktype = linktype & 0xFFFF
        self._record = struct.Struct(order + "IIII")
        del self._buffer[:_GLOBAL_HEADER]
        self._consumed = _GLOBAL_HEADER
        return True

    def _pcapng_records(self, out: list[tuple[float, bytes]]) -> list[tuple[float, bytes]]:
        """Whole blocks off the buffer: the framing is the block's own length, the parsing dpkt's."""
        section, buffer, position = self._pcapng, self._buffer, 0
        assert section is not None
        try:
            while len(buffer) - position >= _PCAPNG_BLOCK_HEADER:
                offset = self._consumed + position
                block_type, length = section.block_header(
                    bytes(buffer[position : position + _PCAPNG_BLOCK_HEADER]), offset
                )
                if length > MAX_RECORD:
                    raise PcapStreamError(f"pcapng block of {length} bytes: corrupt", offset)
                if len(buffer) - position < length:
                    break
                packet = section.packet(block_type, bytes(buffer[position : position + length]))
                position += length
                if self.linktype is None and section.interfaces:
                    self.linktype = section.interfaces[0].linktype
                if packet is None:
                    continue
                linktype, stamp_ns, frame = packet
                if linktype != self.linktype:
                    raise PcapStreamError(f"pcapng mixes link types {self.linktype} and {linktype}", offset)
                out.append((stamp_ns / 1e9, bytes(frame)))
        except CaptureError as exc:
            raise PcapStreamError(str(exc), self._consumed + position) from None
        finally:
            del buffer[:position]
            self._consumed += position
            self.records += len(out)
        return out


def stream_probes(fd: int, stream: PcapStream | None = None) -> Iterator[Probe | None]:
    """Probes from the pcap stream on ``fd`` until its end; None for each frame that is no probe.

    Yielding None too lets the caller count packets. At the end, ``stream.pending`` tells whether
    the stream stopped inside a record (the writer was killed mid-write).
    """
    stream = stream if stream is not None else PcapStream()
    while True:
        data = os.read(fd, READ_SIZE)
        if not data:
            return
        for stamp, frame in stream.feed(data):
            assert stream.linktype is not None
            yield probe_from_frame(stream.linktype, frame, stamp)
