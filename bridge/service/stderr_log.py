"""snort-bridge's log: to stderr (journald under systemd), for `run` and `scan`.

`run` buffers its processing loop's INFO lines and writes them once per pass (``flush_log``):
a storm's thousands of BLOCK lines cost a few writes, not one each.
"""

from __future__ import annotations

import logging
import os
import sys
import threading


class _Formatter(logging.Formatter):
    """``snort-bridge: message``; under journald with the syslog level prefix it understands."""

    _LEVELS = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}

    def __init__(self, journal: bool):
        super().__init__()
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        if self.journal:
            return f"<{self._LEVELS.get(record.levelno, 6)}>{text}"
        label = "" if record.levelno == logging.INFO else record.levelname.lower() + ": "
        return f"snort-bridge: {label}{text}"


class _PassHandler(logging.StreamHandler):
    """The processing loop's INFO lines go into a buffer it flushes after each pass and each
    tick (and logging at exit): a storm's thousands of BLOCK lines cost a few writes, not one
    each. Warnings, errors and other threads' lines are written at once, as usual."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + self.terminator)
            if record.levelno >= logging.WARNING or record.thread != threading.main_thread().ident:
                self.stream.flush()
        except Exception:  # noqa: BLE001 -- as StreamHandler does
            self.handleError(record)


def flush_log() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()


def setup_logging(verbose: bool = False, quiet: bool = False, buffered: bool = False) -> None:
    if buffered:
        stream = open(sys.stderr.fileno(), "w", buffering=1 << 16, closefd=False, errors="backslashreplace")
        handler: logging.StreamHandler = _PassHandler(stream)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(journal=bool(os.environ.get("JOURNAL_STREAM"))))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    for noisy in ("paramiko", "watchdog"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
