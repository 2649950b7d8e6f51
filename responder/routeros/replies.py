"""Read what RouterOS prints back (pure; no I/O).

RouterOS prints errors on stdout and usually exits 0, so a reply is classified by its text.
Prefixes are matched, never whole strings: v7 appends ``(line 1 column N)`` or
``(<path>; line N)`` to many messages.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from responder.errors import RouterCommandError
from responder.routeros.duration import DurationError, parse_duration

ListAddress = ipaddress.IPv4Address | ipaddress.IPv6Address | ipaddress.IPv4Network | ipaddress.IPv6Network | str


class ReplyParseError(ValueError):
    """Router output that does not have the shape we asked for."""


@dataclass(frozen=True)
class Reply:
    ok: bool
    kind: str  # ok | duplicate | permission | bad-command | syntax | expected-end | out-of-range | no-such-item | other
    text: str  # the error line, or the whole (stripped) output when ok


@dataclass(frozen=True)
class ListEntry:
    id: str | None  # "*1A" from as-value, the item number from terse, None if the router showed none
    list: str
    address: ListAddress  # normalised: a host as an ipaddress address, a prefix as a network, else the text
    timeout_s: float | None  # remaining seconds; None for a static entry
    dynamic: bool
    disabled: bool
    comment: str = ""


# (prefix, kind, what to fix). Order matters: the specific "failure:" before the generic one.
_ERRORS = (
    ("failure: already have such entry", "duplicate", "the entry is already there"),
    (
        "not enough permissions",
        "permission",
        "the user needs a group with ssh,read,write (see `snort-bridge provision`)",
    ),
    (
        "bad command name",
        "bad-command",
        "the router does not know this command; check its RouterOS version, and in script mode the script name",
    ),
    ("expected end of command", "expected-end", "the router did not accept an argument; check its RouterOS version"),
    ("syntax error", "syntax", "the router could not parse the command; please report it with the command"),
    (
        "no such item",
        "no-such-item",
        "the item is gone; in script mode check that /system script has the configured script",
    ),
    (
        "value of timeout is out of range",
        "out-of-range",
        "the timeout is longer than the router accepts (v7: at most 35w3d13h13m56s)",
    ),
    ("script error:", "other", "the router script failed; check it with /system script run on the router"),
    ("failure:", "other", "the router refused the command"),
    ("invalid value", "other", "the router refused a value"),
    ("input does not match", "other", "the router refused a value"),
    ("value of ", "other", "the router refused a value"),
)
_FIXES = {kind: fix for _, kind, fix in _ERRORS if kind != "other"}


def _error_line(line: str) -> tuple | None:
    lowered = line.strip().lower()
    for prefix, kind, _ in _ERRORS:
        if lowered.startswith(prefix):
            if prefix == "script error:":
                # `/system script run` reports the script's own failure behind this prefix
                inner = _error_line(line.strip()[len(prefix) :])
                if inner and inner[0] != "other":
                    return inner[0], line.strip()
            return kind, line.strip()
    return None


def classify(output: str) -> Reply:
    """Empty or data output is ok; the first line that starts like a RouterOS error decides the kind."""
    for line in output.splitlines():
        found = _error_line(line)
        if found:
            return Reply(False, found[0], found[1])
    return Reply(True, "ok", output.strip())


def command_error(router: str, reply: Reply, command: str = "") -> RouterCommandError:
    """The exception for an error reply: names the router, quotes the router, says what to fix."""
    fix = _FIXES.get(reply.kind, "unexpected reply from the router")
    message = f"{reply.text} -- {fix}"
    if command:
        message += f" (command: {command})"
    return RouterCommandError(router, message, kind=reply.kind, output=reply.text)


def normalise_address(text: str) -> ListAddress:
    """The router's spelling as a value comparable with ipaddress objects.

    ``1.2.3.4`` and ``1.2.3.4/32`` -> IPv4Address; ``2001:db8::1/128`` -> IPv6Address; a prefix ->
    the network with host bits cleared (the router clears them too); ranges and DNS names stay text.
    """
    text = text.strip()
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return text
    return network.network_address if network.prefixlen == network.max_prefixlen else network


_KEYS = ("list", "address", "creation-time", "timeout", "dynamic", "disabled", "comment", ".id")
_KEY_ALT = "|".join(re.escape(k) for k in _KEYS)
_TERSE_KEY_RE = re.compile(rf"(?:^|(?<=\s))({_KEY_ALT})=")
_AS_VALUE_KEY_RE = re.compile(rf"(?:^|;)({_KEY_ALT})=")
_TERSE_PREFIX_RE = re.compile(r"^\s*(?P<index>\d+)?\s*(?P<flags>[A-Z]*)\s*$")


def _pairs(text: str, key_re: re.Pattern[str], separator: str) -> list:
    """key=value pairs; a value runs to the next known key (values may hold spaces)."""
    matches = list(key_re.finditer(text))
    pairs = []
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        value = text[match.end() : end]
        if separator == " ":
            value = value.strip()
        pairs.append((match.group(1), value))
    return pairs


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("yes", "true")


def entry_from_fields(fields: dict, entry_id: str | None = None, flags: str = "") -> ListEntry | None:
    """An address-list entry from its properties (terse, as-value or an API row); None without list/address."""
    if "address" not in fields or "list" not in fields:
        return None
    timeout = None
    if fields.get("timeout"):
        try:
            timeout = parse_duration(fields["timeout"])
        except DurationError:
            timeout = None
    return ListEntry(
        id=fields.get(".id", entry_id),
        list=fields["list"].strip(),
        address=normalise_address(fields["address"]),
        timeout_s=timeout,
        dynamic="D" in flags or _flag(fields.get("dynamic")),
        disabled="X" in flags or _flag(fields.get("disabled")),
        comment=fields.get("comment", "").strip(),
    )


def entries_of_list(entries: Iterable[ListEntry], list_name: str) -> dict[ListAddress, ListEntry]:
    """The entries of ``list_name`` keyed by normalised address. A disabled static twin of a live
    dynamic entry must not hide it (ROUTEROS.md section 2)."""
    found: dict[ListAddress, ListEntry] = {}
    for entry in entries:
        if entry.list != list_name:
            continue
        held = found.get(entry.address)
        if held is None or (held.disabled and not entry.disabled):
            found[entry.address] = entry
    return found


def _parse_terse_line(line: str) -> ListEntry | None:
    first = _TERSE_KEY_RE.search(line)
    if not first:
        return None
    prefix = _TERSE_PREFIX_RE.match(line[: first.start()])
    if not prefix:
        return None
    return entry_from_fields(
        dict(_pairs(line[first.start() :], _TERSE_KEY_RE, " ")), prefix["index"], prefix["flags"] or ""
    )


def _parse_as_value(text: str) -> list:
    entries: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    for key, value in _pairs(text.strip(), _AS_VALUE_KEY_RE, ";"):
        if key == ".id" and fields:
            entries.append(fields)
            fields = {}
        fields[key] = value
    if fields:
        entries.append(fields)
    return [e for e in (entry_from_fields(f) for f in entries) if e is not None]


def parse_address_list(output: str, flavour_hint: str | None = None) -> list:
    """Entries from ``print terse`` (v6 with index and flags, v7) or ``:put [print as-value]`` output.

    Header lines and lines that are not entries are skipped; an error reply raises ReplyParseError.
    ``flavour_hint`` ("v6"/"v7") is accepted for symmetry; the format is recognised from the text.
    """
    reply = classify(output)
    if not reply.ok:
        raise ReplyParseError(f"expected address-list entries, got: {reply.text}")
    entries = []
    for line in output.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("Flags:", "Columns:", "#")):
            continue
        if stripped.startswith(".id=") or (";" in stripped and _AS_VALUE_KEY_RE.match(stripped)):
            entries.extend(_parse_as_value(stripped))
            continue
        entry = _parse_terse_line(line.rstrip("\r"))
        if entry is not None:
            entries.append(entry)
    return entries


_BATCH_FAILED_RE = re.compile(r"^\s*tzsp-ips-failed (\d+)\s*$")
_BATCH_DONE_RE = re.compile(r"^\s*tzsp-ips-done\s*$", re.MULTILINE)


def batch_outcomes(output: str, indices: Iterable[int]) -> dict[int, bool | None]:
    """What a line of commands.render_batches said about each of ``indices``: False (refused; the
    router does not say why), True (the line reached its end and this one did not fail) or None
    (no word: the line stopped before its end, or the router could not parse it). A mark for an
    index not asked about is ignored."""
    outcomes: dict[int, bool | None] = {index: None for index in indices}
    for line in output.splitlines():
        failed = _BATCH_FAILED_RE.match(line)
        if failed and int(failed[1]) in outcomes:
            outcomes[int(failed[1])] = False
    if _BATCH_DONE_RE.search(output):
        outcomes = {index: outcome is not False for index, outcome in outcomes.items()}
    return outcomes


_LOG_LINE_RE = re.compile(
    r"^\s*(?:(?P<date>[a-z]{3}/\d\d(?:/\d{4})?|\d{4}-\d\d-\d\d) )?(?P<time>\d\d:\d\d:\d\d) "
    r"(?P<topics>[a-z0-9-]+(?:,[a-z0-9-]+)*) (?P<message>.+?)\s*$"
)


def parse_log_line(line: str) -> tuple[str, str, str] | None:
    """(time, topics, message) of one ``/log print`` line -- ``[date ]hh:mm:ss topics message``, the
    date only on entries from before today (manual, "Log") -- or None for anything else. The time
    is the clock alone, so an entry keeps its time when the date starts being shown at midnight."""
    match = _LOG_LINE_RE.match(line)
    if not match:
        return None
    return match["time"], match["topics"], match["message"]


_UPTIME_RE = re.compile(r"^\s*uptime:\s*(\S+)\s*$", re.MULTILINE)


def parse_uptime(output: str) -> float:
    """Seconds of uptime from ``/system resource print`` (v7 ``1w2d3h4m5s``, v6 ``1w2d03:04:05``)."""
    match = _UPTIME_RE.search(output)
    candidate = match.group(1) if match else output.strip()
    try:
        return parse_duration(candidate)
    except DurationError:
        raise ReplyParseError(f"no uptime in the router's reply: {output.strip()[:200]!r}") from None
