"""Signals at the very moment a daemon says it is ready.

tzspd logs "listening on" and snort-bridge run logs "started:" (both also send systemd READY); a
supervisor or a test that acts on that line may signal at once. Each start below sends SIGUSR1 or
SIGTERM the instant the line is read from the process's stderr pipe: SIGUSR1 must produce a report
(the process keeps running), SIGTERM a clean exit with status 0, never death by the signal.
Bounded: a few short-lived processes per daemon, each with its own deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import console_script

STARTS = 8  # per daemon and signal order; the old race lost about 1 start in 30 on a quiet machine
DEADLINE = 20.0


class Lines:
    """stderr of a child, read line by line in a thread, so the test can react to one line at once."""

    def __init__(self, process: subprocess.Popen):
        self.process = process
        self.lines: list = []
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for raw in self.process.stderr:
            with self.changed:
                self.lines.append(raw.decode(errors="replace"))
                self.changed.notify_all()
        with self.changed:
            self.lines.append(None)  # end of stream
            self.changed.notify_all()

    def wait_for(self, needle: str, then=None, start: int = 0) -> int:
        """Index of the first line from ``start`` containing ``needle``; ``then()`` runs the moment it is seen."""
        deadline = time.monotonic() + DEADLINE
        with self.changed:
            index = start
            while True:
                while index < len(self.lines):
                    line = self.lines[index]
                    if line is None:
                        raise AssertionError(f"stream ended before {needle!r}: {self.text()}")
                    if needle in line:
                        if then is not None:
                            then()
                        return index
                    index += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {needle!r} within {DEADLINE}s: {self.text()}")
                self.changed.wait(left)

    def text(self) -> str:
        return "".join(line for line in self.lines if line)


def start(argv: list) -> Lines:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    return Lines(process)


def answers_both(argv: list, ready: str, report: str) -> None:
    """SIGUSR1 at the ready line -> a report; then SIGTERM -> exit 0."""
    lines = start(argv)
    try:
        seen = lines.wait_for(ready, then=lambda: lines.process.send_signal(signal.SIGUSR1))
        lines.wait_for(report, start=seen + 1)
        lines.process.send_signal(signal.SIGTERM)
        assert lines.process.wait(DEADLINE) == 0, lines.text()
    finally:
        if lines.process.poll() is None:
            lines.process.kill()
            lines.process.wait()


def stops_cleanly(argv: list, ready: str) -> None:
    """SIGTERM at the ready line -> exit 0."""
    lines = start(argv)
    try:
        lines.wait_for(ready, then=lambda: lines.process.send_signal(signal.SIGTERM))
        assert lines.process.wait(DEADLINE) == 0, lines.text()
    finally:
        if lines.process.poll() is None:
            lines.process.kill()
            lines.process.wait()


def tzspd_argv(tmp_path: Path) -> list:
    return console_script("tzspd") + [
        "--listen",
        "127.0.0.1",
        "--port",
        "0",
        "--allow",
        "127.0.0.1/32",
        "-o",
        str(tmp_path / "out.pcap"),
    ]


def bridge_argv(tmp_path: Path) -> list:
    config = tmp_path / "config.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\n\n[[alerts]]\npath = "{tmp_path / "alert.fast"}"\nformat = "fast"\n'
    )
    os.chmod(config, 0o600)
    return console_script("snort-bridge") + ["run", "--config", str(config)]


@pytest.mark.slow
@pytest.mark.parametrize("order", ["usr1-then-term", "term"])
def test_tzspd_answers_signals_sent_as_it_says_listening(tmp_path, order):
    argv = tzspd_argv(tmp_path)
    for _ in range(STARTS):
        if order == "term":
            stops_cleanly(argv, "listening on")
        else:
            answers_both(argv, "listening on", "tzspd: stats:")


@pytest.mark.slow
@pytest.mark.parametrize("order", ["usr1-then-term", "term"])
def test_bridge_answers_signals_sent_as_it_says_started(tmp_path, order):
    argv = bridge_argv(tmp_path)
    for _ in range(STARTS):
        if order == "term":
            stops_cleanly(argv, "started:")
        else:
            answers_both(argv, "started:", "status:")
