"""Pure parsers for the alert lines Snort 3, Snort 2.9 and Suricata write.

``parse_line`` turns one line into an ``Alert`` or raises ``UnparsableLine`` -- nothing else,
whatever the line holds. Formats: alert_fast (``fast``), alert_syslog (``syslog``), Snort 3
alert_json (``json``), alert_csv (``csv``), Suricata eve.json (``eve``); ``auto`` looks at
the line to pick one (``detect_format``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from bridge.events import Alert, Origin

from .common import LOCAL, SNORT_TIME, Clock, UnparsableLine
from .eve import parse_eve
from .fast import is_noise, parse_fast
from .snort_csv import parse_csv
from .snort_json import parse_json
from .syslog import parse_syslog

__all__ = ["FORMATS", "Clock", "UnparsableLine", "detect_format", "parse_line"]

FORMATS = ("auto", "fast", "syslog", "json", "csv", "eve")

_PARSERS: dict[str, Callable[[str, Origin, Clock], Alert]] = {
    "fast": parse_fast,
    "syslog": parse_syslog,
    "json": parse_json,
    "eve": parse_eve,
}

_SNORT_TIME_AFTER = re.compile(rf"\s*{SNORT_TIME}( ?,| +\[)", re.ASCII)
_SYSLOG_START = re.compile(
    r"\s*(?:<\d{1,3}>"
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d"
    r"|(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:)",
    re.ASCII,
)
_CSV_ACTION_START = re.compile(r"[a-z_ ]{1,16}, ", re.ASCII)


def detect_format(line: str) -> str | None:
    """Which format a line looks like, from its first characters only (cheap); None if none."""
    if not isinstance(line, str):
        return None
    head = line[:64]
    if head[2:3] == "/" and "[**] [" in head:  # the common case first: alert_fast
        return "fast"
    first = head.lstrip()[:1]
    if first == "{":
        return "eve" if '"event_type"' in line[:4096] else "json"
    match = _SNORT_TIME_AFTER.match(head)
    if match is not None:
        return "csv" if match.group(1).endswith(",") else "fast"
    if _SYSLOG_START.match(head):
        return "syslog"
    if _CSV_ACTION_START.match(head):
        return "csv"
    return None


def parse_line(
    line: str,
    origin: Origin,
    fmt: str = "auto",
    csv_fields: tuple[str, ...] = (),
    *,
    clock: Clock = LOCAL,
) -> Alert:
    """One alert line -> Alert; anything else -> UnparsableLine with the reason.

    ``clock`` places timestamps that have no year or no zone (see ``Clock``).
    """
    if not isinstance(line, str):
        raise UnparsableLine(f"not text: {type(line).__name__}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown alert format {fmt!r}; one of {', '.join(FORMATS)}")
    if fmt == "auto":
        detected = detect_format(line)
        if detected is None:
            if csv_fields:
                detected = "csv"
            else:
                raise UnparsableLine("not an alert", noise=is_noise(line))
        fmt = detected
    try:
        if fmt == "csv":
            return parse_csv(line, origin, clock, tuple(csv_fields))
        return _PARSERS[fmt](line, origin, clock)
    except UnparsableLine:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError) as error:
        # A parser bug must not stop the bridge: report it as an unparsable line, with the cause.
        raise UnparsableLine(f"parser error {type(error).__name__}: {error}"[:200]) from error
