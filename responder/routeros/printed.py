"""Any RouterOS table or settings menu as it prints (pure; no I/O).

``print terse`` gives one line per item: its number, flag letters, then ``name=value`` pairs whose
values are not quoted even when they hold spaces (ROUTEROS.md section 2), so a value runs to the next
`` name=``. A settings menu (``/tool sniffer print``) prints ``name: value`` lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from responder.routeros.replies import ReplyParseError, classify

_PAIR_RE = re.compile(r"(?:^|(?<=\s))(\.id|[a-z][a-z0-9-]*)=")
_PREFIX_RE = re.compile(r"^\s*(?P<index>\d+)?\s*(?P<flags>[A-Z*]*)\s*$")
_PROPERTY_RE = re.compile(r"^\s*([a-z][a-z0-9-]*):\s?(.*?)\s*$")


@dataclass(frozen=True)
class Row:
    index: int | None  # the item number the router showed (table order)
    flags: str  # "X" disabled, "D" dynamic, ...
    fields: Mapping[str, str] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default)

    @property
    def disabled(self) -> bool:
        return "X" in self.flags or self.fields.get("disabled", "") in ("yes", "true")


def _strip(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def parse_terse(output: str) -> list[Row]:
    """The items of ``print terse`` in the router's order; an error reply raises ReplyParseError."""
    reply = classify(output)
    if not reply.ok:
        raise ReplyParseError(f"expected print terse output, got: {reply.text}")
    rows = []
    for line in output.splitlines():
        line = line.rstrip("\r")
        if not line.strip() or line.lstrip().startswith(("Flags:", "Columns:", "#", ";;;")):
            continue
        matches = list(_PAIR_RE.finditer(line))
        if not matches:
            continue
        prefix = _PREFIX_RE.match(line[: matches[0].start()])
        if not prefix:
            continue
        fields = {}
        for i, match in enumerate(matches):
            end = matches[i + 1].start() if i + 1 < len(matches) else len(line)
            fields[match.group(1)] = _strip(line[match.end() : end])
        index = int(prefix["index"]) if prefix["index"] is not None else None
        rows.append(Row(index, prefix["flags"] or "", fields))
    return rows


def parse_properties(output: str) -> Row:
    """A settings menu's ``print``: ``name: value`` lines as one Row."""
    reply = classify(output)
    if not reply.ok:
        raise ReplyParseError(f"expected name: value lines, got: {reply.text}")
    fields = {}
    for line in output.splitlines():
        match = _PROPERTY_RE.match(line.rstrip("\r"))
        if match:
            fields[match.group(1)] = _strip(match.group(2))
    return Row(None, "", fields)


def router_flavour(resource_output: str) -> str:
    """ "v6" or "v7" from ``/system resource print`` (``version: 6.49.17 (long-term)``)."""
    version = parse_properties(resource_output).get("version")
    major = version.split(".", 1)[0]
    if major == "6":
        return "v6"
    if major.isdigit() and int(major) >= 7:
        return "v7"
    raise ReplyParseError(f"no RouterOS version in the router's reply: {resource_output.strip()[:200]!r}")
