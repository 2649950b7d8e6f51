"""One ``--exec`` consumer process (e.g. snort) that tzspd runs itself: started with its
standard input on a pcap stream, restarted with a capped exponential backoff when it ends,
records held for it meanwhile (up to a bound), replaced without a gap on reload (SIGHUP), and
stopped at the end of capture. ``ExecSink`` (tzsp/output.py) writes to one or more of them.

Reload, make before break: a successor runs the same command (so it reads the configuration and
rules afresh) beside the running process, which keeps getting every record until the successor
reads its own pipe (a thread of it asleep in a pipe read: /proc/PID/task/*/wchan, the sign that it
has loaded its rules and entered its packet loop). Then records go to the successor, and the old
process sees the end of its input, finishes what its pipe still holds and exits. Nothing is held or
dropped across the change; each flow's state starts afresh in the successor.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Sequence

from .fdwrite import enlarge_pipe, write_some
from .pcap import whole_records_within

log = logging.getLogger("tzspd")

CONSUMER_CHECK_INTERVAL = 0.25
CONSUMER_STABLE_AFTER = 10.0  # a consumer that ran this long resets the restart backoff
CONSUMER_EOF_GRACE = 2.0
CONSUMER_TERM_GRACE = 5.0
RELOAD_READY_TIMEOUT = 300.0  # a successor not seen reading its pipe by then takes over anyway
RELOAD_DRAIN_GRACE = 60.0  # a replaced process has this long to finish its pipe before SIGTERM


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
        env: dict | None = None,
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
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.restart_at: float | None = None
        self.failures = 0
        self.starts = 0
        self.pending = bytearray()
        self.pending_count = 0
        self.successor: subprocess.Popen | None = None  # started by reload(), not yet fed
        self.successor_since = 0.0
        self.retiring: list[tuple[subprocess.Popen, float]] = []  # replaced, finishing their pipe; deadline
        self.reloads = 0

    @property
    def name(self) -> str:
        command = shlex.join(self.argv)
        return f"{self.label} {command}" if self.label else command

    def _spawn(self) -> subprocess.Popen:
        return subprocess.Popen(self.argv, stdin=subprocess.PIPE, close_fds=True, restore_signals=True, env=self.env)

    def start(self) -> None:
        """Start the process; raises OSError when the command cannot be run."""
        process = self._spawn()
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
    def direct_fd(self) -> int | None:
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

    def reload(self) -> None:
        """Start a successor beside the running process; ``tick`` hands over once it reads its pipe."""
        if self.process is None:  # down: start now rather than after the backoff
            if self.restart_at is not None:
                self.restart_at = self.clock()
            return
        if self.successor is not None:
            log.info("consumer %s: a reload is already under way (pid %d)", self.name, self.successor.pid)
            return
        try:
            successor = self._spawn()
        except OSError as error:
            log.error("reload: cannot start consumer %s: %s; the running one goes on", self.name, error)
            return
        enlarge_pipe(successor.stdin.fileno())
        _written, error = write_some(successor.stdin.fileno(), self.header)
        if error is not None:
            log.error("reload: consumer %s (pid %d) closed its input at once", self.name, successor.pid)
            _close_quietly(successor)
            _stop_process(successor, 0.5)
            return
        self.successor, self.successor_since = successor, self.clock()
        log.info(
            "reload: started consumer %s (pid %d); it takes over once it reads its input", self.name, successor.pid
        )

    def _reload_tick(self, now: float) -> None:
        successor = self.successor
        if successor is not None:
            if successor.poll() is not None:
                self.successor = None
                log.error(
                    "reload: consumer %s (pid %d) exited with status %d before taking over; the running one goes on",
                    self.name,
                    successor.pid,
                    successor.returncode,
                )
            elif reading_its_pipe(successor.pid) is not False or now - self.successor_since >= RELOAD_READY_TIMEOUT:
                self._hand_over(now)
        for process, deadline in list(self.retiring):
            if process.poll() is not None:
                self.retiring.remove((process, deadline))
                log.info("reload: the replaced consumer (pid %d) finished its input and exited", process.pid)
            elif now >= deadline:
                self.retiring.remove((process, deadline))
                log.warning(
                    "reload: the replaced consumer (pid %d) still runs after %.0f s; stopping it",
                    process.pid,
                    RELOAD_DRAIN_GRACE,
                )
                _stop_process(process, CONSUMER_TERM_GRACE)

    def _hand_over(self, now: float) -> None:
        old, self.process = self.process, self.successor
        self.successor = None
        self.started_at = now
        self.restart_at = None
        self.reloads += 1
        if old is not None:
            _close_quietly(old)  # its end of input: it finishes what its pipe holds, then exits
            self.retiring.append((old, now + RELOAD_DRAIN_GRACE))
        log.info("reload: consumer %s (pid %d) took over", self.name, self.process.pid)
        if self.pending:  # held while the old one was down
            held, count = self.pending, self.pending_count
            self.pending, self.pending_count = bytearray(), 0
            self.write(memoryview(held), count)

    def tick(self, now: float) -> float:
        """Notice an exit, restart when due, hand over on reload; returns seconds until the next tick."""
        if self.successor is not None or self.retiring:
            self._reload_tick(now)
        if self.process is not None:
            self.alive()
        if self.process is None and self.restart_at is not None:
            if now >= self.restart_at:
                try:
                    self.start()
                except OSError as error:
                    self.failures += 1
                    delay = min(self.backoff_cap, self.backoff * (2**self.failures))
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
        if self.successor is not None:  # a reload that had not handed over yet: it saw nothing
            _close_quietly(self.successor)
            _stop_process(self.successor, 0.5)
            self.successor = None
        for process, _deadline in self.retiring:
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                _stop_process(process, CONSUMER_TERM_GRACE)
        self.retiring = []
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


def reading_its_pipe(pid: int) -> bool | None:
    """Whether a thread of ``pid`` sleeps in a pipe read (Linux /proc); None when that cannot be seen."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/wchan") as handle:
                if "pipe" in handle.read():
                    return True
        except OSError:
            continue
    return False
