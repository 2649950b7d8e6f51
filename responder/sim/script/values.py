"""RouterOS script values as Python objects, and the operators of ``( ... )`` over them.

Strings are ``str``, numbers ``int``, booleans ``bool``, arrays ``list`` (``find`` returns a list
of ``*ID`` strings), nothing is ``None``; the router's tables add ``TimeValue`` and dicts
(``print as-value``). Pure functions (manual "Scripting": data types, operators).
"""

from __future__ import annotations

import re

from responder.sim.router import printing


class ValueError_(Exception):
    """An operator given values it cannot take (the interpreter prints the text)."""


MAX_TEXT = 1_000_000  # characters of one string value: the simulator's bound on a doubling loop


def joined(pieces: list[str]) -> str:
    """Concatenated text, refused past ``MAX_TEXT``."""
    if sum(map(len, pieces)) > MAX_TEXT:
        raise ValueError_(f"string too long (routeros-sim stops at {MAX_TEXT} characters)")
    return "".join(pieces)


def to_text(value: object) -> str:
    """How ``:put`` and string concatenation show a value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):
            return printing.render_as_value([{k: to_text(x) for k, x in v.items()} for v in value])
        return ";".join(to_text(v) for v in value)
    if isinstance(value, dict):
        return printing.render_as_value([{k: to_text(x) for k, x in value.items()}])
    return str(value)


def typed_word(text: str) -> object:
    """An unquoted word as a script value: digits are a number, ``true``/``false`` a boolean
    (only canonical forms, so that the text of a property value never changes: ``0123`` stays)."""
    if re.fullmatch(r"-?(0|[1-9][0-9]*)", text):
        return int(text)
    if text in ("true", "false"):
        return text == "true"
    return text


def to_bool(value: object) -> bool | None:
    """True/False for what ``:if`` may test; None for a value that is not a boolean."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes", "false", "no"):
        return value.lower() in ("true", "yes")
    return None


def to_number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        return int(value)
    return None


def type_of(value: object) -> str:
    """``:typeof``'s names."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "num"
    if isinstance(value, (list, dict)):
        return "array"
    if isinstance(value, str) and re.fullmatch(r"\*[0-9A-Fa-f]+", value):
        return "id"
    if type(value).__name__ == "TimeValue":
        return "time"
    return "str"


def length(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, (list, dict)):
        return len(value)
    return len(to_text(value))


def pick(value: object, start: object, end: object = None) -> object:
    """``:pick``: one element of an array (or a slice with an end), a substring of text."""
    first = to_number(start)
    last = to_number(end) if end is not None else None
    if first is None or (end is not None and last is None):
        raise ValueError_("invalid value for argument begin")
    if isinstance(value, list):
        if last is None:
            return value[first] if 0 <= first < len(value) else None
        return value[first:last]
    text = to_text(value)
    if last is None:
        last = first + 1
    piece = text[max(0, first) : last]
    return piece if piece or first < len(text) else None


def find_in(value: object, wanted: object, start: object = None) -> object:
    """``:find``: the index of ``wanted`` in text or an array, or nothing."""
    begin = to_number(start) if start is not None else 0
    if isinstance(value, list):
        for index in range(begin or 0, len(value)):
            if to_text(value[index]) == to_text(wanted):
                return index
        return None
    index = to_text(value).find(to_text(wanted), (begin or -1) + 1 if start is not None else 0)
    return index if index >= 0 else None


def _equal(left: object, right: object) -> bool:
    if isinstance(left, list) or isinstance(right, list):
        return to_text(left) == to_text(right)
    a, b = to_number(left), to_number(right)
    if a is not None and b is not None:
        return a == b
    ba, bb = to_bool(left), to_bool(right)
    if isinstance(left, bool) or isinstance(right, bool):
        return ba is not None and ba == bb
    if left is None or right is None:
        return to_text(left) == to_text(right)
    return to_text(left) == to_text(right)


def operate(op: str, operands: list[object]) -> object:
    """One operator of ``( ... )`` on evaluated operands."""
    if op == "!":
        truth = to_bool(operands[0])
        if truth is None:
            raise ValueError_("expected boolean value")
        return not truth
    left, right = operands
    if op == "=":
        return _equal(left, right)
    if op == "!=":
        return not _equal(left, right)
    if op == "~":
        try:
            return re.search(to_text(right), to_text(left)) is not None
        except re.error:
            raise ValueError_("invalid regular expression") from None
    if op == ".":
        return joined([to_text(left), to_text(right)])
    if op in ("&&", "||"):
        a, b = to_bool(left), to_bool(right)
        if a is None or b is None:
            raise ValueError_("expected boolean value")
        return (a and b) if op == "&&" else (a or b)
    a, b = to_number(left), to_number(right)
    if op in ("+", "-"):
        if a is None or b is None:
            raise ValueError_("expected numeric value")
        return a + b if op == "+" else a - b
    if a is not None and b is not None:
        pair: tuple = (a, b)
    else:
        pair = (to_text(left), to_text(right))
    return {"<": pair[0] < pair[1], ">": pair[0] > pair[1], "<=": pair[0] <= pair[1], ">=": pair[0] >= pair[1]}[op]
