"""RouterOS durations: parse what users and routers write, render what routers accept.

Accepted input: unit form ``1w2d3h4m5s`` (any subset, in that order, optional ``ms``),
clock form ``00:05:00`` optionally after a unit prefix (``1d02:00:00``, as routers print),
and a bare integer meaning seconds (scripts write ``timeout=120``).
"""

from __future__ import annotations

import re

# RouterOS keeps timeouts in a signed 32-bit count of 10 ms ticks: 2**31 / 100 s.
MAX_TIMEOUT_SECONDS = 35 * 7 * 86400 + 3 * 86400 + 13 * 3600 + 13 * 60 + 56  # 35w3d13h13m56s
# The v7 manual documents 35w3d13h13m56s. For v6 we found no documentation; 2**31 ms (24d20h31m23s)
# is the lower limit sometimes reported. The responder does not rely on either: a router's "value
# of timeout is out of range (00:00:00 .. LIMIT)" teaches it the limit, and longer blocks become
# static entries it removes itself. routeros-sim's v6 flavour enforces the lower one.
V6_MAX_TIMEOUT_SECONDS = 24 * 86400 + 20 * 3600 + 31 * 60 + 23  # 24d20h31m23s
MAX_TIMEOUT_BY_FLAVOUR = {"v6": V6_MAX_TIMEOUT_SECONDS, "v7": MAX_TIMEOUT_SECONDS}
_RANGE_RE = re.compile(r"out of range \(\s*[^.]*\.\.\s*(?P<limit>[0-9wd:]+)\s*\)")

_UNITS = (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_UNIT_RE = re.compile(
    r"^(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m(?!s))?(?:(?P<s>\d+)s)?(?:(?P<ms>\d+)ms)?$"
)
_CLOCK_RE = re.compile(r"^(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?(?P<hh>\d+):(?P<mm>[0-5]?\d):(?P<ss>[0-5]?\d(?:\.\d+)?)$")


class DurationError(ValueError):
    """Text that is not a RouterOS duration."""


def parse_duration(value: str | int | float) -> float:
    """Seconds in ``value``; raises DurationError with what was expected."""
    if isinstance(value, bool):
        raise DurationError(f'expected a duration such as "5m" or "00:05:00", got {value!r}')
    if isinstance(value, (int, float)):
        if value < 0:
            raise DurationError(f"a duration cannot be negative: {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise DurationError(f'expected a duration such as "5m" or "00:05:00", got {value!r}')
    text = value.strip().lower()
    if text.isdigit():
        return float(int(text))
    match = _CLOCK_RE.match(text)
    if match:
        weeks = int(match["w"] or 0)
        days = int(match["d"] or 0)
        return (weeks * 7 + days) * 86400 + int(match["hh"]) * 3600 + int(match["mm"]) * 60 + float(match["ss"])
    match = _UNIT_RE.match(text)
    if text and match:
        seconds = sum(int(match[unit] or 0) * size for unit, size in _UNITS)
        return seconds + int(match["ms"] or 0) / 1000.0
    raise DurationError(f'expected a duration such as "30s", "5m", "1d2h" or "00:05:00", got {value!r}')


def format_duration(seconds: float) -> str:
    """RouterOS unit form of ``seconds``, rounded up to whole seconds (``0s`` for zero)."""
    if seconds < 0:
        raise DurationError(f"a duration cannot be negative: {seconds!r}")
    remaining = int(-(-seconds // 1))  # ceil without float surprises: never shorten a block
    parts = []
    for unit, size in _UNITS:
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def format_clock(seconds: float) -> str:
    """A time as RouterOS prints it: ``00:05:00``, ``1d00:00:00``, ``35w3d13:13:56`` (a listed
    timeout, a script's time value, the limit in an out-of-range message)."""
    remaining = int(seconds)
    weeks, remaining = divmod(remaining, 7 * 86400)
    days, remaining = divmod(remaining, 86400)
    hours, remaining = divmod(remaining, 3600)
    minutes, secs = divmod(remaining, 60)
    return f"{f'{weeks}w' if weeks else ''}{f'{days}d' if days else ''}{hours:02d}:{minutes:02d}:{secs:02d}"


def timeout_limit_of(message: str) -> float | None:
    """The upper limit in ``value of timeout is out of range (00:00:00 .. 24d20:31:23)``, or None."""
    match = _RANGE_RE.search(message)
    if not match:
        return None
    try:
        return parse_duration(match["limit"])
    except DurationError:
        return None


def clamp_timeout(seconds: float) -> float:
    """The longest timeout a router accepts is 35w3d13h13m56s; longer requests are capped to it."""
    return min(max(seconds, 1.0), float(MAX_TIMEOUT_SECONDS))
