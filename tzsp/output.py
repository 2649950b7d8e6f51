"""Where tzspd's pcap stream goes: standard output or a file, rotated files, or consumer
processes that tzspd starts and restarts itself (``--exec``, ``--fanout N``).

Every sink takes whole pcap records in batches (``write(records, count)``) and starts each
stream, file or consumer with the global header it was given. Writes go straight to file
descriptors with ``os.write`` from the receiver's own buffer: one system call per batch,
whatever Python's stdout buffering (PYTHONUNBUFFERED) is set to.

A consumer process itself (start, restart with backoff, records held meanwhile) is
tzsp/consumer.py; the cut of a batch by flow is tzsp/fanout.py.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import time
from collections.abc import Callable, Sequence

from .consumer import CONSUMER_EOF_GRACE, Consumer
from .fdwrite import write_some
from .pcap import records_through

log = logging.getLogger("tzspd")


class OutputError(Exception):
    """The output cannot take more data; tzspd must stop."""


class ReaderGone(OutputError):
    """The process reading the stream closed it (EPIPE)."""


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
    def open_file(cls, path: str, header: bytes, stats) -> StreamSink:
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

    def tick(self, now: float) -> float | None:
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
        rotate_bytes: int | None = None,
        rotate_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.pattern = pattern
        self.header = header
        self.stats = stats
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.clock = clock
        self.index = 0
        self.fd: int | None = None
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

    def tick(self, now: float) -> float | None:
        return None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


# ---------------------------------------------------------------- consumer processes (--exec)


class ExecSink:
    """The stream goes to consumer processes that tzspd runs itself. With several
    (``--fanout N``), ``split(records)`` cuts each batch into one per consumer (a symmetric
    flow hash, tzsp.fanout: both directions of a flow reach the same Snort); each consumer has
    its own pcap header, buffer while it restarts, and backoff."""

    def __init__(self, consumers: Sequence[Consumer], split: Callable[[memoryview], list] | None = None):
        self.consumers = list(consumers)
        if len(self.consumers) > 1 and split is None:
            raise ValueError("several consumers need a split(records) function")
        self.split = split

    def start(self) -> None:
        for consumer in self.consumers:
            consumer.start()

    @property
    def direct_fds(self) -> list | None:
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
        for consumer, (data, part_count) in zip(self.consumers, self.split(records), strict=True):
            if part_count:
                consumer.write(data, part_count)

    def tick(self, now: float) -> float | None:
        return min(consumer.tick(now) for consumer in self.consumers)

    def close(self) -> None:
        for consumer in self.consumers:  # all see end of input first, then finish side by side
            consumer.end_input()
        deadline = time.monotonic() + CONSUMER_EOF_GRACE
        for consumer in self.consumers:
            consumer.wait_exit(max(0.0, deadline - time.monotonic()))
