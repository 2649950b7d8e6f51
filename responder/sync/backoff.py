"""Capped exponential backoff with jitter (pure: the random source is a parameter)."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_delay(
    attempt: int, *, base: float = 0.5, cap: float = 60.0, rand: Callable[[], float] = random.random
) -> float:
    """Seconds to wait before retry number ``attempt`` (0 = first retry).

    The ceiling doubles per attempt up to ``cap``; the delay is drawn from its upper half
    ("equal jitter"), so many workers retrying at once spread out yet never retry immediately.
    """
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    if base <= 0 or cap < base:
        raise ValueError(f"need 0 < base <= cap, got base={base} cap={cap}")
    ceiling = cap if attempt >= 64 else min(cap, base * (2**attempt))
    return ceiling / 2 + rand() * ceiling / 2


class Backoff:
    """Counts failures since the last success and hands out the next delay."""

    def __init__(self, *, base: float = 0.5, cap: float = 60.0, rand: Callable[[], float] = random.random) -> None:
        backoff_delay(0, base=base, cap=cap, rand=lambda: 0.0)  # validate now, not at the first failure
        self.base, self.cap, self._rand = base, cap, rand
        self.failures = 0

    def next_delay(self) -> float:
        delay = backoff_delay(self.failures, base=self.base, cap=self.cap, rand=self._rand)
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0
