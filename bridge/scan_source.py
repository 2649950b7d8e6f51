"""A live pcap stream (tzspd's stdout, a pipe, a file) -> frames -> scan probes.

``PcapStream`` is pure: feed it bytes in any chunking, get back the complete records (classic
pcap, µs or ns, either byte order). ``stream_probes`` is the thin shell: it reads whatever the
pipe holds now (``os.read``, no waiting for a full buffer), so each packet is handled as it
arrives rather than at the end of the capture. tzspd writes classic pcap; pcapng is refused with
a clear message (``tzsp.capture_files`` reads pcapng files, but needs to seek).
"""

from __future__ import annotations

import os
import struct
from typing import Iterator, List, Optional, Tuple

from bridge.probes import probe_from_frame
from bridge.scan import Probe

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


class PcapStreamError(ValueError):
    """The stream is not classic pcap, or a record is corrupt; ``offset`` says where."""

    def __init__(self, message: str, offset: int):
        super().__init__(f"{message} (at byte {offset})")
        self.offset = offset


class PcapStream:
    """Incremental classic-pcap reader over bytes: ``feed(chunk) -> [(time, frame), ...]``."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._consumed = 0  # bytes of the stream already turned into records
        self.linktype: Optional[int] = None
        self._record: Optional[struct.Struct] = None
        self._divisor = 1e6
        self.records = 0

    def feed(self, data: bytes) -> List[Tuple[float, bytes]]:
        self._buffer += data
        out: List[Tuple[float, bytes]] = []
        if self._record is None and not self._read_header():
            return out
        assert self._record is not None
        buffer, position = self._buffer, 0
        while len(buffer) - position >= _RECORD_HEADER:
            seconds, fraction, stored, _ = self._record.unpack_from(buffer, position)
            if stored > MAX_RECORD:
                raise PcapStreamError(f"record of {stored} bytes: not a pcap stream, or corrupt", self._consumed + position)
            end = position + _RECORD_HEADER + stored
            if end > len(buffer):
                break
            out.append((seconds + fraction / self._divisor, bytes(buffer[position + _RECORD_HEADER:end])))
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
            raise PcapStreamError("a pcapng stream; expected classic pcap (as tzspd and tcpdump -w - write)", 0)
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


def stream_probes(fd: int, stream: Optional[PcapStream] = None) -> Iterator[Optional[Probe]]:
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
