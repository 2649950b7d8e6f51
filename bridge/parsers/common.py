"""Pieces every alert format shares: the typed error, addresses, ports, timestamps.

Addresses go through ``ipaddress`` and nothing else: a field that should hold an address
and holds anything else makes the whole line unparsable, so no text from a line can ever
become a block target.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from functools import lru_cache

from bridge.events import IPAddress

MAX_LINE_CHARS = 256 * 1024  # longest real line: Snort 3 alert_json with a 64 KiB b64_data payload
_SHOWN_CHARS = 60  # how much of an offending field goes into an error message


class UnparsableLine(ValueError):
    """A line that is not an alert of the expected format. ``reason`` says why, briefly.

    ``noise`` is true for lines the engines write around alerts (blank lines, packet
    dumps of alert_fast ``packet = true``, alert_full blocks): a follower may log those
    at a lower level than a line that looks broken.
    """

    def __init__(self, reason: str, noise: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.noise = noise


def shown(text: str) -> str:
    """A field quoted for an error message, cut short so a 1 MB line gives a short error."""
    if len(text) > _SHOWN_CHARS:
        return repr(text[:_SHOWN_CHARS]) + "..."
    return repr(text)


# ----------------------------------------------------------------------------------------
# addresses and ports

_ADDRESS_CHARS = re.compile(r"[0-9A-Fa-f:.]{2,45}", re.ASCII)  # what inet_ntop can print, nothing else


@lru_cache(maxsize=4096)
def _address(text: str) -> IPAddress:
    return ipaddress.ip_address(text)


def parse_address(text: str) -> IPAddress | None:
    """An address field: "" means the engine printed none (non-IP packet) -> None."""
    if not text:
        return None
    if _ADDRESS_CHARS.fullmatch(text) is None:
        raise UnparsableLine(f"bad address {shown(text)}")
    try:
        return _address(text)
    except ValueError:
        raise UnparsableLine(f"bad address {shown(text)}") from None


def parse_port(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 5 or int(text) > 65535:
        raise UnparsableLine(f"bad port {shown(text)}")
    return int(text)


PORT_PROTOCOLS = frozenset({"TCP", "UDP"})  # Snort prints ports for these only


@lru_cache(maxsize=8192)  # the same endpoints recur in alert streams; errors are not cached
def split_endpoint(text: str, with_port: bool) -> tuple[IPAddress | None, int | None]:
    """One side of ``src -> dst`` as Snort prints it.

    Snort 2 and Snort 3 both print ``%s:%d`` for TCP/UDP, also for IPv6, so
    ``2001:db8::1:80`` is address ``2001:db8::1`` port 80: the port is always after the
    last colon, and ``with_port`` (the protocol is TCP or UDP) says whether there is one.
    ``[2001:db8::1]:80`` (Suricata, some forks) is accepted too.
    """
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise UnparsableLine(f"bad address {shown(text)}")
        address = parse_address(text[1:close])
        rest = text[close + 1 :]
        if not rest:
            return address, None
        if rest[0] != ":":
            raise UnparsableLine(f"bad address {shown(text)}")
        return address, parse_port(rest[1:])
    if with_port:
        host, colon, port = text.rpartition(":")
        if not colon:
            raise UnparsableLine(f"no port in {shown(text)}")
        return parse_address(host), parse_port(port)
    return parse_address(text), None


# ----------------------------------------------------------------------------------------
# timestamps


@dataclass(frozen=True, eq=False)  # identity hash: cheap as a cache key
class Clock:
    """What a parser needs to place an engine's timestamp in time.

    ``tz``: the zone the engine printed local times in (Snort prints the sensor's local
    time unless run with -U); None = this host's local zone. ``now``: the reference for
    timestamps without a year (None = the current time).
    """

    tz: tzinfo | None = None
    now: datetime | None = None

    def current(self) -> datetime:
        if self.now is not None:
            return self.now if self.now.tzinfo else self.now.replace(tzinfo=self.zone_for(self.now))
        return datetime.now(timezone.utc)

    def zone_for(self, naive: datetime) -> tzinfo:
        if self.tz is not None:
            return self.tz
        # the host's zone, with the offset that applies on that date (DST)
        return naive.astimezone().tzinfo or timezone.utc


LOCAL = Clock()

# Snort's ts_print: mm/dd-HH:MM:SS.uuuuuu, with -y a year in front (Snort 3: yy/mm/dd)
# or at the end (Snort 2: mm/dd/yy) of the date.
SNORT_TIME = r"\d\d/\d\d(?:/\d\d)?-\d\d:\d\d:\d\d(?:\.\d{1,6})?"
_SNORT_TIME = re.compile(r"(\d\d)/(\d\d)(?:/(\d\d))?-(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?", re.ASCII)


def _localized(naive: datetime, clock: Clock) -> datetime:
    if clock.tz is not None:
        return naive.replace(tzinfo=clock.tz)
    return naive.astimezone()  # this host's zone, with the offset of that date (DST)


def _with_inferred_year(month: int, day: int, rest: tuple[int, int, int, int], clock: Clock) -> datetime:
    """A date printed without a year: the latest year that does not put it in the future."""
    now = clock.current()
    years = [now.year, now.year - 1, now.year - 2, now.year - 3, now.year - 4]  # Feb 29 may need 4 back
    if month == 1 and now.month == 12:  # New Year in the engine's zone before it is here
        years.insert(0, now.year + 1)
    latest = now + timedelta(days=1)  # a day of slack for clock skew and zones
    for year in years:
        try:
            stamp = _localized(datetime(year, month, day, *rest), clock)
        except ValueError:  # Feb 29 in a non-leap year, or a bad date altogether
            continue
        if stamp <= latest:
            return stamp
    raise UnparsableLine(f"bad date {month:02d}/{day:02d}")


def parse_snort_time(text: str, engine: str | None, clock: Clock = LOCAL) -> datetime:
    """Snort's timestamp as printed in alert_fast, alert_csv and alert_json."""
    last = _LAST_TIME[0]
    if last[0] == text and last[1] == engine and last[2] is clock:  # one packet, several alerts
        return last[3]
    whole, dot, fraction = text.strip().partition(".")
    key = (whole, engine, clock)
    second = _SECONDS.get(key)
    if second is None:
        second = _snort_second(whole, engine, clock)
        if len(_SECONDS) >= 1024:  # alerts come in time order: old seconds are not asked again
            _SECONDS.clear()
        _SECONDS[key] = second
    if not dot:
        stamp = second
    elif fraction.isascii() and fraction.isdigit() and len(fraction) <= 6:
        stamp = second.replace(microsecond=int(fraction) * _FRACTION_SCALE[len(fraction)])
    else:
        raise UnparsableLine(f"bad timestamp {shown(text)}")
    _LAST_TIME[0] = (text, engine, clock, stamp)
    return stamp


