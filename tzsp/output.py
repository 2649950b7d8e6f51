"""Where tzspd's pcap stream goes: standard output or a file, rotated files, or a consumer
process that tzspd starts and restarts itself (``--exec``).

Every sink takes whole pcap records in batches (``write(records, count)``) and starts each
stream, file or consumer with the global header it was given. Writes go straight to file
descriptors with ``os.write`` from the receiver's own buffer: one system call per batch,
whatever Python's stdout buffering (PYTHONUNBUFFERED) is set to.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import select
import shlex
import signal
import stat
import subprocess
import time
from typing import Callable, Iterator, Optional, Sequence

from .pcap import RECORD_HEADER

log = logging.getLogger("tzspd")

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
PIPE_SIZE = 1 << 20  # the unprivileged maximum (fs.pipe-max-size) on stock kernels
CONSUMER_CHECK_INTERVAL = 0.25
CONSUMER_STABLE_AFTER = 10.0  # a consumer that ran this long resets the restart backoff
CONSUMER_EOF_GRACE = 2.0
CONSUMER_TERM_GRACE = 5.0


class OutputError(Exception):
    """The output cannot take more data; tzspd must stop."""


class ReaderGone(OutputError):
    """The process reading the stream closed it (EPIPE)."""


# ---------------------------------------------------------------- helpers


def write_some(fd: int, data) -> tuple[int, Optional[OSError]]:
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


def record_ends(records) -> Iterator[int]:
    """Offsets just past each whole pcap record in ``records`` (a batch with no global header)."""
    view = memoryview(records)
    offset = 0
    header = RECORD_HEADER.size
    while offset + header <= len(view):
        incl_len = RECORD_HEADER.unpack_from(view, offset)[2]
        end = offset + header + incl_len
        if end > len(view):
            return
        yield end
        offset = end


def whole_records_within(records, limit: int) -> tuple[int, int]:
    """(bytes, records) of the longest prefix of whole records no longer than ``limit``."""
    size = count = 0
    for end in record_ends(records):
        if end > limit:
            break
        size, count = end, count + 1
    return size, count


def records_through(records, reach: int) -> tuple[int, int]:
    """(bytes, records) of the shortest prefix of whole records at least ``reach`` long (or all)."""
    size = count = 0
    for end in record_ends(records):
        size, count = end, count + 1
        if end >= reach:
            break
    return size, count


def enlarge_pipe(fd: int, size: int = PIPE_SIZE) -> Optional[int]:
    """Best effort: grow the pipe behind ``fd`` so big frames and bursts do not stall the
    receiver. Returns the new size, or None when fd is no pipe or the kernel refused."""
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return None
        return fcntl.fcntl(fd, F_SETPIPE_SZ, size)
    except OSError:
        return None


# ---------------------------------------------------------------- standard output / one file


class StreamSink:
    """One pcap stream on a file descriptor (standard output, or a file opened by ``open_file``)."""

    def __init__(self, fd: int, header: bytes, stats, description: str = "standard output", owns_fd: bool = False):
        self.fd = fd
        self.header = header
        self.stats = stats
        self.description = description
        self.owns_fd = owns_fd

    @classmethod
    def open_file(cls, path: str, header: bytes, stats) -> "StreamSink":
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        return cls(fd, header, stats, path, owns_fd=True)

    def start(self) -> None:
        self._write(self.header)

    @property
    def direct_fd(self) -> int:
        """A plain descriptor: the receiver may write to it itself (``Receiver.pump``) and
        report with ``account`` and ``fail``."""
        return self.fd

    def account(self, records: int, nbytes: int) -> None:
        self.stats.written += records
        self.stats.output_bytes += nbytes

    def write(self, records, count: int) -> None:
        try:  # usually one write takes it all; write_some handles the rest
            done = os.write(self.fd, records)
        except BlockingIOError:
            done = 0
        except OSError as error:
            self.fail(error)
        if done < len(records):
            self._write(memoryview(records)[done:])
        self.stats.written += count
        self.stats.output_bytes += len(records)

    def _write(self, data) -> None:
        _, error = write_some(self.fd, data)
        if error is not None:
            self.fail(error)

    def fail(self, error: OSError) -> None:
        if error.errno in (errno.EPIPE, errno.ECONNRESET):
            raise ReaderGone(f"the reader of {self.description} went away (broken pipe)")
        raise OutputError(f"cannot write to {self.description}: {error.strerror or error}")

    def tick(self, now: float) -> Optional[float]:
        return None

    def close(self) -> None:
        if self.owns_fd:
            os.close(self.fd)


# ---------------------------------------------------------------- rotated files

_INDEX = re.compile(r"\{index(?::([^{}]*))?\}")


def rotated_name(pattern: str, index: int, when: float) -> str:
    """File name for the ``index``-th rotated file opened at ``when`` (epoch seconds, local
    time): ``{index}`` / ``{index:03d}`` in the pattern is the index, otherwise ``-NNN`` goes
    before the extension; then strftime(3) expands ``%Y%m%d-%H%M%S`` and friends."""
    if _INDEX.search(pattern):
        name = _INDEX.sub(lambda m: format(index, m.group(1) or ""), pattern)
    else:
        directory, base = os.path.split(pattern)
        stem, dot, extension = base.rpartition(".")
        if not stem:  # no extension (or a dot file)
            stem, dot, extension = base, "", ""
        name = os.path.join(directory, f"{stem}-{index:03d}{dot}{extension}")
    return time.strftime(name, time.localtime(when))


class RotatingFileSink:
    """Files that rotate by size (``-C``: a file is closed once it holds at least that many
    bytes) and/or by time (``-G``: a file is closed once it is that old and a packet
    arrives). Each file starts with the global header; an existing file is never overwritten."""

    def __init__(
        self,
        pattern: str,
        header: bytes,
        stats,
        rotate_bytes: Optional[int] = None,
        rotate_seconds: Optional[float] = None,
        clock: Callable[[], float] = time.time,
    ):
        self.pattern = pattern
        self.header = header
        self.stats = stats
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.clock = clock
        self.index = 0
        self.fd: Optional[int] = None
        self.path = ""
        self.size = 0
        self.opened_at = 0.0
        self.files: list[str] = []
        rotated_name(pattern, 0, clock())  # a bad {index:...} spec fails at start, not later

    def start(self) -> None:
        self._open()

    def _open(self) -> None:
        now = self.clock()
        for _attempt in range(100000):
            path = rotated_name(self.pattern, self.index, now)
            self.index += 1
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            except FileExistsError:
                continue
            except OSError as error:
                raise OutputError(f"cannot create {path}: {error.strerror or error}") from None
            break
        else:
            raise OutputError(f"no free file name for pattern {self.pattern!r}")
        self.fd, self.path, self.opened_at, self.size = fd, path, now, 0
        self.files.append(path)
        log.info("writing %s", path)
        self._write(self.header)

    def _rotate(self) -> None:
        os.close(self.fd)
        self.fd = None
        self._open()

    def _write(self, data) -> None:
        _, error = write_some(self.fd, data)
        if error is not None:
            raise OutputError(f"cannot write to {self.path}: {error.strerror or error}")
        self.size += len(data)

    def write(self, records, count: int) -> None:
        view = memoryview(records)
        if self.rotate_seconds is not None and self.clock() - self.opened_at >= self.rotate_seconds:
            self._rotate()
        limit = self.rotate_bytes
        while len(view):
            if limit is not None and self.size >= limit and self.size > len(self.header):
                self._rotate()
            if limit is None or self.size + len(view) < limit:
                cut = len(view)
            else:
                cut, _ = records_through(view, limit - self.size)
                cut = cut or len(view)
            self._write(view[:cut])
            view = view[cut:]
        self.stats.written += count
        self.stats.output_bytes += len(records)

    def tick(self, now: float) -> Optional[float]:
        return None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


# ---------------------------------------------------------------- consumer processes (--exec)


class Consumer:
    """One consumer process (e.g. snort) with its standard input on a pcap stream. When it
    ends, what arrives meanwhile is held (up to ``buffer_bytes``) and delivered, after a
    fresh global header, to the next process, started after a capped exponential backoff."""

    def __init__(
        self,
        argv: Sequence[str],
        header: bytes,
        stats,
        buffer_bytes: int,
        backoff: float = 0.5,
        backoff_cap: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        label: str = "",
        env: Optional[dict] = None,
    ):
        self.argv = list(argv)
        self.label = label
        self.env = env
        self.header = header
        self.stats = stats
        self.buffer_bytes = buffer_bytes
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self.clock = clock
        self.process: Optional[subprocess.Popen] = None
        self.started_at = 0.0
        self.restart_at: Optional[float] = None
        self.failures = 0
        self.starts = 0
        self.pending = bytearray()
        self.pending_count = 0

    @property
    def name(self) -> str:
        command = shlex.join(self.argv)
        return f"{self.label} {command}" if self.label else command

    def start(self) -> None:
        """Start the process; raises OSError when the command cannot be run."""
        process = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, close_fds=True, restore_signals=True, env=self.env
        )
        self.process = process
        self.started_at = self.clock()
        self.restart_at = None
        self.starts += 1
        if self.starts > 1:
            self.stats.consumer_restarts += 1
        enlarge_pipe(process.stdin.fileno())
        log.info("started consumer %s (pid %d)", self.name, process.pid)
        fd = process.stdin.fileno()
        written, error = write_some(fd, self.header)
        if error is not None:
            self._ended(f"its input closed ({error.strerror})")
            return
        if self.pending:
            held, count = self.pending, self.pending_count
            self.pending, self.pending_count = bytearray(), 0
            self.write(memoryview(held), count)

    def alive(self) -> bool:
        if self.process is None:
            return False
        if self.process.poll() is not None:
            self._ended(f"exited with status {self.process.returncode}")
            return False
        return True

    def write(self, records, count: int) -> None:
        if not self.alive():
            self.hold(records, count)
            return
        written, error = write_some(self.process.stdin.fileno(), records)
        if error is None:
            self.stats.written += count
            self.stats.output_bytes += len(records)
            return
        self.broke(records, count, written, error)

    @property
    def direct_fd(self) -> Optional[int]:
        """Its pipe, when the receiver may write to it itself: the process runs (as far as we
        know: a write to one that ended fails with EPIPE) and nothing is held for it."""
        if self.process is None or self.pending:
            return None
        return self.process.stdin.fileno()

    def broke(self, records, count: int, written: int, error: OSError) -> None:
        """A write of ``records`` failed after ``written`` bytes: the process is done for."""
        # Records written whole before the error count as delivered; the rest is held,
        # including the one cut short (the next consumer gets it complete).
        delivered, delivered_count = whole_records_within(records, written)
        self.stats.written += delivered_count
        self.stats.output_bytes += delivered
        self._ended(f"stopped reading ({error.strerror})")
        self.hold(memoryview(records)[delivered:], count - delivered_count)

    def hold(self, records, count: int) -> None:
        room = self.buffer_bytes - len(self.pending)
        if len(records) <= room:
            kept, kept_count = len(records), count
        else:
            kept, kept_count = whole_records_within(records, room)
        self.pending += memoryview(records)[:kept]
        self.pending_count += kept_count
        self.stats.buffer_overflow += count - kept_count

    def _ended(self, how: str) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        _close_quietly(process)
        if process.poll() is None:  # closed its input but still running: make it go
            _stop_process(process, 0.5)
        lived = self.clock() - self.started_at
        self.failures = 0 if lived >= max(CONSUMER_STABLE_AFTER, self.backoff_cap) else self.failures + 1
        delay = min(self.backoff_cap, self.backoff * (2 ** max(0, self.failures - 1)))
        self.restart_at = self.clock() + delay
        log.warning("consumer %s (pid %d) %s; restarting in %.1f s", self.name, process.pid, how, delay)

    def tick(self, now: float) -> float:
        """Notice an exit, restart when due; returns seconds until it wants the next tick."""
        if self.process is not None:
            self.alive()
        if self.process is None and self.restart_at is not None:
            if now >= self.restart_at:
                try:
                    self.start()
                except OSError as error:
                    self.failures += 1
                    delay = min(self.backoff_cap, self.backoff * (2 ** self.failures))
                    self.restart_at = self.clock() + delay
                    log.error("cannot start consumer %s: %s; retrying in %.1f s", self.name, error, delay)
            if self.restart_at is not None:
                return max(0.0, self.restart_at - self.clock())
        return CONSUMER_CHECK_INTERVAL

    def close(self) -> None:
        """End of capture: deliver what is held if the consumer runs, close its input, give it
        time to finish, then forward SIGTERM (and SIGKILL if it ignores that)."""
        self.end_input()
        self.wait_exit()

    def end_input(self) -> None:
        """Deliver what is held if the consumer runs (else count it unsent), close its input."""
        process = self.process
        if process is not None and self.pending and self.alive():
            held, count = self.pending, self.pending_count
            self.pending, self.pending_count = bytearray(), 0
            self.write(memoryview(held), count)
        if self.pending_count:
            self.stats.unsent_at_exit += self.pending_count
            log.warning("%d records held for the consumer were not delivered", self.pending_count)
            self.pending, self.pending_count = bytearray(), 0
        if self.process is not None:
            _close_quietly(self.process)

    def wait_exit(self, grace: float = CONSUMER_EOF_GRACE) -> None:
        """After end_input: wait for the process to finish, then SIGTERM (SIGKILL after that)."""
        process, self.process = self.process, None
        if process is None:
            return
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            _stop_process(process, CONSUMER_TERM_GRACE)


def _close_quietly(process: subprocess.Popen) -> None:
    try:
        process.stdin.close()
    except OSError:
        pass


def _stop_process(process: subprocess.Popen, grace: float) -> None:
    try:
        process.send_signal(signal.SIGTERM)
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    except ProcessLookupError:
        pass


def split_by_consumer(records, choose: Callable[[memoryview], int], consumers: int) -> list[tuple[bytearray, int]]:
    """Cut a batch of pcap records into one batch per consumer, keeping their order:
    ``choose(frame)`` gives each record's consumer index."""
    parts = [(bytearray(), [0]) for _ in range(consumers)]
    view = memoryview(records)
    offset = 0
    header = RECORD_HEADER.size
    total = len(view)
    unpack = RECORD_HEADER.unpack_from
    while offset + header <= total:
        end = offset + header + unpack(view, offset)[2]
        if end > total:
            break
        part = parts[choose(view[offset + header : end])]
        part[0].extend(view[offset:end])
        part[1][0] += 1
        offset = end
    return [(data, counted[0]) for data, counted in parts]


