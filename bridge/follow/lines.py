"""Bytes in, complete lines out: pure, no files (the follower's innermost layer).

``LineSplitter`` turns a byte stream fed in arbitrary chunks into complete lines; a partial
last line waits for its newline; a line longer than ``max_line_bytes`` is skipped as it
streams (never held in memory) and reported once its newline arrives.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_LINE_BYTES = 1 << 20  # longer lines are skipped with a warning


@dataclass(frozen=True)
class RawLine:
    """A line cut out of the byte stream: ``data`` is None when it was too long and skipped."""

    offset: int
    end: int  # offset just after its newline
    data: bytes | None


class LineSplitter:
    """Turns a byte stream, fed in arbitrary chunks, into complete lines.

    ``offset`` is where the line being assembled starts (just after the last complete line);
    ``read_to`` is where the next byte fed is in the file. Memory is bounded by
    ``max_line_bytes``: an over-long line is dropped as it streams and reported once its newline
    arrives as a RawLine with ``data=None``.
    """

    def __init__(self, offset: int = 0, max_line_bytes: int = MAX_LINE_BYTES):
        if max_line_bytes < 1:
            raise ValueError("max_line_bytes must be at least 1")
        self.offset = offset
        self.read_to = offset
        self.max_line_bytes = max_line_bytes
        self._pending = bytearray()
        self._skipping = False

    @property
    def has_partial(self) -> bool:
        return self.read_to > self.offset

    def feed(self, data: bytes) -> list[RawLine]:
        out: list[RawLine] = []
        start, size = 0, len(data)
        while start < size:
            newline = data.find(b"\n", start)
            if newline < 0:
                piece_len = size - start
                if not self._skipping:
                    if len(self._pending) + piece_len > self.max_line_bytes:
                        self._skipping = True
                        self._pending = bytearray()
                    else:
                        self._pending += data[start:]
                self.read_to += piece_len
                break
            end = self.read_to + (newline - start) + 1
            if self._skipping or len(self._pending) + (newline - start) > self.max_line_bytes:
                out.append(RawLine(self.offset, end, None))
            elif self._pending:
                out.append(RawLine(self.offset, end, bytes(self._pending) + data[start:newline]))
            else:
                out.append(RawLine(self.offset, end, data[start:newline]))
            self._pending = bytearray()
            self._skipping = False
            self.offset = self.read_to = end
            start = newline + 1
        return out

    def take_partial(self) -> RawLine | None:
        """The unterminated rest, as a final line -- for a file nobody will write to again."""
        if not self.has_partial:
            return None
        raw = RawLine(self.offset, self.read_to, None if self._skipping else bytes(self._pending))
        self._pending = bytearray()
        self._skipping = False
        self.offset = self.read_to
        return raw


def decode_line(data: bytes) -> str:
    if data.endswith(b"\r"):
        data = data[:-1]
    return data.decode("utf-8", errors="replace")
