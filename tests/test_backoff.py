"""Capped exponential backoff with equal jitter."""

from __future__ import annotations

import random

import pytest

from responder.sync.backoff import Backoff, backoff_delay


def test_ceiling_doubles_then_caps():
    highs = [backoff_delay(n, base=0.5, cap=10, rand=lambda: 1.0) for n in range(8)]
    assert highs == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    lows = [backoff_delay(n, base=0.5, cap=10, rand=lambda: 0.0) for n in range(8)]
    assert lows == [h / 2 for h in highs]


def test_jitter_spreads_within_upper_half():
    rng = random.Random(7)
    delays = [backoff_delay(3, base=1, cap=60, rand=rng.random) for _ in range(200)]
    assert all(4.0 <= d <= 8.0 for d in delays)
    assert max(delays) - min(delays) > 2.0  # really spread, not constant


def test_huge_attempt_counts_do_not_overflow():
    assert backoff_delay(10_000, base=0.5, cap=30, rand=lambda: 1.0) == 30


@pytest.mark.parametrize("kwargs", [dict(attempt=-1), dict(attempt=0, base=0), dict(attempt=0, base=5, cap=1)])
def test_bad_arguments(kwargs):
    attempt = kwargs.pop("attempt")
    with pytest.raises(ValueError):
        backoff_delay(attempt, **kwargs)


def test_backoff_object_counts_and_resets():
    backoff = Backoff(base=1, cap=4, rand=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(4)] == [1, 2, 4, 4]
    assert backoff.failures == 4
    backoff.reset()
    assert backoff.next_delay() == 1
    with pytest.raises(ValueError):
        Backoff(base=2, cap=1)