class ExecSink:
    """The stream goes to consumer processes that tzspd runs itself. With several
    (``--fanout N``), ``split(records)`` cuts each batch into one per consumer (a symmetric
    flow hash, tzsp.fanout: both directions of a flow reach the same Snort); each consumer has
    its own pcap header, buffer while it restarts, and backoff."""

    def __init__(self, consumers: Sequence[Consumer], split: Optional[Callable[[memoryview], list]] = None):
        self.consumers = list(consumers)
        if len(self.consumers) > 1 and split is None:
            raise ValueError("several consumers need a split(records) function")
        self.split = split

    def start(self) -> None:
        for consumer in self.consumers:
            consumer.start()

    @property
    def direct_fds(self) -> Optional[list]:
        """Every consumer's pipe when all of them run with nothing held: the receiver then
        writes (and splits) by itself (``Receiver.pump_consumers``); None sends batches through
        ``write``, which holds records while a consumer restarts."""
        fds = []
        for consumer in self.consumers:
            fd = consumer.direct_fd
            if fd is None:
                return None
            fds.append(fd)
        return fds

    def account(self, records: int, nbytes: int) -> None:
        stats = self.consumers[0].stats
        stats.written += records
        stats.output_bytes += nbytes

    def deliver_leftovers(self, base, leftovers, error: OSError) -> None:
        """After a direct write failed: ``leftovers`` are (consumer, offset, length, count, done)
        shares in ``base`` that did not go out; the first is the consumer whose write failed
        after ``done`` bytes, the others were not tried yet."""
        for index, (consumer_index, offset, length, count, done) in enumerate(leftovers):
            share = base[offset : offset + length]
            if index == 0:
                self.consumers[consumer_index].broke(share, count, done, error)
            else:
                self.consumers[consumer_index].write(share, count)

    def write(self, records, count: int) -> None:
        if len(self.consumers) == 1:
            self.consumers[0].write(records, count)
            return
        for consumer, (data, part_count) in zip(self.consumers, self.split(records)):
            if part_count:
                consumer.write(data, part_count)

    def tick(self, now: float) -> Optional[float]:
        return min(consumer.tick(now) for consumer in self.consumers)

    def close(self) -> None:
        for consumer in self.consumers:  # all see end of input first, then finish side by side
            consumer.end_input()
        deadline = time.monotonic() + CONSUMER_EOF_GRACE
        for consumer in self.consumers:
            consumer.wait_exit(max(0.0, deadline - time.monotonic()))
