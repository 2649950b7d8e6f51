"""The follower's file layer: one open file read forward from an offset, and a look at a
followed path's rotation chain on disk for the planner (bridge/follow/rotation.py).

A compressed rotation (``.gz``, ``.bz2``, ``.xz``, read with the standard library) is read
like any other file, by uncompressed offset; its identity is the compressed file's inode and
its fingerprint that of its uncompressed first bytes.
"""

from __future__ import annotations

import bz2
import errno
import gzip
import io
import logging
import lzma
import os
import stat as stat_module
from collections.abc import Iterable
from dataclasses import dataclass

from bridge.follow.lines import MAX_LINE_BYTES, LineSplitter, RawLine, decode_line
from bridge.follow.positions import FINGERPRINT_BYTES, Position, fingerprint
from bridge.follow.rotation import FileInfo, Identity, Plan, order_rotated, parse_rotated_name, plan_chain

log = logging.getLogger("bridge.follow")

READ_CHUNK = 1 << 16
READ_BUDGET = 1 << 20  # bytes read from one file per pass, so several files take turns

_OPENERS = {".gz": gzip.GzipFile, ".bz2": bz2.BZ2File, ".xz": lzma.LZMAFile}


@dataclass(frozen=True)
class Line:
    """One complete line, without its line ending (``\\n`` or ``\\r\\n``).

    ``path`` is the followed path as configured (also when the line came from a rotated
    file); ``offset`` and ``number`` (1-based) locate the line in the file it was read from
    (uncompressed); ``position`` is where reading resumes after this line -- what ``commit``
    saves; ``file`` is where it was read from.
    """

    path: str
    offset: int
    number: int
    text: str
    position: Position
    file: str = ""


class _PreadFile(io.RawIOBase):
    """A read-only file object over a descriptor with a position of its own (pread), so
    several readers of one descriptor never move each other's place."""

    def __init__(self, fd: int):
        super().__init__()
        self._fd = fd
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = os.pread(self._fd, len(buffer), self._pos)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def _stream(fd: int, suffix: str):
    return _OPENERS[suffix](fileobj=io.BufferedReader(_PreadFile(fd), READ_CHUNK), mode="rb")


def compression_of(file_path: str) -> str:
    for suffix in _OPENERS:
        if file_path.endswith(suffix):
            return suffix
    return ""


class _Compressed:
    """A compressed file's uncompressed bytes, read forward (a jump back reopens the stream).

    A stream that ends early (the compressor is still writing it) reads as ending there, with
    ``complete`` False; the next read starts the stream again.
    """

    def __init__(self, fd: int, suffix: str):
        self._fd = fd
        self._suffix = suffix
        self._stream = None
        self._pos = 0
        self.complete = False

    def _open(self) -> None:
        self._stream = _stream(self._fd, self._suffix)
        self._pos = 0

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def read_at(self, offset: int, size: int) -> bytes:
        try:
            if self._stream is None or offset < self._pos:
                self.close()
                self._open()
            while self._pos < offset:  # skip forward (a resume by uncompressed offset)
                skipped = self._stream.read(min(READ_CHUNK * 16, offset - self._pos))
                if not skipped:
                    self.complete = True
                    return b""
                self._pos += len(skipped)
            data = self._stream.read(size)
        except (EOFError, OSError, lzma.LZMAError, ValueError) as e:
            # Incomplete (still being written) or damaged: what was readable stays delivered.
            self.close()
            self.complete = False
            if not isinstance(e, EOFError):
                log.warning("cannot decompress past byte %d: %s", self._pos, e)
            return b""
        self._pos += len(data)
        if not data:
            self.complete = True
        return data


