"""Follow alert files as they are written: every complete line exactly once, across rotations
and restarts.

Layers, innermost first (the first three need no watchdog and are tested directly):

* ``LineSplitter`` -- pure: bytes in, complete lines out; a partial last line waits for its
  newline; a line longer than ``max_line_bytes`` is skipped (never held in memory).
* ``FileReader`` -- one open file read from a byte offset; notices truncation.
* ``plan_resume`` -- where to start after a restart, from the saved ``Position``: the same
  file at its offset, its rotated sibling (found by device+inode, checked by fingerprint)
  first, or the followed path from the start.
* ``Follower`` -- the thin shell: watchdog (inotify, or polling where inotify is unavailable)
  only wakes the reader; a slow safety poll catches anything an event missed.

Consumer API (one consumer thread)::

    with Follower(["/var/log/snort/alert_fast.txt"], "/var/lib/tzsp-ips") as follower:
        for line in follower.lines():      # blocks; ends on stop() (or after `timeout` idle)
            handle(line.path, line.text)
            follower.commit(line)          # the position is saved only now

``commit`` in the order lines were delivered. A line delivered but not committed before a
restart is delivered again (at-least-once for unhandled lines, exactly once for handled ones).
"""

from __future__ import annotations

import collections
import errno
import logging
import os
import stat as stat_module
import threading
import time
from dataclasses import dataclass
from typing import Deque, Dict, Iterable, Iterator, List, Optional, Tuple

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEventHandler,
)

from bridge.positions import (
    FINGERPRINT_BYTES,
    Position,
    PositionStore,
    fingerprint,
    fingerprint_length,
    fingerprint_matches,
    read_head,
)

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 1 << 20  # longer lines are skipped with a warning
READ_CHUNK = 1 << 16
READ_BUDGET = 1 << 20  # bytes read from one file per pass, so several files take turns

Identity = Tuple[int, int]  # (device, inode)


@dataclass(frozen=True)
class Line:
    """One complete line, without its line ending (``\\n`` or ``\\r\\n``).

    ``path`` is the followed path as configured (also when the line came from its rotated
    predecessor); ``offset`` and ``number`` (1-based) locate the line in the file it was read
    from; ``position`` is where reading resumes after this line -- what ``commit`` saves.
    """

    path: str
    offset: int
    number: int
    text: str
    position: Position


@dataclass(frozen=True)
class RawLine:
    """A line cut out of the byte stream: ``data`` is None when it was too long and skipped."""

    offset: int
    end: int  # offset just after its newline
    data: Optional[bytes]


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

    def feed(self, data: bytes) -> List[RawLine]:
        out: List[RawLine] = []
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

    def take_partial(self) -> Optional[RawLine]:
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


def count_lines(fd: int, upto: int) -> Tuple[int, int]:
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


