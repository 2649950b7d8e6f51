"""Small text helpers for messages: times, durations, counts."""

from __future__ import annotations

import time
from collections.abc import Iterable


def utc(at: float, date: bool = True) -> str:
    """``2026-12-04 10:05:00 UTC`` (or only the time of day)."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC" if date else "%H:%M:%S UTC", time.gmtime(at))


def span(seconds: float) -> str:
    """RouterOS-style: ``45s``, ``5m``, ``1h2m``, ``3d4h``."""
    seconds = int(round(max(seconds, 0)))
    if seconds < 60:
        return f"{seconds}s"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m")] if days or hours else [(minutes, "m"), (secs, "s")]
    return "".join(f"{value}{unit}" for value, unit in parts if value) or "0s"


def plural(count: int, word: str, many: str = "") -> str:
    return f"{count:,} {word if count == 1 else (many or word + 's')}"


def listing(names: Iterable[str], limit: int = 5) -> str:
    items: list[str] = list(names)
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f" and {len(items) - limit} more"