class FileReader:
    """One open file, read forward from a position.

    ``path`` is the followed path (for Line.path and positions), ``file_path`` where the file
    was opened (a rotated file may have another name). Holding the descriptor keeps a renamed
    or deleted file readable to its end.
    """

    def __init__(
        self,
        path: str,
        file_path: str,
        fd: int,
        offset: int = 0,
        line: int = 0,
        max_line_bytes: int = MAX_LINE_BYTES,
        compression: str = "",
    ):
        st = os.fstat(fd)
        self.path = path
        self.file_path = file_path
        self.fd = fd
        self.identity: Identity = (st.st_dev, st.st_ino)
        self.compression = compression
        self._compressed = _Compressed(fd, compression) if compression else None
        self.line = line  # complete lines before splitter.offset
        self.at_eof = False
        self.max_line_bytes = max_line_bytes
        self.mtime_ns = st.st_mtime_ns
        self._splitter = LineSplitter(offset, max_line_bytes)
        self._head = b""
        self._full_fingerprint: str | None = None
        if offset > 0:  # the bytes already read: known now, before anyone can empty the file
            self._head_bytes(min(offset, FINGERPRINT_BYTES))

    @classmethod
    def open(
        cls,
        path: str,
        file_path: str | None = None,
        offset: int = 0,
        line: int = 0,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> FileReader:
        """Open ``file_path`` (default: the followed path); raises OSError like os.open."""
        file_path = file_path or path
        fd = os.open(file_path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            if not stat_module.S_ISREG(os.fstat(fd).st_mode):
                raise IsADirectoryError(errno.EISDIR, "not a regular file", file_path)
            return cls(path, file_path, fd, offset, line, max_line_bytes, compression_of(file_path))
        except BaseException:
            os.close(fd)
            raise

    @property
    def offset(self) -> int:
        """Just after the last complete line read."""
        return self._splitter.offset

    @property
    def complete(self) -> bool:
        """A compressed file was read to its proper end (a plain file always counts as complete)."""
        return self._compressed is None or self._compressed.complete

    def close(self) -> None:
        if self._compressed is not None:
            self._compressed.close()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> FileReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _read(self, offset: int, size: int) -> bytes:
        if self._compressed is not None:
            return self._compressed.read_at(offset, size)
        return os.pread(self.fd, size, offset)

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def truncated(self) -> bool:
        """The file is now shorter than what was already read (copytruncate, ``> file``)."""
        return self._compressed is None and self.size() < self._splitter.read_to

    def rewritten(self) -> bool:
        """The bytes already read at the start of the file are not there any more."""
        if self._compressed is not None:
            return False
        known = self._known_head()
        return bool(known) and os.pread(self.fd, len(known), 0) != known

    def fingerprint(self) -> str:
        """Fingerprint of the part of the file's start that has already been read."""
        return self._fingerprint_at(self.offset)

    def position(self) -> Position:
        return self._position(self.offset, self.line)

    def restart(self) -> None:
        """Read again from the start (the file was truncated or rewritten)."""
        self._splitter = LineSplitter(0, self.max_line_bytes)
        self.line = 0
        self.at_eof = False
        self._head = b""
        self._full_fingerprint = None

    def read_available(self, budget: int = READ_BUDGET) -> list[Line]:
        """New complete lines; ``at_eof`` tells whether the file was read to its current end."""
        out: list[Line] = []
        read = 0
        self.at_eof = False
        while read < budget:
            chunk = self._read(self._splitter.read_to, READ_CHUNK)
            if not chunk:
                self.at_eof = True
                break
            if not read:
                self.mtime_ns = os.fstat(self.fd).st_mtime_ns  # for positions: see Position.mtime_ns
            read += len(chunk)
            self._convert(self._splitter.feed(chunk), out)
        return out

    def finish(self) -> list[Line]:
        """Everything left, including an unterminated last line: the file is done with."""
        out: list[Line] = []
        while True:
            more = self.read_available()
            out.extend(more)
            if self.at_eof:
                break
        partial = self._splitter.take_partial()
        if partial is not None:
            log.warning(
                "%s: last line of %s at offset %d has no newline; delivering it as is",
                self.path,
                self.file_path,
                partial.offset,
            )
            self._convert([partial], out)
        return out

    def _convert(self, raws: Iterable[RawLine], out: list[Line]) -> None:
        for raw in raws:
            self.line += 1
            if raw.data is None:
                log.warning(
                    "%s: skipped line %d of %s at offset %d: longer than %d bytes",
                    self.path,
                    self.line,
                    self.file_path,
                    raw.offset,
                    self.max_line_bytes,
                )
                continue
            out.append(
                Line(
                    self.path,
                    raw.offset,
                    self.line,
                    decode_line(raw.data),
                    self._position(raw.end, self.line),
                    self.file_path,
                )
            )

    def _position(self, offset: int, line: int) -> Position:
        return Position(
            self.path, self.identity[0], self.identity[1], offset, line, self._fingerprint_at(offset), self.mtime_ns
        )

    def _fingerprint_at(self, offset: int) -> str:
        if offset >= FINGERPRINT_BYTES:
            if self._full_fingerprint is None:
                self._full_fingerprint = fingerprint(self._head_bytes(FINGERPRINT_BYTES))
            return self._full_fingerprint
        return fingerprint(self._head_bytes(offset))

    def _head_bytes(self, length: int) -> bytes:
        if len(self._head) < length:
            if self._compressed is not None:
                self._head = read_head(self.file_path, fd=self.fd) or b""
            else:
                self._head = os.pread(self.fd, FINGERPRINT_BYTES, 0)
        return self._head[:length]

    def _known_head(self) -> bytes:
        return self._head_bytes(min(self.offset, FINGERPRINT_BYTES))


def count_lines(fd: int, upto: int) -> tuple[int, int]:
    """(complete lines, offset after the last newline) within the first ``upto`` bytes of fd."""
    lines, last_end, pos = 0, 0, 0
    while pos < upto:
        chunk = os.pread(fd, min(READ_CHUNK * 16, upto - pos), pos)
        if not chunk:
            break
        found = chunk.count(b"\n")
        if found:
            lines += found
            last_end = pos + chunk.rfind(b"\n") + 1
        pos += len(chunk)
    return lines, last_end


def read_head(path: str, length: int = FINGERPRINT_BYTES, fd: int | None = None) -> bytes | None:
    """The first ``length`` bytes of ``path``'s content, uncompressed for a compressed file
    (fewer if it is shorter or still being written); None if unreadable."""
    suffix = compression_of(path)
    own = fd is None
    try:
        if own:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            if not suffix:
                return os.pread(fd, length, 0)
            out = b""
            try:
                with _stream(fd, suffix) as stream:
                    while len(out) < length:
                        more = stream.read(length - len(out))
                        if not more:
                            break
                        out += more
            except (EOFError, lzma.LZMAError, ValueError, OSError):
                pass  # what could be decompressed so far
            return out
        finally:
            if own:
                os.close(fd)
    except OSError:
        return None


def _info(path: str, st: os.stat_result, order: tuple = ()) -> FileInfo:
    compression = compression_of(path) if order else ""
    return FileInfo(
        path,
        (st.st_dev, st.st_ino),
        None if compression else st.st_size,
        st.st_mtime_ns,
        read_head(path),
        compression,
        order,
    )


def snapshot_chain(path: str, tries: int = 5) -> tuple[FileInfo | None, list[FileInfo]]:
    """The file ``path`` names now (None: none) and its rotated files on disk, oldest first.

    A numeric rotation renames every file in turn, and a directory listing taken meanwhile may
    miss a file being renamed: the chain is listed until two listings agree (a few tries)."""
    last = _scan_chain(path)
    for _ in range(tries - 1):
        again = _scan_chain(path)
        if _shape(again) == _shape(last):
            break
        last = again
    return last


def _shape(chain: tuple[FileInfo | None, list[FileInfo]]) -> list:
    current, rotated = chain
    return [(f.path, f.identity) for f in ([current] if current else []) + rotated]


def _scan_chain(path: str) -> tuple[FileInfo | None, list[FileInfo]]:
    directory, base = os.path.split(path)
    current = None
    try:
        st = os.stat(path)
        if stat_module.S_ISREG(st.st_mode):
            current = _info(path, st)
    except OSError:
        pass
    rotated = []
    try:
        entries = list(os.scandir(directory or "."))
    except OSError:
        entries = []
    for entry in entries:
        if entry.name == base:
            continue
        name = parse_rotated_name(base, entry.name)
        if name is None:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat_module.S_ISREG(st.st_mode):
            rotated.append((_info(entry.path, st, (name.scheme, name.key)), name))
    return current, order_rotated(rotated)


def plan_resume(path: str, saved: Position | None, start_at_end: bool = False) -> Plan:
    """The planner's answer for ``path`` as it is on disk now."""
    current, rotated = snapshot_chain(path)
    return plan_chain(current, rotated, saved, start_at_end)
