"""Wall time that does not step: the wall clock read once, then carried on by the monotonic clock.

Block ends are instants in wall time (RouterOS timeouts are sent as "end - now", the ledger keeps
ends as UNIX times), yet a timer must not jump when NTP corrects a bad clock at boot: a step of
+1 h would end every block an hour early, -1 h keep them an hour longer. ``SteadyClock`` gives
wall-time numbers that advance only as real time passes; ``step()`` tells how far the wall clock
has moved away from it (an NTP step), and the owner of stored times moves them by that much and
``rebase``s, so every end stays the same real instant.
"""

from __future__ import annotations

import time
from collections.abc import Callable

STEP_SLACK = 2.0  # seconds of drift between the two clocks that are not a step (slewing, jitter)


class SteadyClock:
    def __init__(self, wall: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic):
        self._wall = wall
        self._monotonic = monotonic
        self._anchor = wall() - monotonic()

    def __call__(self) -> float:
        return self._anchor + self._monotonic()

    def step(self, slack: float = STEP_SLACK) -> float:
        """How far the wall clock stepped since the last rebase (seconds, + forward); 0.0 within ``slack``."""
        drift = self._wall() - self()
        return drift if abs(drift) > slack else 0.0

    def rebase(self, delta: float) -> None:
        """Follow a step of ``delta`` seconds: from now on the numbers are the wall clock's again."""
        self._anchor += delta
