"""What wakes the follower: watchdog watches on the directories of its followed files.

watchdog (inotify, or its polling observer where inotify is unavailable or a watch is refused)
only sets the follower's wake-up flag, for events on names that start like a followed file's
stem; reading happens in the consumer's thread (bridge/follow/follower.py). A directory that does not
exist yet, or was recreated (which ends its inotify watch), is watched once it exists:
``schedule()`` is retried on every safety poll.
"""

from __future__ import annotations

import errno
import logging
import os
import stat as stat_module
import threading

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

log = logging.getLogger("bridge.follow")  # one logger for all the follower's messages

_WAKING_EVENTS = frozenset({"created", "modified", "moved", "deleted", "closed"})
# Asked of the kernel too, so our own opens and reads raise no events at all.
_EVENT_FILTER = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileDeletedEvent,
    FileClosedEvent,
    DirCreatedEvent,
    DirMovedEvent,
    DirDeletedEvent,
]


class _Waker(FileSystemEventHandler):
    """watchdog handler: wakes the reader for events on files named like a followed file."""

    def __init__(self, wake: threading.Event, stems: dict[str, tuple[str, ...]]):
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


class DirectoryWatches:
    """The watchdog observers of one follower and the directories they watch.

    The caller serialises ``start``, ``watch_file``, ``watch_directory``, ``schedule`` and
    ``drop_observers`` (the follower's lock); ``stop`` is safe from any thread.
    """

    def __init__(self, wake: threading.Event, poll_interval: float, use_inotify: bool):
        self._wake = wake
        self.poll_interval = poll_interval
        self.use_inotify = use_inotify
        self._observers: list = []
        self._polling_observer = None
        self._scheduled: dict[str, tuple | None] = {}  # dir -> (identity, observer, watch)
        self._stems: dict[str, tuple[str, ...]] = {}  # dir -> stems of followed files in it
        self._dir_problem: dict[str, str] = {}  # kept across restarts: a problem is logged once

    def start(self) -> None:
        """Start afresh: no directories yet, an inotify observer (or the polling one)."""
        self._stems = {}
        self._handler = _Waker(self._wake, self._stems)
        self._scheduled = {}
        self._observers = []
        if self.use_inotify:
            try:
                from watchdog.observers import Observer

                observer = Observer()
                observer.start()
                self._observers.append(observer)
                return
            except Exception as e:  # noqa: BLE001 -- any failure means: poll instead
                log.warning("file events unavailable (%s); polling every %.1f s", e, self.poll_interval)
        self._ensure_polling_observer()

    def watch_file(self, path: str) -> None:
        """Wake on events for ``path`` and its rotated files (names starting with its stem)."""
        directory, name = os.path.split(path)
        stem = os.path.splitext(name)[0]
        if stem not in self._stems.get(directory, ()):
            self._stems[directory] = self._stems.get(directory, ()) + (stem,)
        self._scheduled.setdefault(directory, None)

    def watch_directory(self, directory: str) -> None:
        """Wake on events for any name in ``directory`` (where new glob matches appear)."""
        self._stems[directory] = self._stems.get(directory, ()) + ("",)
        self._scheduled.setdefault(directory, None)

    def stop(self) -> None:
        """Stop the observers and wait for their threads (not our own, if called from one)."""
        for observer in self._observers:
            try:
                observer.stop()
            except Exception:  # noqa: BLE001 -- stopping must not fail
                pass
        for observer in self._observers:
            if observer.is_alive() and observer is not threading.current_thread():
                observer.join(timeout=5)

    def drop_observers(self) -> None:
        """After ``stop``: forget the observers, so ``schedule`` does nothing until ``start``."""
        self._observers = []
        self._polling_observer = None

    def _ensure_polling_observer(self):
        if self._polling_observer is None:
            from watchdog.observers.polling import PollingObserver

            self._polling_observer = PollingObserver(timeout=self.poll_interval)
            self._polling_observer.start()
            self._observers.append(self._polling_observer)
        return self._polling_observer

    def schedule(self) -> None:
        """Watch each directory of followed files; retried on every safety poll, so a directory
        that appears later (or is recreated, which ends its inotify watch) is picked up."""
        if not self._observers:
            return
        for directory, current in list(self._scheduled.items()):
            try:
                st: os.stat_result | None = os.stat(directory)
            except OSError:
                st = None
            if current is not None:
                identity, observer, watch = current
                if st is not None and (st.st_dev, st.st_ino) == identity:
                    continue
                try:
                    observer.unschedule(watch)
                except Exception:  # noqa: BLE001 -- the watch may be gone with its directory
                    pass
                self._scheduled[directory] = None
            if st is None or not stat_module.S_ISDIR(st.st_mode):
                self._directory_problem(
                    directory, f"directory {directory} of followed file(s) does not exist; waiting for it to appear"
                )
                continue
            observer = self._observers[0]
            try:
                watch = observer.schedule(self._handler, directory, recursive=False, event_filter=_EVENT_FILTER)
            except OSError as e:
                if e.errno in (errno.ENOENT, errno.ENOTDIR):
                    self._directory_problem(directory, f"cannot watch {directory}: {e}")
                    continue
                log.warning("cannot watch %s with file events (%s); polling it", directory, e)
                observer = self._ensure_polling_observer()
                try:
                    watch = observer.schedule(self._handler, directory, recursive=False, event_filter=_EVENT_FILTER)
                except OSError as e2:
                    self._directory_problem(directory, f"cannot watch {directory}: {e2}")
                    continue
            self._scheduled[directory] = ((st.st_dev, st.st_ino), observer, watch)
            if self._dir_problem.pop(directory, None):
                log.info("watching %s now", directory)
                self._wake.set()

    def _directory_problem(self, directory: str, problem: str) -> None:
        if self._dir_problem.get(directory) != problem:
            log.error("%s", problem)
            self._dir_problem[directory] = problem
