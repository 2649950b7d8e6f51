"""One writer per state directory: an exclusive ``flock`` on the directory itself.

The lock is on the directory (opened read-only), so it holds on a full or read-only file system
too; ``<state_dir>/lock`` names the PID and the command of the holder, best effort, so the one
refused can say who is in the way. The kernel drops the lock when its holder exits, however it
exits: a stale lock file after a crash or a kill -9 is never in the way (its contents are only a hint).
"""

from __future__ import annotations

import errno
import fcntl
import os
import time

LOCK_FILE = "lock"
SERVICE = "snort-bridge run"  # what the long-running holder calls itself; commands wait for each other, not for it
_MAX_HOLDER_TEXT = 200  # bytes of the lock file read to name its holder


class StateDirBusy(RuntimeError):
    """Another process holds the state directory's lock."""

    def __init__(self, state_dir: str, holder: str):
        self.state_dir = state_dir
        self.holder = holder
        super().__init__(f"{state_dir} is in use by {holder}")


class StateDirLock:
    """``StateDirLock(dir, "snort-bridge run").acquire()`` or StateDirBusy; ``release()`` when done."""

    def __init__(self, state_dir: str, what: str):
        self.state_dir = os.path.abspath(state_dir)
        self.path = os.path.join(self.state_dir, LOCK_FILE)
        self.what = what
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, wait: float = 0.5) -> StateDirLock:
        """Take the lock, trying for up to ``wait`` seconds (a ``holder_of`` look holds it for a
        moment); StateDirBusy naming the holder if it stays taken, OSError if the directory
        cannot be made or opened."""
        if self._fd is not None:
            return self
        os.makedirs(self.state_dir, mode=0o750, exist_ok=True)
        fd = os.open(self.state_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN) and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise StateDirBusy(self.state_dir, _holder_text(self.path)) from None
                raise
        self._fd = fd
        try:  # who holds it, for the next one refused; the lock holds even if this cannot be written
            with open(self.path, "w", encoding="utf-8") as note:
                note.write(f"{os.getpid()} {self.what}\n")
        except OSError:
            pass
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing drops the flock; the file stays (removing it would race a new holder)

    def __enter__(self) -> StateDirLock:
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()


def holder_of(state_dir: str) -> str | None:
    """Who holds ``state_dir``'s lock ("PID 1234 (snort-bridge run)"), or None if nobody does now."""
    state_dir = os.path.abspath(state_dir)
    try:
        fd = os.open(state_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder_text(os.path.join(state_dir, LOCK_FILE))
        return None
    finally:
        os.close(fd)


def _holder_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as note:
            text = note.read(_MAX_HOLDER_TEXT).strip()
    except OSError:
        text = ""
    pid, _, what = text.partition(" ")
    if not pid.isdigit():
        return "another process"
    return f"PID {pid}" + (f" ({what})" if what else "")
