"""One ``--exec`` consumer process (e.g. snort) that tzspd runs itself: started with its
standard input on a pcap stream, restarted with a capped exponential backoff when it ends,
records held for it meanwhile (up to a bound), and stopped at the end of capture.
``ExecSink`` (tzsp/output.py) writes to one or more of them.
"""

from __future__ import annotations

import logging
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

    @property
    def name(self) -> str:
        command = shlex.join(self.argv)
        return f"{self.label} {command}" if self.label else command

    def start(self) -> None:
        """Start the process; raises OSError when the command cannot be run."""
        process = subprocess.Popen(self.argv, stdin=subprocess.PIPE, close_fds=True, restore_signals=True, env=self.env)
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
