"""One writer per state directory: an exclusive ``flock`` on ``<state_dir>/lock``.

The lock file holds the PID and the command of whoever holds it, so the one refused can say who
is in the way. The kernel drops the lock when its holder exits, however it exits: a stale lock
file after a crash or a kill -9 is never in the way (its contents are only a hint).
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
        moment); StateDirBusy naming the holder if it stays taken, OSError if the directory or
        the file cannot be made."""
        if self._fd is not None:
            return self
        os.makedirs(self.state_dir, mode=0o750, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN) and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                holder = _holder_text(fd)
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise StateDirBusy(self.state_dir, holder) from None
                raise
        self._fd = fd
        try:  # who holds it, for the next one refused; the lock holds even if this cannot be written
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {self.what}\n".encode(), 0)
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
    path = os.path.join(os.path.abspath(state_dir), LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder_text(fd)
        return None
    finally:
        os.close(fd)


def _holder_text(fd: int) -> str:
    try:
        text = os.pread(fd, _MAX_HOLDER_TEXT, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    pid, _, what = text.partition(" ")
    if not pid.isdigit():
        return "another process"
    return f"PID {pid}" + (f" ({what})" if what else "")