_LAST_TIME: list = [("", None, None, None)]  # the last timestamp read, whole: (text, engine, clock, datetime)


_SECONDS: dict[tuple[str, str | None, Clock], datetime] = {}
_FRACTION_SCALE = (0, 100000, 10000, 1000, 100, 10, 1)


def _snort_second(text: str, engine: str | None, clock: Clock) -> datetime:
    match = _SNORT_TIME.fullmatch(text)
    if match is None or match.group(7) is not None:
        raise UnparsableLine(f"bad timestamp {shown(text)}")
    a, b, c, hh, mm, ss, _ = match.groups()
    rest = (int(hh), int(mm), int(ss), 0)
    try:
        if c is None:
            return _with_inferred_year(int(a), int(b), rest, clock)
        # Snort 3 -y prints yy/mm/dd, Snort 2 -y mm/dd/yy; when the engine is not known,
        # take whichever reading is a valid date (Snort 3 first).
        orders = [(c, a, b), (a, b, c)] if engine == "snort2" else [(a, b, c), (c, a, b)]
        for yy, month, day in orders:
            try:
                return _localized(datetime(2000 + int(yy), int(month), int(day), *rest), clock)
            except ValueError:
                continue
    except (ValueError, OverflowError):
        pass
    raise UnparsableLine(f"bad timestamp {shown(text)}")


def as_int(value: object, name: str) -> int:
    """A numeric field from JSON (int) or CSV/text (digits)."""
    if isinstance(value, bool):
        raise UnparsableLine(f"bad {name} {shown(str(value))}")
    if isinstance(value, int):
        if value < 0 or value > 0xFFFFFFFF:
            raise UnparsableLine(f"bad {name} {value}")
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= 10:
            return as_int(int(text), name)
    raise UnparsableLine(f"bad {name} {shown(str(value))}")


def unquote(text: str) -> str:
    """Snort 3 keeps a rule's msg in its double quotes; drop one pair."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1]
    return text


def strip_line(line: str) -> str:
    if len(line) > MAX_LINE_CHARS:
        raise UnparsableLine(f"line too long ({len(line)} characters)")
    return line.rstrip("\r\n")


_ISO_TIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?\s*(Z|[+-]\d\d(?::?\d\d)?)?",
    re.ASCII,
)


def parse_iso_time(text: str, clock: Clock = LOCAL) -> datetime:
    """RFC 3339 / ISO 8601 as rsyslog and Suricata write it (``+0100`` and ``Z`` included)."""
    match = _ISO_TIME.fullmatch(text)
    if match is None:
        raise UnparsableLine(f"bad timestamp {shown(text)}")
    year, month, day, hh, mm, ss, frac, zone = match.groups()
    try:
        naive = datetime(
            int(year), int(month), int(day), int(hh), int(mm), int(ss), int((frac or "0")[:6].ljust(6, "0"))
        )
        if zone is None:
            return _localized(naive, clock)
        if zone == "Z":
            return naive.replace(tzinfo=timezone.utc)
        digits = zone[1:].replace(":", "").ljust(4, "0")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        return naive.replace(tzinfo=timezone(-offset if zone[0] == "-" else offset))
    except ValueError:
        raise UnparsableLine(f"bad timestamp {shown(text)}") from None


_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1
    )
}
BSD_TIME = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d:\d\d"


def parse_bsd_time(text: str, clock: Clock = LOCAL) -> datetime:
    """RFC 3164's ``Nov 22 03:35:41`` (no year, local time)."""
    try:
        month = _MONTHS[text[:3]]
        day = int(text[4:6])
        hh, mm, ss = (int(part) for part in text[7:15].split(":"))
    except (KeyError, ValueError):
        raise UnparsableLine(f"bad timestamp {shown(text)}") from None
    return _with_inferred_year(month, day, (hh, mm, ss, 0), clock)
