"""Writing to file descriptors: whole writes despite short writes and EAGAIN, and bigger pipes.
Shared by tzspd's sinks (tzsp/output.py) and its consumer processes (tzsp/consumer.py).
"""

from __future__ import annotations

import fcntl
import os
import select
import stat

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
PIPE_SIZE = 1 << 20  # the unprivileged maximum (fs.pipe-max-size) on stock kernels


def write_some(fd: int, data) -> tuple[int, OSError | None]:
    """Write all of ``data`` to ``fd``, looping over short writes and waiting out EAGAIN on a
    non-blocking descriptor. Returns (bytes written, the error that stopped it or None)."""
    view = memoryview(data)
    total = len(view)
    done = 0
    while done < total:
        try:
            done += os.write(fd, view[done:])
        except BlockingIOError:
            select.select([], [fd], [], 1.0)
        except OSError as error:
            return done, error
    return done, None


def enlarge_pipe(fd: int, size: int = PIPE_SIZE) -> int | None:
    """Best effort: grow the pipe behind ``fd`` so big frames and bursts do not stall the
    receiver. Returns the new size, or None when fd is no pipe or the kernel refused."""
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return None
        return fcntl.fcntl(fd, F_SETPIPE_SZ, size)
    except OSError:
        return None
