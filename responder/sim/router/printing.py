"""How RouterOS v6 and v7 lay out ``print`` output (ROUTEROS.md §1-§2). Pure text functions.

A printed item is a Record: its ``#`` number, flag letters, optional comment and ordered
fields. Lines are returned without line ends; the SSH side joins them with CRLF.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# v7 drops table columns that do not fit this width in exec mode (ROUTEROS.md §1, +Nw ignored).
V7_TABLE_WIDTH = 80
_DETAIL_WIDTH = 80
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


@dataclass(frozen=True)
class Field:
    name: str
    text: str
    quote: bool = False  # a string property: quoted in detail output when it has spaces


@dataclass(frozen=True)
class Record:
    index: int
    flags: str  # e.g. "D", "X", "XD" (letters in legend order)
    fields: tuple[Field, ...]
    comment: str | None = None

    def get(self, name: str) -> str:
        for f in self.fields:
            if f.name == name:
                return f.text
        return ""


def format_date(timestamp: float, flavour: str) -> str:
    """``2026-10-01 08:50:30`` (v7) or ``jun/14/2022 07:53:49`` (v6); the simulator's clock is UTC."""
    t = time.gmtime(timestamp)
    clock = f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    if flavour == "v6":
        return f"{_MONTHS[t.tm_mon - 1]}/{t.tm_mday:02d}/{t.tm_year} {clock}"
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d} {clock}"


def flags_header(flavour: str, legend: Sequence[tuple[str, str]], records: Sequence[Record]) -> list[str]:
    """v6 always names every flag; v7 names only the flags shown, in capitals."""
    if not legend:
        return []
    if flavour == "v6":
        return ["Flags: " + ", ".join(f"{letter} - {name}" for letter, name in legend) + " "]
    shown = {letter for r in records for letter in r.flags}
    present = [(letter, name) for letter, name in legend if letter in shown]
    if not present:
        return []
    return ["Flags: " + "; ".join(f"{letter} - {name.upper()}" for letter, name in present)]


def _index_prefixes(flavour: str, records: Sequence[Record], flag_width: int = 1) -> tuple[str, list[str]]:
    """The ``#`` and flag columns: header text and one prefix per record, all the same width."""
    index_width = max([len(str(r.index)) for r in records] + [1])
    flag_width = max([len(r.flags) for r in records] + [flag_width])
    if flavour == "v6":
        index_width = max(index_width, 2)
        header = "#".rjust(index_width) + " " + " " * flag_width + " "
        rows = [str(r.index).rjust(index_width) + " " + r.flags.ljust(flag_width) + " " for r in records]
    else:
        header = "#".ljust(index_width) + " " + " " * flag_width + " "
        rows = [str(r.index).ljust(index_width) + " " + r.flags.ljust(flag_width) + " " for r in records]
    return header, rows


def render_table(
    flavour: str, records: Sequence[Record], columns: Sequence[tuple[str, str]], legend: Sequence[tuple[str, str]]
) -> list[str]:
    """The plain ``print`` table. ``columns``: (TITLE, field name)."""
    header, prefixes = _index_prefixes(flavour, records)
    # v7 leaves out columns no record has a value for
    cols = [c for c in columns if flavour == "v6" or any(r.get(c[1]) for r in records)]
    widths = [max([len(title)] + [len(r.get(name)) for r in records]) for title, name in cols]
    if flavour == "v7":
        while len(cols) > 1 and len(header) + sum(widths) + 2 * (len(cols) - 1) > V7_TABLE_WIDTH:
            cols, widths = cols[:-1], widths[:-1]

    def row(values: Iterable[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    lines = flags_header(flavour, legend, records)
    if flavour == "v7":
        lines.append("Columns: " + ", ".join(title for title, _ in cols))
    lines.append(header + row(title for title, _ in cols))
    blank = " " * len(header)
    for record, prefix in zip(records, prefixes, strict=True):
        values = [record.get(name) for _, name in cols]
        if record.comment:
            if flavour == "v6":
                lines.append(prefix + ";;; " + record.comment)
                lines.append(blank + row(values))
                continue
            lines.append(";;; " + record.comment)
        lines.append(prefix + row(values))
    return lines


def render_terse(flavour: str, records: Sequence[Record]) -> list[str]:
    """One line per record, values unquoted even with spaces (ROUTEROS.md §2)."""
    lines = []
    for r in records:
        head = f"{r.index:>2} {r.flags or ' '} " if flavour == "v6" else f"{r.index:>2} {r.flags or ' '} "
        body = " ".join(f"{f.name}={f.text}" for f in _with_comment(r))
        lines.append(head + body + (" " if flavour == "v6" else ""))
    return lines


def _with_comment(record: Record) -> list[Field]:
    fields = list(record.fields)
    if record.comment:
        fields.insert(0, Field("comment", record.comment, True))
    return fields


def _detail_value(f: Field) -> str:
    if f.quote and (not f.text or any(c in f.text for c in ' ;"\\$')):
        escaped = f.text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
        return f'"{escaped}"'
    return f.text


def render_detail(flavour: str, records: Sequence[Record], legend: Sequence[tuple[str, str]]) -> list[str]:
    """``print detail``: records apart by a blank line; long records wrap with a trailing space."""
    lines = flags_header(flavour, legend, records)
    # the flag column is one narrower than the legend is long (ntc-templates' v6 filter print: `13 X  ;;;`)
    _, prefixes = _index_prefixes("v6", records, max(1, len(legend) - 1))
    for record, prefix in zip(records, prefixes, strict=True):
        indent = " " * len(prefix)
        current = prefix
        if record.comment:
            lines.append(prefix + ";;; " + record.comment)
            current = indent
        for f in record.fields:
            item = f"{f.name}={_detail_value(f)}"
            if current.strip() and len(current) + len(item) > _DETAIL_WIDTH:
                lines.append(current)  # already ends in the space RouterOS leaves before a wrap
                current = indent
            current += item + " "
        lines.append(current)
        lines.append("")
    return lines


def render_as_value(items: Sequence[dict[str, str]]) -> str:
    """``:put [print as-value]``: ``.id`` first then alphabetical, ``;``-joined, unescaped."""
    parts = []
    for item in items:
        keys = sorted(item, key=lambda k: (k != ".id", k))
        parts.extend(f"{k}={item[k]}" for k in keys)
    return ";".join(parts)


def render_properties(pairs: Sequence[tuple[str, str]]) -> list[str]:
    """Singleton menus (``/system resource print``): names right-aligned before ``: ``."""
    width = max((len(name) for name, _ in pairs), default=0)
    return [f"{name.rjust(width)}: {value}" for name, value in pairs]