class FileReader:
    """One open file, read forward from a position.

    ``path`` is the followed path (for Line.path and positions), ``file_path`` where the file
    was opened (a rotated sibling may have another name). Holding the descriptor keeps a
    renamed or deleted file readable to its end.
    """

    def __init__(self, path: str, file_path: str, fd: int, offset: int = 0, line: int = 0,
                 max_line_bytes: int = MAX_LINE_BYTES):
        st = os.fstat(fd)
        self.path = path
        self.file_path = file_path
        self.fd = fd
        self.identity: Identity = (st.st_dev, st.st_ino)
        self.line = line  # complete lines before splitter.offset
        self.at_eof = False
        self.max_line_bytes = max_line_bytes
        self._splitter = LineSplitter(offset, max_line_bytes)
        self._head = b""
        self._full_fingerprint: Optional[str] = None

    @classmethod
    def open(cls, path: str, file_path: Optional[str] = None, offset: int = 0, line: int = 0,
             max_line_bytes: int = MAX_LINE_BYTES) -> "FileReader":
        """Open ``file_path`` (default: the followed path); raises OSError like os.open."""
        file_path = file_path or path
        fd = os.open(file_path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            if not stat_module.S_ISREG(os.fstat(fd).st_mode):
                raise IsADirectoryError(errno.EISDIR, "not a regular file", file_path)
            return cls(path, file_path, fd, offset, line, max_line_bytes)
        except BaseException:
            os.close(fd)
            raise

    @property
    def offset(self) -> int:
        """Just after the last complete line read."""
        return self._splitter.offset

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "FileReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def truncated(self) -> bool:
        """The file is now shorter than what was already read (copytruncate, ``> file``)."""
        return self.size() < self._splitter.read_to

    def rewritten(self) -> bool:
        """The bytes already read at the start of the file are not there any more."""
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

    def read_available(self, budget: int = READ_BUDGET) -> List[Line]:
        """New complete lines; ``at_eof`` tells whether the file was read to its current end."""
        out: List[Line] = []
        read = 0
        self.at_eof = False
        while read < budget:
            chunk = os.pread(self.fd, READ_CHUNK, self._splitter.read_to)
            if not chunk:
                self.at_eof = True
                break
            read += len(chunk)
            self._convert(self._splitter.feed(chunk), out)
        return out

    def finish(self) -> List[Line]:
        """Everything left, including an unterminated last line: the file is done with."""
        out: List[Line] = []
        while True:
            more = self.read_available()
            out.extend(more)
            if self.at_eof:
                break
        partial = self._splitter.take_partial()
        if partial is not None:
            log.warning("%s: last line of %s at offset %d has no newline; delivering it as is",
                        self.path, self.file_path, partial.offset)
            self._convert([partial], out)
        return out

    def _convert(self, raws: Iterable[RawLine], out: List[Line]) -> None:
        for raw in raws:
            self.line += 1
            if raw.data is None:
                log.warning("%s: skipped line %d of %s at offset %d: longer than %d bytes",
                            self.path, self.line, self.file_path, raw.offset, self.max_line_bytes)
                continue
            out.append(Line(self.path, raw.offset, self.line, decode_line(raw.data),
                            self._position(raw.end, self.line)))

    def _position(self, offset: int, line: int) -> Position:
        return Position(self.path, self.identity[0], self.identity[1], offset, line,
                        self._fingerprint_at(offset))

    def _fingerprint_at(self, offset: int) -> str:
        if offset >= FINGERPRINT_BYTES:
            if self._full_fingerprint is None:
                self._full_fingerprint = fingerprint(self._head_bytes(FINGERPRINT_BYTES))
            return self._full_fingerprint
        return fingerprint(self._head_bytes(offset))

    def _head_bytes(self, length: int) -> bytes:
        if len(self._head) < length:
            self._head = os.pread(self.fd, FINGERPRINT_BYTES, 0)
        return self._head[:length]

    def _known_head(self) -> bytes:
        return self._head_bytes(min(self.offset, FINGERPRINT_BYTES))


# --- where to start ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Resume:
    """Where a followed path starts after (re)start: open ``file`` at ``offset`` (``line``
    complete lines before it). ``file`` is None while the followed path does not exist."""

    file: Optional[str]
    offset: int
    line: int
    reason: str


def _identity(st: os.stat_result) -> Identity:
    return (st.st_dev, st.st_ino)


def _stat(path: str) -> Optional[os.stat_result]:
    try:
        return os.stat(path)
    except OSError:
        return None


def _siblings(path: str) -> Iterator[Tuple[str, os.stat_result]]:
    directory, name = os.path.split(path)
    try:
        entries = list(os.scandir(directory or "."))
    except OSError:
        return
    for entry in entries:
        if entry.name == name:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat_module.S_ISREG(st.st_mode):
            yield entry.path, st


def find_rotated(saved: Position) -> Optional[str]:
    """The file ``saved`` points into, now under another name in the same directory."""
    for candidate, st in _siblings(saved.path):
        if _identity(st) == (saved.device, saved.inode):
            head = read_head(candidate)
            if head is not None and fingerprint_matches(saved.fingerprint, head) \
                    and st.st_size >= saved.offset:
                return candidate
    return None


def find_copy(path: str, fp: str, offset: int, exclude: Identity) -> Optional[str]:
    """After copytruncate: the newest sibling named like ``path`` that starts with the same
    bytes (``fp``) and holds at least ``offset`` bytes -- the copy holding the unread tail."""
    if offset <= 0 or fingerprint_length(fp) <= 0:
        return None
    stem = os.path.splitext(os.path.basename(path))[0]
    best: Optional[Tuple[float, str]] = None
    for candidate, st in _siblings(path):
        if not os.path.basename(candidate).startswith(stem) or _identity(st) == exclude:
            continue
        if st.st_size < offset:
            continue
        head = read_head(candidate)
        if head is not None and fingerprint_matches(fp, head):
            if best is None or st.st_mtime > best[0]:
                best = (st.st_mtime, candidate)
    return best[1] if best else None


def plan_resume(path: str, saved: Optional[Position], start_at_end: bool = False) -> Resume:
    """Decide where following ``path`` starts, from its saved position (None: never seen)."""
    st = _stat(path)
    if saved is None:
        if st is None:
            return Resume(None, 0, 0, "does not exist yet; will start when it appears")
        if start_at_end:
            return Resume(path, -1, -1, "new file: starting at its end")
        return Resume(path, 0, 0, "new file: starting at its beginning")

    if st is not None and _identity(st) == (saved.device, saved.inode):
        head = read_head(path)
        if head is not None and fingerprint_matches(saved.fingerprint, head) \
                and st.st_size >= saved.offset:
            return Resume(path, saved.offset, saved.line, "same file: resuming at saved offset")
        copy = find_copy(path, saved.fingerprint, saved.offset, _identity(st))
        if copy:
            return Resume(copy, saved.offset, saved.line,
                          f"truncated while stopped; finishing its copy {copy} first")
        return Resume(path, 0, 0, "truncated or replaced (same inode, other content): "
                                  "starting at its beginning")

    rotated = find_rotated(saved)
    if rotated:
        return Resume(rotated, saved.offset, saved.line,
                      f"rotated while stopped; finishing {rotated} first")
    if st is None:
        return Resume(None, 0, 0, "gone and its old file not found; will start when it appears")
    return Resume(path, 0, 0, "replaced while stopped and the old file is gone: "
                              "starting at its beginning")


# --- one followed path --------------------------------------------------------------------------


class _Tail:
    """The reading state of one followed path: which file is open and how far it was read."""

    def __init__(self, path: str, saved: Optional[Position], start_at_end: bool,
                 max_line_bytes: int):
        self.path = path
        self.max_line_bytes = max_line_bytes
        self.reader: Optional[FileReader] = None
        self._draining: Optional[FileReader] = None
        self.more = False
        self._saved = saved
        self._start_at_end = start_at_end
        self._first = True
        self._problem = ""

    def report(self, problem: str) -> None:
        if problem and problem != self._problem:
            log.error("%s", problem)
        self._problem = problem

    def initial_position(self) -> Optional[Position]:
        return self.reader.position() if self.reader is not None else None

    def ensure_open(self) -> None:
        if self._first:
            plan = plan_resume(self.path, self._saved, self._start_at_end)
            log.info("following %s: %s", self.path, plan.reason)
            if plan.file is None:
                self._first = False
                return
            file_path, offset, line = plan.file, plan.offset, plan.line
        else:
            file_path, offset, line = self.path, 0, 0
        try:
            reader = FileReader.open(self.path, file_path, max(offset, 0), max(line, 0),
                                     self.max_line_bytes)
        except FileNotFoundError:
            self._first = False
            return
        except OSError as e:
            self.report(f"cannot read {file_path} (followed as {self.path}): {e}")
            return
        if offset < 0:  # start at the end: after the last complete line
            lines, end = count_lines(reader.fd, reader.size())
            reader.close()
            reader = FileReader.open(self.path, file_path, end, lines, self.max_line_bytes)
        self._first = False
        self._problem = ""
        self.reader = reader

    def poll(self) -> List[Line]:
        """New lines, at most about READ_BUDGET bytes per file read; ``more`` tells whether
        data was left unread."""
        out: List[Line] = []
        self.more = False
        if self._draining is not None:  # the copy of a truncated file: its unread tail first
            draining = self._draining
            out.extend(draining.read_available())
            if not draining.at_eof:
                self.more = True
                return out
            out.extend(draining.finish())
            draining.close()
            self._draining = None
        if self.reader is None:
            self.ensure_open()
            if self.reader is None:
                return out
        reader = self.reader
        out.extend(reader.read_available())
        if not reader.at_eof:
            self.more = True
            return out  # rotation is looked at once this file is caught up
        if reader.truncated() or reader.rewritten():
            self._truncated(reader)
            self.more = True
            return out
        st = _stat(self.path)
        # The followed path names another file: rotation or replacement. Switch once the new
        # file has data (the writer has moved over), after finishing the old one to its end.
        if st is not None and _identity(st) != reader.identity and st.st_size > 0:
            out.extend(reader.finish())
            log.info("%s: rotated or replaced; finished the old file (inode %d, %d lines), "
                     "now reading the new one", self.path, reader.identity[1], reader.line)
            reader.close()
            self.reader = None
            self.ensure_open()
            self.more = self.reader is not None
        return out

    def _truncated(self, reader: FileReader) -> None:
        """copytruncate: the unread tail is in the copy, if one is found; then start over."""
        copy = find_copy(self.path, reader.fingerprint(), reader.offset, reader.identity)
        if copy is not None:
            try:
                self._draining = FileReader.open(self.path, copy, reader.offset, reader.line,
                                                 self.max_line_bytes)
            except OSError as e:
                log.warning("%s: cannot read its copy %s: %s", self.path, copy, e)
        log.warning("%s: truncated at offset %d%s; reading it again from the start", self.path,
                    reader.offset, f" (the rest is read from its copy {copy})" if copy else "")
        reader.restart()

    def close(self) -> None:
        for reader in (self._draining, self.reader):
            if reader is not None:
                reader.close()
        self.reader = self._draining = None


# --- the shell: watchdog wakes, the tails read ------------------------------------------------


_WAKING_EVENTS = frozenset({"created", "modified", "moved", "deleted", "closed"})
# Asked of the kernel too, so our own opens and reads raise no events at all.
_EVENT_FILTER = [FileCreatedEvent, FileModifiedEvent, FileMovedEvent, FileDeletedEvent,
                 FileClosedEvent, DirCreatedEvent, DirMovedEvent, DirDeletedEvent]


class _Waker(FileSystemEventHandler):
    """watchdog handler: wakes the reader for events on files named like a followed file."""

    def __init__(self, wake: threading.Event, stems: Dict[str, Tuple[str, ...]]):
        super().__init__()
        self._wake = wake
        self._stems = stems  # directory -> stems of followed files in it

    def dispatch(self, event) -> None:  # watchdog calls dispatch(event) on its handler
        if event.event_type not in _WAKING_EVENTS:
            return
        for p in (event.src_path, getattr(event, "dest_path", "")):
            if not p:
                continue
            p = os.fsdecode(p)
            directory, name = os.path.split(p)
            stems = self._stems.get(directory)
            if stems and name.startswith(stems):
                self._wake.set()
                return


class Follower:
    """Follows one or more files; see the module docstring for the consumer API.

    ``start_at_end_for_new_files``: a file with no saved position starts at its end rather
    than its beginning (files that appear later always start at their beginning).
    ``poll_interval``: the safety poll (and, without inotify, the polling) period in seconds.
    ``save_interval``: during a burst, committed positions are saved (fsync) at most this
    often; as soon as lines() runs out of lines, and on stop(), they are saved at once. So a
    clean stop is always exact, and a crash can repeat at most this many seconds of a burst
    (never lose a line). 0 saves on every commit (exact even on a crash, ~100-400 lines/s).
    """

    def __init__(self, paths: Iterable[str], state_dir: str, *,
                 start_at_end_for_new_files: bool = False, poll_interval: float = 1.0,
                 use_inotify: bool = True, max_line_bytes: int = MAX_LINE_BYTES,
                 save_interval: float = 0.2):
        self.paths: List[str] = list(dict.fromkeys(os.path.abspath(p) for p in paths))
        if not self.paths:
            raise ValueError("no files to follow")
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self.store = PositionStore(state_dir)
        self.start_at_end_for_new_files = start_at_end_for_new_files
        self.poll_interval = poll_interval
        self.use_inotify = use_inotify
        self.max_line_bytes = max_line_bytes
        self.save_interval = save_interval
        self._tails: Dict[str, _Tail] = {}
        self._queue: Deque[Line] = collections.deque()
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopping = False
        self._running = False
        self._observers: list = []
        self._polling_observer = None
        self._scheduled: Dict[str, Optional[tuple]] = {}  # dir -> (identity, observer, watch)
        self._dir_problem: Dict[str, str] = {}
        self._last_thorough = 0.0
        self._last_save = 0.0
        self._save_failing = False

    # lifecycle

    def start(self) -> "Follower":
        with self._lock:
            if self._running:
                return self
            self._stopping = False
            saved = self.store.load()
            self._tails = {p: _Tail(p, saved.get(p), self.start_at_end_for_new_files,
                                    self.max_line_bytes) for p in self.paths}
            for tail in self._tails.values():
                tail.ensure_open()
                if saved.get(tail.path) is None and tail.initial_position() is not None:
                    # Remember where a new file starts, so lines written before the first
                    # commit are not skipped by a later start-at-end.
                    self.store.set(tail.initial_position())
            if self.store.dirty:
                self._save()
            stems: Dict[str, Tuple[str, ...]] = {}
            for p in self.paths:
                directory, name = os.path.split(p)
                stems[directory] = stems.get(directory, ()) + (os.path.splitext(name)[0],)
            self._handler = _Waker(self._wake, stems)
            self._scheduled = {d: None for d in stems}
            self._start_observer()
            self._schedule_directories()
            self._last_thorough = time.monotonic()
            self._running = True
            return self

    def stop(self) -> None:
        """Stop following; safe from another thread. Pending commits are saved."""
        self._stopping = True
        self._wake.set()
        for observer in self._observers:
            try:
                observer.stop()
            except Exception:  # noqa: BLE001 -- stopping must not fail
                pass
        for observer in self._observers:
            if observer.is_alive() and observer is not threading.current_thread():
                observer.join(timeout=5)
        with self._lock:
            self._observers = []
            self._polling_observer = None
            self.flush()
            for tail in self._tails.values():
                tail.close()
            self._queue.clear()
            self._running = False

    def __enter__(self) -> "Follower":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # consuming

    def lines(self, timeout: Optional[float] = None) -> Iterator[Line]:
        """Lines as they are written. Ends on stop(), or once ``timeout`` seconds pass
        without a new line (None: never)."""
        if not self._running:
            raise RuntimeError("Follower.lines() before start()")
        idle_since = time.monotonic()
        while not self._stopping:
            if not self._queue:
                self._fill()
            if self._queue:
                line = self._queue.popleft()
                yield line
                idle_since = time.monotonic()
                continue
            if self.store.dirty:
                self.flush()
            now = time.monotonic()
            wait = max(0.0, self._last_thorough + self.poll_interval - now)
            if timeout is not None:
                left = idle_since + timeout - now
                if left <= 0:
                    return
                wait = min(wait, left)
            self._wake.wait(wait)
            self._wake.clear()

    def read_ready(self) -> List[Line]:
        """Every line available now, without waiting."""
        self._fill()
        out = list(self._queue)
        self._queue.clear()
        return out

    def commit(self, line: Line) -> None:
        """The consumer has handled ``line``: after a restart, reading resumes after it."""
        with self._lock:
            self.store.set(line.position)
            if self.save_interval <= 0 or time.monotonic() - self._last_save >= self.save_interval:
                self._save()

    def flush(self) -> None:
        """Save committed positions that ``save_interval`` has held back (lines() does this
        whenever it runs out of lines; call it yourself when using read_ready())."""
        with self._lock:
            if self.store.dirty:
                self._save()

    def _save(self) -> None:
        try:
            self.store.save()
        except OSError as e:
            if not self._save_failing:
                log.error("cannot save positions to %s: %s (lines may be repeated after a "
                          "restart)", self.store.path, e)
            self._save_failing = True
            return
        if self._save_failing:
            log.warning("positions saved to %s again", self.store.path)
        self._save_failing = False
        self._last_save = time.monotonic()

    def _fill(self) -> None:
        with self._lock:
            if self._stopping or not self._tails:
                return
            now = time.monotonic()
            thorough = now - self._last_thorough >= self.poll_interval
            if thorough:
                self._last_thorough = now
                self._schedule_directories()
            while True:
                more = False
                for tail in self._tails.values():
                    try:
                        self._queue.extend(tail.poll())
                    except OSError as e:  # e.g. EIO from a failing disk: report, retry later
                        tail.report(f"error reading {tail.path}: {e}")
                        continue
                    more = more or tail.more
                # A pass may deliver nothing yet leave data (an over-long line being skipped,
                # a switch of files): go on rather than wait for an event that already came.
                if self._queue or not more:
                    return

    # watchdog

    def _start_observer(self) -> None:
        self._observers = []
        if self.use_inotify:
            try:
                from watchdog.observers import Observer

                observer = Observer()
                observer.start()
                self._observers.append(observer)
                return
            except Exception as e:  # noqa: BLE001 -- any failure means: poll instead
                log.warning("file events unavailable (%s); polling every %.1f s", e,
                            self.poll_interval)
        self._ensure_polling_observer()

    def _ensure_polling_observer(self):
        if self._polling_observer is None:
            from watchdog.observers.polling import PollingObserver

            self._polling_observer = PollingObserver(timeout=self.poll_interval)
            self._polling_observer.start()
            self._observers.append(self._polling_observer)
        return self._polling_observer

    def _schedule_directories(self) -> None:
        """Watch each directory of followed files; retried on every safety poll, so a directory
        that appears later (or is recreated, which ends its inotify watch) is picked up."""
        if not self._observers:
            return
        for directory, current in list(self._scheduled.items()):
            st = _stat(directory)
            if current is not None:
                identity, observer, watch = current
                if st is not None and _identity(st) == identity:
                    continue
                try:
                    observer.unschedule(watch)
                except Exception:  # noqa: BLE001 -- the watch may be gone with its directory
                    pass
                self._scheduled[directory] = None
            if st is None or not stat_module.S_ISDIR(st.st_mode):
                self._directory_problem(directory, f"directory {directory} of followed file(s) "
                                                   "does not exist; waiting for it to appear")
                continue
            observer = self._observers[0]
            try:
                watch = observer.schedule(self._handler, directory, recursive=False,
                                         event_filter=_EVENT_FILTER)
            except OSError as e:
                if e.errno in (errno.ENOENT, errno.ENOTDIR):
                    self._directory_problem(directory, f"cannot watch {directory}: {e}")
                    continue
                log.warning("cannot watch %s with file events (%s); polling it", directory, e)
                observer = self._ensure_polling_observer()
                try:
                    watch = observer.schedule(self._handler, directory, recursive=False,
                                              event_filter=_EVENT_FILTER)
                except OSError as e2:
                    self._directory_problem(directory, f"cannot watch {directory}: {e2}")
                    continue
            self._scheduled[directory] = (_identity(st), observer, watch)
            if self._dir_problem.pop(directory, None):
                log.info("watching %s now", directory)
                self._wake.set()

    def _directory_problem(self, directory: str, problem: str) -> None:
        if self._dir_problem.get(directory) != problem:
            log.error("%s", problem)
            self._dir_problem[directory] = problem
