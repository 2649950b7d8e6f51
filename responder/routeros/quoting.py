"""RouterOS string quoting (ROUTEROS.md section 1).

Inside ``"..."`` RouterOS knows the escapes ``\\" \\\\ \\$ \\? \\n \\r \\t \\_`` and ``\\XX`` (a byte in
hex). An unescaped ``$`` would interpolate a variable, so it is always escaped. Everything that is
not printable ASCII is written as ``\\XX`` per UTF-8 byte: the command stays pure ASCII and no
control character, newline or terminal escape ever reaches the router's parser.
"""

from __future__ import annotations

_ESCAPED = {'"': '\\"', "\\": "\\\\", "$": "\\$", "?": "\\?"}
_SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "$": "$", "?": "?", "n": "\n", "r": "\r", "t": "\t", "_": " "}
_HEX = "0123456789abcdefABCDEF"


class QuotingError(ValueError):
    """A quoted RouterOS string that is malformed."""


def quote_value(text: str) -> str:
    """``text`` as a double-quoted RouterOS string literal."""
    if not isinstance(text, str):
        raise TypeError(f"quote_value takes str, got {type(text).__name__}")
    out = ['"']
    for char in text:
        if char in _ESCAPED:
            out.append(_ESCAPED[char])
        elif " " <= char <= "~":
            out.append(char)
        else:
            out.extend(f"\\{byte:02X}" for byte in char.encode("utf-8"))
    out.append('"')
    return "".join(out)


def unquote_value(literal: str) -> str:
    """Inverse of quote_value for any well-formed RouterOS string literal (used to read values back)."""
    if len(literal) < 2 or literal[0] != '"' or literal[-1] != '"':
        raise QuotingError(f"not a quoted RouterOS string: {literal!r}")
    body = literal[1:-1]
    raw = bytearray()
    i = 0
    while i < len(body):
        char = body[i]
        if char == '"':
            raise QuotingError(f"unescaped quote at position {i + 1} in {literal!r}")
        if char != "\\":
            raw += char.encode("utf-8")
            i += 1
            continue
        pair = body[i + 1 : i + 3]
        if len(pair) == 2 and pair[0] in _HEX and pair[1] in _HEX:
            raw.append(int(pair, 16))
            i += 3
        elif pair[:1] in _SIMPLE_ESCAPES and pair[:1]:
            raw += _SIMPLE_ESCAPES[pair[0]].encode("utf-8")
            i += 2
        else:
            raise QuotingError(f"bad escape at position {i + 1} in {literal!r}")
    return raw.decode("utf-8", errors="replace")
