"""One followed path walking its rotation chain: which file is open and how far it is read.

The ``Follower`` (bridge/follow/follower.py) keeps one ``Tail`` per followed path and decides when to
poll it; reading on, noticing a rotation or a truncation, finishing a file and opening the next
are here. It needs no watchdog, so tests drive it directly over real files
(tests/test_rotation_chain.py).
"""

from __future__ import annotations

import logging
import os
import time

from bridge.follow.positions import Position, fingerprint
from bridge.follow.readers import FileReader, Line, count_lines, plan_resume
from bridge.follow.rotation import Plan, Step, finished

log = logging.getLogger("bridge.follow")  # one logger for all the follower's messages

APPEAR_SLACK_NS = 100_000_000  # file times tick coarser than time.time_ns()


class Tail:
    """The reading state of one followed path: which file of its chain is open, how far read.

    While the open file is the one the path names, it is simply read on (no directory scan).
    Once it is not (rotated, replaced) or was emptied (copytruncate), the planner is asked from
    the reader's position: the file is finished once a later file of the chain has data, then
    the next file in the chain is opened -- one step at a time, so rotations that go on while
    we read are seen too.
    """

    def __init__(self, path: str, saved: Position | None, start_at_end: bool, max_line_bytes: int):
        self.path = path
        self.max_line_bytes = max_line_bytes
        self.reader: FileReader | None = None
        self.more = False
        self._saved = saved
        self._start_at_end = start_at_end
        self._first = True
        self._problem = ""
        self._waiting = ""

    def report(self, problem: str) -> None:
        if problem and problem != self._problem:
            log.error("%s", problem)
        self._problem = problem

    def initial_position(self) -> Position | None:
        """Where this path starts (also while it does not exist yet): saved at once, so a
        restart before the first commit neither skips nor repeats anything."""
        return self.reader.position() if self.reader is not None else self._saved

    def ensure_open(self) -> None:
        """Open where the planner says, from the saved position -- or, once reading, from the
        last position reached (a file that moved between the plan and its opening)."""
        if self.reader is not None:
            return
        plan = plan_resume(self.path, self._saved, self._start_at_end and self._first)
        if self._first:
            log.info("following %s: %s", self.path, plan.reason)
            if self._saved is None and not plan.steps:
                # Not there yet: whatever appears from now on is new, also if it is rotated
                # before we look (the planner then reads rotated files modified since).
                self._saved = Position(self.path, 0, 0, 0, 0, fingerprint(b""), time.time_ns() - APPEAR_SLACK_NS)
        self._first = False
        if plan.steps:
            self._open(plan.steps[0])

    def _open(self, step: Step) -> bool:
        file_path = step.file.path
        try:
            reader = FileReader.open(self.path, file_path, max(step.offset, 0), max(step.line, 0), self.max_line_bytes)
        except FileNotFoundError:
            self.more = True  # renamed meanwhile: plan again
            return False
        except OSError as e:
            self.report(f"cannot read {file_path} (followed as {self.path}): {e}")
            return False
        if reader.identity != step.file.identity:  # renamed or replaced since the plan
            reader.close()
            self.more = True
            return False
        if step.offset < 0:  # start at the end: after the last complete line
            lines, end = count_lines(reader.fd, reader.size())
            reader.close()
            reader = FileReader.open(self.path, file_path, end, lines, self.max_line_bytes)
        self._problem = ""
        self._waiting = ""
        self.reader = reader
        return True

    def poll(self) -> list[Line]:
        """New lines, at most about READ_BUDGET bytes per file read; ``more`` tells whether
        data was left unread."""
        out: list[Line] = []
        self.more = False
        if self.reader is None:
            self.ensure_open()
            if self.reader is None:
                return out
        reader = self.reader
        if reader.truncated() or reader.rewritten():  # before reading: new bytes are not ours
            self._emptied(reader, plan_resume(self.path, reader.position()))
            return out
        out.extend(reader.read_available())
        if not reader.at_eof:
            self.more = True
            return out
        try:
            st: os.stat_result | None = os.stat(self.path)
        except OSError:
            st = None
        emptied = reader.truncated() or reader.rewritten()
        if st is not None and (st.st_dev, st.st_ino) == reader.identity and not emptied:
            if reader.offset == 0 and st.st_mtime_ns != reader.mtime_ns:
                # Changed, yet nothing to read: written and truncated (copytruncate) before
                # the first read? The planner looks for copies made since.
                plan = plan_resume(self.path, reader.position())
                reader.mtime_ns = st.st_mtime_ns
                if plan.found == "truncated":
                    self._emptied(reader, plan)
            return out  # reading the current file: nothing to plan
        plan = plan_resume(self.path, reader.position())
        if emptied:
            self._emptied(reader, plan)
            return out
        if plan.found in ("same", "moved", "copied"):
            if not finished(plan):
                return out  # no later file has data yet: the writer may still add to this one
            later = plan.later
        elif any(info.has_data for info in plan.later):
            later = plan.later  # gone from the directory, but still open: read it to its end
        else:
            return out
        if not reader.complete:  # a compressed file still being written
            self._wait(f"{self.path}: {reader.file_path} is not completely written yet; waiting")
            return out
        out.extend(reader.finish())
        log.info(
            "%s: finished %s (%d lines); now reading %s%s",
            self.path,
            reader.file_path,
            reader.line,
            later[0].path,
            f" ({len(later) - 1} more file(s) after it)" if len(later) > 1 else "",
        )
        self._saved = reader.position()  # where to plan from if the next file moves before it opens
        reader.close()
        self.reader = None
        self._open(Step(later[0]))
        self.more = True
        return out

    def _emptied(self, reader: FileReader, plan: Plan) -> None:
        """copytruncate (or ``> file``): the unread part from its copy, if one is found."""
        log.warning("%s: truncated or rewritten after byte %d: %s", self.path, reader.offset, plan.reason)
        self._saved = reader.position()
        reader.close()
        self.reader = None
        if plan.steps:
            self._open(plan.steps[0])
        self.more = True

    def _wait(self, note: str) -> None:
        if note != self._waiting:
            log.warning("%s", note)
        self._waiting = note

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
        self.reader = None
