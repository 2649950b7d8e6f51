"""Follow alert files as they are written: every complete line exactly once, across rotations
and restarts.

Layers, innermost first (the first four need no watchdog and are tested directly):

* ``bridge.follow.lines.LineSplitter`` -- pure: bytes in, complete lines out.
* ``bridge.follow.rotation.plan_chain`` -- pure: where the saved position is now (under any name,
  perhaps compressed or copied) and every file rotated after it, in order, to the current one.
* ``bridge.follow.readers.FileReader`` -- one open file (plain or compressed) read from an offset;
  ``snapshot_chain`` looks at a followed path's rotation chain on disk for the planner.
* ``bridge.follow.tail.Tail`` -- one followed path walking its chain file by file.
* ``bridge.follow.watches.DirectoryWatches`` -- watchdog (inotify, or polling where inotify is
  unavailable) on the followed files' directories; it only wakes the reader.
* ``Follower`` (here) -- the thin shell: the followed paths (glob patterns and their matches,
  ``add_paths``), one ``Tail`` each, saved positions, and the consumer API; a slow safety poll
  catches anything an event missed.

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
import fnmatch
import glob
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator

from bridge.follow.lines import MAX_LINE_BYTES, LineSplitter, RawLine, decode_line  # noqa: F401 -- re-exported
from bridge.follow.positions import Position, PositionStore
from bridge.follow.readers import READ_BUDGET, Line  # noqa: F401
from bridge.follow.rotation import COMPRESSED_SUFFIXES, parse_rotated_name
from bridge.follow.tail import Tail
from bridge.follow.watches import DirectoryWatches

log = logging.getLogger(__name__)


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

    def __init__(
        self,
        paths: Iterable[str],
        state_dir: str,
        *,
        start_at_end_for_new_files: bool = False,
        poll_interval: float = 1.0,
        use_inotify: bool = True,
        max_line_bytes: int = MAX_LINE_BYTES,
        save_interval: float = 0.2,
    ):
        given = list(dict.fromkeys(os.path.abspath(p) for p in paths))
        self.patterns: list[str] = [p for p in given if glob.has_magic(p)]
        self.paths: list[str] = [p for p in given if not glob.has_magic(p)]
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
        self._tails: dict[str, Tail] = {}
        self._queue: collections.deque[Line] = collections.deque()
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopping = False
        self._running = False
        self._watches = DirectoryWatches(self._wake, poll_interval, use_inotify)
        self._saved: dict[str, Position] = {}
        self._last_thorough = 0.0
        self._last_save = 0.0
        self._save_failing = False

    # lifecycle

    def start(self) -> Follower:
        with self._lock:
            if self._running:
                return self
            self._stopping = False
            self._saved = self.store.load()
            self._tails = {}
            self._watches.start()
            self.paths.extend(p for p in self._matches() if p not in self.paths)
            self._add_tails(self.paths)
            for pattern in self.patterns:  # new matches appear there: wake on any name
                directory = os.path.dirname(pattern)
                if not glob.has_magic(directory):
                    self._watches.watch_directory(directory)
            self._watches.schedule()
            self._last_thorough = time.monotonic()
            self._running = True
            return self

    def add_paths(self, paths: Iterable[str]) -> list[str]:
        """Follow more files from now on (e.g. new matches of a glob); returns the new ones.
        A file with no saved position is read from its beginning."""
        with self._lock:
            new = [p for p in dict.fromkeys(os.path.abspath(p) for p in paths) if p not in self.paths]
            self.paths.extend(new)
            if self._running and new:
                self._add_tails(new, start_at_end=False)
                self._wake.set()
            return new

    def _matches(self) -> list[str]:
        """Files the glob patterns match now, without the rotated files of a match (which are
        read as part of its chain) and without compressed files."""
        found: list[str] = []
        for pattern in self.patterns:
            found.extend(sorted(p for p in glob.glob(pattern) if os.path.isfile(p)))
        found = list(dict.fromkeys(found))
        names = {(os.path.dirname(p), os.path.basename(p)) for p in [*found, *self.paths]}
        return [
            p
            for p in found
            if not p.endswith(COMPRESSED_SUFFIXES)
            and not any(
                directory == os.path.dirname(p)
                and base != os.path.basename(p)
                and parse_rotated_name(base, os.path.basename(p)) is not None
                for directory, base in names
            )
        ]

    def _look_for_new_matches(self) -> None:
        new = [p for p in self._matches() if p not in self.paths]
        if new:
            for path in self.add_paths(new):
                log.info(
                    "following %s too: it matches %s",
                    path,
                    next((pat for pat in self.patterns if fnmatch.fnmatch(path, pat)), "a pattern"),
                )

    def _add_tails(self, paths: Iterable[str], start_at_end: bool | None = None) -> None:
        if start_at_end is None:
            start_at_end = self.start_at_end_for_new_files
        for path in paths:
            tail = Tail(path, self._saved.get(path), start_at_end, self.max_line_bytes)
            self._tails[path] = tail
            tail.ensure_open()
            if self._saved.get(path) is None and tail.initial_position() is not None:
                # Remember where a new file starts, so lines written before the first
                # commit are not skipped by a later start-at-end.
                self.store.set(tail.initial_position())
            self._watches.watch_file(path)
        if self.store.dirty:
            self._save()
        self._watches.schedule()

    def stop(self) -> None:
        """Stop following; safe from another thread. Pending commits are saved."""
        self._stopping = True
        self._wake.set()
        self._watches.stop()
        with self._lock:
            self._watches.drop_observers()
            self.flush()
            for tail in self._tails.values():
                tail.close()
            self._queue.clear()
            self._running = False

    def __enter__(self) -> Follower:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # consuming

    def lines(self, timeout: float | None = None) -> Iterator[Line]:
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

    def batches(self, timeout: float | None = None, max_lines: int = 256) -> Iterator[list[Line]]:
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

    def _idle(self, idle_since: float, timeout: float | None) -> bool:
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

    def read_ready(self) -> list[Line]:
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

    @property
    def save_failing(self) -> bool:
        """The positions file could not be written at the last try (it is tried at each commit)."""
        return self._save_failing

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
                log.error("cannot save positions to %s: %s (lines may be repeated after a restart)", self.store.path, e)
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
                self._watches.schedule()
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
