"""The tokeniser of RouterOS's CLI language: words, quoted strings with their escapes and
``$variables``, brackets, braces, parentheses and the operators inside parentheses.

Pure; errors are ``CliSyntaxError`` with RouterOS's 1-based column (the bad character).
"""

from __future__ import annotations

from dataclasses import dataclass

from responder.sim.script.syntax import CliSyntaxError, Literal, Value, VarRef


@dataclass(frozen=True)
class Token:
    kind: str  # WORD STRING VAR EQ NEQ TILDE NOT OP LBR RBR LBRACE RBRACE LPAR RPAR SEMI NL EOF
    text: str
    line: int
    column: int
    spaced: bool  # whitespace (or line start) right before it
    parts: tuple[Value, ...] = ()  # STRING: literal pieces and $variables


_STOP = set(' \t\r\n;[]{}()"=$!~')
_EXPRESSION_STOP = set("<>&|")  # operators only inside ( ), elsewhere ordinary characters
_ESCAPES = {'"': '"', "\\": "\\", "$": "$", "?": "?", "n": "\n", "r": "\r", "t": "\t", "_": " "}
_HEX = "0123456789abcdefABCDEF"
_SINGLE = {";": "SEMI", "[": "LBR", "]": "RBR", "{": "LBRACE", "}": "RBRACE", "=": "EQ", "~": "TILDE"}


def is_name_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_-"


MAX_NESTING = 64  # { [ ( inside each other; deeper is refused (the simulator's bound: its parser recurses)


def tokenise(text: str, *, script: bool = False) -> list[Token]:
    """Tokens of ``text``. Exec lines (script=False) may not span lines."""
    tokens: list[Token] = []
    i, line, line_start = 0, 1, 0
    spaced = True
    parens = 0  # how deep inside ( ): there < > <= >= && || are operators
    nesting = 0

    def col(pos: int) -> int:
        return pos - line_start + 1

    while i < len(text):
        ch = text[i]
        if ch in " \t\r":
            i += 1
            spaced = True
            continue
        if ch == "\\" and script and text[i + 1 : i + 2] == "\n":  # line continuation
            i += 2
            line, line_start, spaced = line + 1, i, True
            continue
        if ch == "\n":
            if not script:
                raise CliSyntaxError("syntax", "syntax error", col(i), line)
            tokens.append(Token("NL", "\n", line, col(i), spaced))
            i += 1
            line, line_start, spaced = line + 1, i, True
            continue
        if ch == "#" and script and (not tokens or tokens[-1].kind in ("NL", "SEMI", "LBRACE")):
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        start = i
        if ch in "{[(":
            nesting += 1
            if nesting > MAX_NESTING:
                raise CliSyntaxError("syntax", "syntax error", col(i), line)
        elif ch in "}])":
            nesting = max(0, nesting - 1)
        if ch in _SINGLE:
            tokens.append(Token(_SINGLE[ch], ch, line, col(i), spaced))
            i += 1
        elif ch in "()":
            parens = parens + 1 if ch == "(" else max(0, parens - 1)
            tokens.append(Token("LPAR" if ch == "(" else "RPAR", ch, line, col(i), spaced))
            i += 1
        elif parens and ch in _EXPRESSION_STOP:
            pair = text[i : i + 2]
            op = pair if pair in ("<=", ">=", "&&", "||") else ch
            if op in ("&", "|"):
                raise CliSyntaxError("syntax", "syntax error", col(i), line)
            tokens.append(Token("OP", op, line, col(i), spaced))
            i += len(op)
        elif ch == "!":
            if text[i + 1 : i + 2] == "=":
                tokens.append(Token("NEQ", "!=", line, col(i), spaced))
                i += 2
            else:
                tokens.append(Token("NOT", "!", line, col(i), spaced))
                i += 1
        elif ch == "$":
            j = i + 1
            while j < len(text) and is_name_char(text[j]):
                j += 1
            if j == i + 1:
                raise CliSyntaxError("syntax", "syntax error", col(i), line)
            tokens.append(Token("VAR", text[i + 1 : j], line, col(i), spaced))
            i = j
        elif ch == '"':
            i, parts = _read_string(text, i, line, col)
            tokens.append(Token("STRING", text[start:i], line, col(start), spaced, parts))
        else:
            stops = _STOP | _EXPRESSION_STOP if parens else _STOP
            while i < len(text) and text[i] not in stops:
                i += 1
            tokens.append(Token("WORD", text[start:i], line, col(start), spaced))
        spaced = False
    tokens.append(Token("EOF", "", line, col(len(text)) if text else 1, spaced))
    return tokens


def _read_string(text: str, start: int, line: int, col) -> tuple[int, tuple[Value, ...]]:
    """Read a quoted string from ``text[start] == '"'``; returns the end index and its parts."""
    parts: list[Value] = []
    buf: list[str] = []
    i = start + 1
    while True:
        if i >= len(text) or text[i] == "\n":
            raise CliSyntaxError("syntax", "syntax error", col(start), line)
        ch = text[i]
        if ch == '"':
            i += 1
            break
        if ch == "\\":
            nxt = text[i + 1 : i + 2]
            if nxt in _ESCAPES and nxt:
                buf.append(_ESCAPES[nxt])
                i += 2
                continue
            pair = text[i + 1 : i + 3]
            if len(pair) == 2 and all(c in _HEX for c in pair):
                buf.append(chr(int(pair, 16)))
                i += 3
                continue
            raise CliSyntaxError("syntax", "syntax error", col(i), line)
        if ch == "$":
            j = i + 1
            while j < len(text) and is_name_char(text[j]):
                j += 1
            if j > i + 1:
                if buf:
                    parts.append(Literal("".join(buf)))
                    buf = []
                parts.append(VarRef(text[i + 1 : j], col(i)))
                i = j
                continue
        buf.append(ch)
        i += 1
    if buf or not parts:
        parts.append(Literal("".join(buf)))
    return i, tuple(parts)


def open_brackets(text: str) -> str:
    """The ``{``, ``[``, ``(`` and ``"`` still open at the end of ``text`` (outside comments), and
    ``\\`` when it ends in a line continuation: the terminal keeps reading lines while this is not
    empty, and shows it as its continuation prompt (``{(\\... ``), as RouterOS's console does."""
    stack: list[str] = []
    i, in_string, line_start = 0, False, True
    while i < len(text):
        ch = text[i]
        if in_string:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_string = False
                stack.pop()
        elif ch == "#" and line_start:
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        elif ch == '"':
            in_string = True
            stack.append('"')
        elif ch in "{[(":
            stack.append(ch)
        elif ch in "}])" and stack and stack[-1] == {"}": "{", "]": "[", ")": "("}[ch]:
            stack.pop()
        line_start = ch in "\n{;" or (line_start and ch in " \t")
        i += 1
    if text.rstrip(" \t").endswith("\\") and not in_string:
        stack.append("\\")
    return "".join(stack)
