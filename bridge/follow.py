"""Follow alert files as they are written: every complete line exactly once, across rotations
and restarts.

Layers, innermost first (the first three need no watchdog and are tested directly):

* ``bridge.lines.LineSplitter`` -- pure: bytes in, complete lines out.
* ``bridge.rotation.plan_chain`` -- pure: where the saved position is now (under any name,
  perhaps compressed or copied) and every file rotated after it, in order, to the current one.
* ``bridge.readers.FileReader`` -- one open file (plain or compressed) read from an offset;
  ``snapshot_chain`` looks at a followed path's rotation chain on disk for the planner.
* ``Follower`` (here) -- the thin shell: one ``_Tail`` per followed path walks the chain file
  by file; watchdog (inotify, or polling where inotify is unavailable) only wakes the reader;
  a slow safety poll catches anything an event missed.

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
import fnmatch
import glob
import logging
import os
import stat as stat_module
import threading
import time
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

from bridge.lines import MAX_LINE_BYTES, LineSplitter, RawLine, decode_line  # noqa: F401 -- re-exported
from bridge.positions import Position, PositionStore, fingerprint
from bridge.readers import READ_BUDGET, FileReader, Line, count_lines, plan_resume  # noqa: F401
from bridge.rotation import COMPRESSED_SUFFIXES, Identity, Plan, Step, finished, parse_rotated_name

log = logging.getLogger(__name__)

APPEAR_SLACK_NS = 100_000_000  # file times tick coarser than time.time_ns()


def _identity(st: os.stat_result) -> Identity:
    return (st.st_dev, st.st_ino)


def _stat(path: str) -> Optional[os.stat_result]:
    try:
        return os.stat(path)
    except OSError:
        return None


# --- one followed path --------------------------------------------------------------------------


class _Tail:
    """The reading state of one followed path: which file of its chain is open, how far read.

    While the open file is the one the path names, it is simply read on (no directory scan).
    Once it is not (rotated, replaced) or was emptied (copytruncate), the planner is asked from
    the reader's position: the file is finished once a later file of the chain has data, then
    the next file in the chain is opened -- one step at a time, so rotations that go on while
    we read are seen too.
    """

    def __init__(self, path: str, saved: Optional[Position], start_at_end: bool,
                 max_line_bytes: int):
        self.path = path
        self.max_line_bytes = max_line_bytes
        self.reader: Optional[FileReader] = None
        self.more = False
        self._saved = saved
        self._start_at_end = start_at_end
        self._first = True
        self._problem = ""
        self._waiting = ""

    def report(self, problem: str) -> None:
        if problem and problem != self._problem:
            log.error("%s", problem)
        self._problem = problem

    def initial_position(self) -> Optional[Position]:
        """Where this path starts (also while it does not exist yet): saved at once, so a
        restart before the first commit neither skips nor repeats anything."""
        return self.reader.position() if self.reader is not None else self._saved

    def ensure_open(self) -> None:
        """Open where the planner says, from the saved position -- or, once reading, from the
        last position reached (a file that moved between the plan and its opening)."""
        if self.reader is not None:
            return
        plan = plan_resume(self.path, self._saved, self._start_at_end and self._first)
        if self._first:
            log.info("following %s: %s", self.path, plan.reason)
            if self._saved is None and not plan.steps:
                # Not there yet: whatever appears from now on is new, also if it is rotated
                # before we look (the planner then reads rotated files modified since).
                self._saved = Position(self.path, 0, 0, 0, 0, fingerprint(b""),
                                       time.time_ns() - APPEAR_SLACK_NS)
        self._first = False
        if plan.steps:
            self._open(plan.steps[0])

    def _open(self, step: Step) -> bool:
        file_path = step.file.path
        try:
            reader = FileReader.open(self.path, file_path, max(step.offset, 0), max(step.line, 0),
                                     self.max_line_bytes)
        except FileNotFoundError:
            self.more = True  # renamed meanwhile: plan again
            return False
        except OSError as e:
            self.report(f"cannot read {file_path} (followed as {self.path}): {e}")
            return False
        if reader.identity != step.file.identity:  # renamed or replaced since the plan
            reader.close()
            self.more = True
            return False
        if step.offset < 0:  # start at the end: after the last complete line
            lines, end = count_lines(reader.fd, reader.size())
            reader.close()
            reader = FileReader.open(self.path, file_path, end, lines, self.max_line_bytes)
        self._problem = ""
        self._waiting = ""
        self.reader = reader
        return True

    def poll(self) -> List[Line]:
        """New lines, at most about READ_BUDGET bytes per file read; ``more`` tells whether
        data was left unread."""
        out: List[Line] = []
        self.more = False
        if self.reader is None:
            self.ensure_open()
            if self.reader is None:
                return out
        reader = self.reader
        if reader.truncated() or reader.rewritten():  # before reading: new bytes are not ours
            self._emptied(reader, plan_resume(self.path, reader.position()))
            return out
        out.extend(reader.read_available())
        if not reader.at_eof:
            self.more = True
            return out
        st = _stat(self.path)
        emptied = reader.truncated() or reader.rewritten()
        if st is not None and _identity(st) == reader.identity and not emptied:
            if reader.offset == 0 and st.st_mtime_ns != reader.mtime_ns:
                # Changed, yet nothing to read: written and truncated (copytruncate) before
                # the first read? The planner looks for copies made since.
                plan = plan_resume(self.path, reader.position())
                reader.mtime_ns = st.st_mtime_ns
                if plan.found == "truncated":
                    self._emptied(reader, plan)
            return out  # reading the current file: nothing to plan
        plan = plan_resume(self.path, reader.position())
        if emptied:
            self._emptied(reader, plan)
            return out
        if plan.found in ("same", "moved", "copied"):
            if not finished(plan):
                return out  # no later file has data yet: the writer may still add to this one
            later = plan.later
        elif any(info.has_data for info in plan.later):
            later = plan.later  # gone from the directory, but still open: read it to its end
        else:
            return out
        if not reader.complete:  # a compressed file still being written
            self._wait(f"{self.path}: {reader.file_path} is not completely written yet; waiting")
            return out
        out.extend(reader.finish())
        log.info("%s: finished %s (%d lines); now reading %s%s", self.path, reader.file_path,
                 reader.line, later[0].path,
                 f" ({len(later) - 1} more file(s) after it)" if len(later) > 1 else "")
        self._saved = reader.position()  # where to plan from if the next file moves before it opens
        reader.close()
        self.reader = None
        self._open(Step(later[0]))
        self.more = True
        return out

    def _emptied(self, reader: FileReader, plan: Plan) -> None:
        """copytruncate (or ``> file``): the unread part from its copy, if one is found."""
        log.warning("%s: truncated or rewritten after byte %d: %s", self.path, reader.offset, plan.reason)
        self._saved = reader.position()
        reader.close()
        self.reader = None
        if plan.steps:
            self._open(plan.steps[0])
        self.more = True

    def _wait(self, note: str) -> None:
        if note != self._waiting:
            log.warning("%s", note)
        self._waiting = note

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
        self.reader = None


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
        given = list(dict.fromkeys(os.path.abspath(p) for p in paths))
        self.patterns: List[str] = [p for p in given if glob.has_magic(p)]
        self.paths: List[str] = [p for p in given if not glob.has_magic(p)]
        if not given:
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
        self._stems: Dict[str, Tuple[str, ...]] = {}  # dir -> stems of followed files in it
        self._saved: Dict[str, Position] = {}
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
            self._saved = self.store.load()
            self._tails = {}
            self._stems = {}
            self._handler = _Waker(self._wake, self._stems)
            self._scheduled = {}
            self._start_observer()
            self.paths.extend(p for p in self._matches() if p not in self.paths)
            self._add_tails(self.paths)
            for pattern in self.patterns:  # new matches appear there: wake on any name
                directory = os.path.dirname(pattern)
                if not glob.has_magic(directory):
                    self._stems[directory] = self._stems.get(directory, ()) + ("",)
                    self._scheduled.setdefault(directory, None)
            self._schedule_directories()
            self._last_thorough = time.monotonic()
            self._running = True
            return self

    def add_paths(self, paths: Iterable[str]) -> List[str]:
        """Follow more files from now on (e.g. new matches of a glob); returns the new ones.
        A file with no saved position is read from its beginning."""
        with self._lock:
            new = [p for p in dict.fromkeys(os.path.abspath(p) for p in paths) if p not in self.paths]
            self.paths.extend(new)
            if self._running and new:
                self._add_tails(new, start_at_end=False)
                self._wake.set()
            return new

    def _matches(self) -> List[str]:
        """Files the glob patterns match now, without the rotated files of a match (which are
        read as part of its chain) and without compressed files."""
        found: List[str] = []
        for pattern in self.patterns:
            found.extend(sorted(p for p in glob.glob(pattern) if os.path.isfile(p)))
        found = list(dict.fromkeys(found))
        names = {(os.path.dirname(p), os.path.basename(p)) for p in [*found, *self.paths]}
        return [p for p in found if not p.endswith(COMPRESSED_SUFFIXES) and not any(
            directory == os.path.dirname(p) and base != os.path.basename(p)
            and parse_rotated_name(base, os.path.basename(p)) is not None for directory, base in names)]

    def _look_for_new_matches(self) -> None:
        new = [p for p in self._matches() if p not in self.paths]
        if new:
            for path in self.add_paths(new):
                log.info("following %s too: it matches %s", path,
                         next((pat for pat in self.patterns if fnmatch.fnmatch(path, pat)), "a pattern"))

    def _add_tails(self, paths: Iterable[str], start_at_end: Optional[bool] = None) -> None:
        if start_at_end is None:
            start_at_end = self.start_at_end_for_new_files
        for path in paths:
            tail = _Tail(path, self._saved.get(path), start_at_end, self.max_line_bytes)
            self._tails[path] = tail
            tail.ensure_open()
            if self._saved.get(path) is None and tail.initial_position() is not None:
                # Remember where a new file starts, so lines written before the first
                # commit are not skipped by a later start-at-end.
                self.store.set(tail.initial_position())
            directory, name = os.path.split(path)
            stem = os.path.splitext(name)[0]
            if stem not in self._stems.get(directory, ()):
                self._stems[directory] = self._stems.get(directory, ()) + (stem,)
            self._scheduled.setdefault(directory, None)
        if self.store.dirty:
            self._save()
        self._schedule_directories()

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
            if not self._idle(idle_since, timeout):
                return

    def batches(self, timeout: Optional[float] = None, max_lines: int = 256) -> Iterator[List[Line]]:
        """Like lines(), in lists of up to ``max_lines`` (what is available now): one hand-over
        per list instead of one per line, for a consumer in another thread."""
        if not self._running:
            raise RuntimeError("Follower.batches() before start()")
        idle_since = time.monotonic()
        while not self._stopping:
            if not self._queue:
                self._fill()
            if self._queue:
                queue = self._queue
                yield [queue.popleft() for _ in range(min(len(queue), max_lines))]
                idle_since = time.monotonic()
                continue
            if not self._idle(idle_since, timeout):
                return

    def _idle(self, idle_since: float, timeout: Optional[float]) -> bool:
        """Nothing to deliver: save positions, wait for an event or the safety poll; False
        once ``timeout`` idle seconds have passed."""
        if self.store.dirty:
            self.flush()
        now = time.monotonic()
        wait = max(0.0, self._last_thorough + self.poll_interval - now)
        if timeout is not None:
            left = idle_since + timeout - now
            if left <= 0:
                return False
            wait = min(wait, left)
        self._wake.wait(wait)
        self._wake.clear()
        return True

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

    def commit_all(self, lines: Iterable[Line]) -> None:
        """``commit`` for each of ``lines``, in order, taking the lock once."""
        with self._lock:
            for line in lines:
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
                if self.patterns:
                    self._look_for_new_matches()
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
