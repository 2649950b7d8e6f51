"""Tokeniser and parser for one RouterOS CLI line (exec) or a script source.

Grammar: ROUTEROS.md "Emulator spec". Parse errors carry RouterOS's text and 1-based column
(``bad command name X``: start of X; ``expected end of command``: the ``=`` of an unknown
argument, or the start of a stray word; ``syntax error``: the bad character). A line with an
error anywhere runs nothing. Pure functions; no router state is touched here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class CliSyntaxError(Exception):
    """A line the router refuses before running anything."""

    def __init__(self, kind: str, message: str, column: int, line: int = 1):
        self.kind = kind  # "syntax" | "bad-command" | "expected-end"
        self.message = message
        self.column = column
        self.line = line
        super().__init__(self.text)

    @property
    def text(self) -> str:
        return f"{self.message} (line {self.line} column {self.column})"


# ----------------------------------------------------------------------------- menus


@dataclass(frozen=True)
class VerbSpec:
    keys: frozenset[str] = frozenset()
    flags: frozenset[str] = frozenset()
    positional: int = 0  # item references / names that may follow the verb
    conditions: bool = False  # `find list=x`: key=value pairs are tests
    where: bool = False  # accepts `where cond...`
    v7_only: bool = False


@dataclass(frozen=True)
class MenuSpec:
    verbs: Mapping[str, VerbSpec]
    properties: frozenset[str]  # what `find`/`where` may test


_PRINT_FLAGS = frozenset({"terse", "detail", "brief", "count-only", "as-value", "without-paging"})


def _table_menu(
    properties: str,
    writable: str,
    extra_add: str = "",
    *,
    add: bool = True,
    v7_only_add: bool = False,
    extra_verbs: dict[str, VerbSpec] | None = None,
) -> MenuSpec:
    """The usual verbs of a RouterOS table (add/set/remove/print/find/get)."""
    props = frozenset(properties.split())
    keys = frozenset(writable.split())
    verbs: dict[str, VerbSpec] = {
        "set": VerbSpec(keys=keys | {"numbers"}, positional=1),
        "remove": VerbSpec(keys=frozenset({"numbers"}), positional=1),
        "print": VerbSpec(keys=frozenset({"proplist", "from"}), flags=_PRINT_FLAGS, where=True),
        "find": VerbSpec(conditions=True, where=True),
        "get": VerbSpec(keys=frozenset({"number", "value-name"}), positional=2),
    }
    if add:
        verbs["add"] = VerbSpec(keys=keys | frozenset(extra_add.split()), v7_only=v7_only_add)
    verbs.update(extra_verbs or {})
    return MenuSpec(verbs=verbs, properties=props | {".id"})


_ENABLE = {
    "enable": VerbSpec(keys=frozenset({"numbers"}), positional=1),
    "disable": VerbSpec(keys=frozenset({"numbers"}), positional=1),
}
_ADDRESS_LIST = _table_menu(
    "list address timeout comment disabled dynamic creation-time",
    "list address timeout comment disabled dynamic",
    extra_verbs=_ENABLE,
)
_SINGLETON_PRINT = VerbSpec(flags=frozenset({"without-paging", "as-value"}))
_FILTER_WRITABLE = (
    "chain action protocol connection-state tcp-flags src-address-list dst-address-list limit "
    "log log-prefix comment disabled"
)
_FILTER = _table_menu(_FILTER_WRITABLE, _FILTER_WRITABLE, "place-before", extra_verbs=_ENABLE)

MENUS: dict[tuple[str, ...], MenuSpec] = {
    ("ip", "firewall", "address-list"): _ADDRESS_LIST,
    ("ipv6", "firewall", "address-list"): _ADDRESS_LIST,
    ("ip", "firewall", "filter"): _FILTER,
    ("ipv6", "firewall", "filter"): _FILTER,
    ("system", "logging"): _table_menu(
        "topics action prefix disabled default", "topics action prefix disabled", extra_verbs=_ENABLE
    ),
    ("system", "logging", "action"): _table_menu(
        "name target remote remote-port bsd-syslog remote-log-format default",
        "name target remote remote-port bsd-syslog remote-log-format",
    ),
    ("system", "script"): _table_menu(
        "name owner source policy comment run-count dont-require-permissions",
        "name source policy comment owner dont-require-permissions",
        extra_verbs={"run": VerbSpec(keys=frozenset({"number"}), positional=1)},
    ),
    ("system", "resource"): MenuSpec(
        verbs={"print": _SINGLETON_PRINT, "get": VerbSpec(keys=frozenset({"value-name"}), positional=1)},
        properties=frozenset(),
    ),
    ("system", "identity"): MenuSpec(
        verbs={
            "print": _SINGLETON_PRINT,
            "get": VerbSpec(keys=frozenset({"value-name"}), positional=1),
            "set": VerbSpec(keys=frozenset({"name"})),
        },
        properties=frozenset(),
    ),
    ("user",): _table_menu(
        "name group address comment disabled last-logged-in",
        "name group password address comment disabled",
        extra_verbs=_ENABLE,
    ),
    ("user", "group"): _table_menu("name policy comment", "name policy comment"),
    ("user", "ssh-keys"): _table_menu(
        "user key-type bits comment key-owner",
        "user key comment",
        v7_only_add=True,
        extra_verbs={"import": VerbSpec(keys=frozenset({"user", "public-key-file"}))},
    ),
}


def children(menu: tuple[str, ...]) -> frozenset[str]:
    depth = len(menu)
    return frozenset(p[depth] for p in MENUS if len(p) > depth and p[:depth] == menu)


def verbs(menu: tuple[str, ...], flavour: str) -> Mapping[str, VerbSpec]:
    spec = MENUS.get(menu)
    if spec is None:
        return {}
    return {name: v for name, v in spec.verbs.items() if flavour == "v7" or not v.v7_only}


# ----------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class Literal:
    text: str


@dataclass(frozen=True)
class VarRef:
    name: str
    column: int


@dataclass(frozen=True)
class Subst:
    statement: Statement


@dataclass(frozen=True)
class Concat:
    """Adjacent pieces (``"$ip/32"``, ``$a$b``) joined as text."""

    parts: tuple[Value, ...]


Value = Literal | VarRef | Subst | Concat


@dataclass(frozen=True)
class Condition:
    prop: str
    op: str  # "=", "!=", "~" or "" (bare property: true when yes)
    value: Value | None
    negate: bool = False


@dataclass(frozen=True)
class MenuCommand:
    menu: tuple[str, ...]
    verb: str
    args: tuple[tuple[str, Value], ...] = ()
    flags: frozenset[str] = frozenset()
    positionals: tuple[Value, ...] = ()
    conditions: tuple[Condition, ...] = ()
    line: int = 1
    column: int = 1

    @property
    def path(self) -> str:
        return "/" + "/".join(self.menu + (self.verb,))

    def arg(self, key: str) -> Value | None:
        for name, value in self.args:
            if name == key:
                return value
        return None


@dataclass(frozen=True)
class VarCommand:
    """``:global NAME [value]``, ``:local NAME [value]``, ``:set NAME [value]``."""

    kind: str  # "global" | "local" | "set"
    name: str
    value: Value | None
    line: int = 1


@dataclass(frozen=True)
class Put:
    value: Value | None
    line: int = 1


@dataclass(frozen=True)
class ChangeMenu:
    """A bare path (``/ip firewall address-list``): later statements on the line are relative to it."""

    menu: tuple[str, ...]


Statement = MenuCommand | VarCommand | Put | ChangeMenu


# ----------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class Token:
    kind: str  # WORD STRING VAR EQ NEQ TILDE NOT LBR RBR SEMI NL EOF
    text: str
    line: int
    column: int
    spaced: bool  # whitespace (or line start) right before it
    parts: tuple[Value, ...] = ()  # STRING: literal pieces and $variables


_STOP = set(' \t\r\n;[]{}()"=$!~')
_ESCAPES = {'"': '"', "\\": "\\", "$": "$", "?": "?", "n": "\n", "r": "\r", "t": "\t", "_": " "}
_HEX = "0123456789abcdefABCDEF"


def _is_name_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_-"


def tokenise(text: str, *, script: bool = False) -> list[Token]:
    """Tokens of ``text``. Exec lines (script=False) may not span lines."""
    tokens: list[Token] = []
    i, line, line_start = 0, 1, 0
    spaced = True

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
        if ch == "#" and script and (not tokens or tokens[-1].kind in ("NL", "SEMI")):
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        start = i
        if ch in ";[]=~":
            kind = {";": "SEMI", "[": "LBR", "]": "RBR", "=": "EQ", "~": "TILDE"}[ch]
            tokens.append(Token(kind, ch, line, col(i), spaced))
            i += 1
        elif ch == "!":
            if text[i + 1 : i + 2] == "=":
                tokens.append(Token("NEQ", "!=", line, col(i), spaced))
                i += 2
            else:
                tokens.append(Token("NOT", "!", line, col(i), spaced))
                i += 1
        elif ch == "$":
            j = i + 1
            while j < len(text) and _is_name_char(text[j]):
                j += 1
            if j == i + 1:
                raise CliSyntaxError("syntax", "syntax error", col(i), line)
            tokens.append(Token("VAR", text[i + 1 : j], line, col(i), spaced))
            i = j
        elif ch == '"':
            i, parts = _read_string(text, i, line, col)
            tokens.append(Token("STRING", text[start:i], line, col(start), spaced, parts))
        elif ch in "{}()":
            raise CliSyntaxError("syntax", "syntax error", col(i), line)
        else:
            while i < len(text) and text[i] not in _STOP:
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
            while j < len(text) and _is_name_char(text[j]):
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


# ----------------------------------------------------------------------------- parser

_END = ("SEMI", "RBR", "EOF", "NL")
_VALUE_START = ("WORD", "STRING", "VAR", "LBR")


@dataclass
class _Parser:
    tokens: list[Token]
    flavour: str
    pos: int = 0
    cwd: tuple[str, ...] = ()
    depth: int = 0

    # -- helpers ----------------------------------------------------------------------------
    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def take(self) -> Token:
        tok = self.peek()
        self.pos += 1
        return tok

    @staticmethod
    def fail(kind: str, tok: Token, column: int | None = None) -> CliSyntaxError:
        message = {"syntax": "syntax error", "expected-end": "expected end of command"}.get(kind, kind)
        return CliSyntaxError(kind, message, tok.column if column is None else column, tok.line)

    # -- lines and statements ---------------------------------------------------------------
    def parse_all(self) -> tuple[Statement, ...]:
        statements: list[Statement] = []
        while True:
            tok = self.peek()
            if tok.kind == "EOF":
                break
            if tok.kind in ("SEMI", "NL"):
                self.take()
                continue
            if tok.kind == "RBR":
                raise self.fail("syntax", tok)
            statements.append(self.parse_statement())
            end = self.peek()
            if end.kind == "RBR":
                raise self.fail("syntax", end)
            if end.kind not in _END:
                raise self.fail("expected-end", end)
        return tuple(statements)

    def parse_statement(self) -> Statement:
        tok = self.peek()
        if tok.kind == "WORD" and tok.text.startswith(":"):
            return self.parse_builtin()
        if tok.kind != "WORD":
            raise self.fail("syntax", tok)
        return self.parse_menu_command()

    def parse_builtin(self) -> Statement:
        tok = self.take()
        name = tok.text[1:]
        if name in ("global", "local", "set"):
            var = self.peek()
            if var.kind != "WORD" or not all(_is_name_char(c) for c in var.text):
                raise self.fail("syntax", var)
            self.take()
            value = self.parse_value() if self.peek().kind in _VALUE_START else None
            return VarCommand(name, var.text, value, tok.line)
        if name == "put":
            value = self.parse_value() if self.peek().kind in _VALUE_START else None
            return Put(value, tok.line)
        raise CliSyntaxError("bad-command", f"bad command name {name}", tok.column + 1, tok.line)

    def parse_menu_command(self) -> Statement:
        menu = self.cwd
        verb: str | None = None
        first = self.peek()
        while verb is None and self.peek().kind == "WORD":
            tok = self.peek()
            if not tok.spaced and tok is not first:
                break
            text, base = tok.text, tok.column
            if text.startswith("/"):
                menu, text, base = (), text[1:], base + 1
            segments = text.split("/") if text else []
            if len(segments) > 1 and self.flavour == "v6":
                raise self.fail("syntax", tok, base + len(segments[0]))
            offset = 0
            for _index, segment in enumerate(segments):
                column = base + offset
                offset += len(segment) + 1
                if not segment:
                    continue
                if verb is not None:
                    raise CliSyntaxError("bad-command", f"bad command name {segment}", column, tok.line)
                if segment in children(menu):
                    menu = menu + (segment,)
                elif segment in verbs(menu, self.flavour):
                    verb = segment
                else:
                    raise CliSyntaxError("bad-command", f"bad command name {segment}", column, tok.line)
            self.take()
        if verb is None:
            if self.peek().kind not in _END:
                tok = self.peek()
                raise self.fail("expected-end" if tok.kind != "WORD" else "syntax", tok)
            if self.depth == 0:
                self.cwd = menu
            return ChangeMenu(menu)
        return self.parse_arguments(menu, verb, first)

    def parse_arguments(self, menu: tuple[str, ...], verb: str, first: Token) -> MenuCommand:
        spec = verbs(menu, self.flavour)[verb]
        properties = MENUS[menu].properties
        args: list[tuple[str, Value]] = []
        flags = set()
        positionals: list[Value] = []
        conditions: list[Condition] = []
        while self.peek().kind not in _END:
            tok = self.peek()
            nxt = self.peek(1)
            is_pair = tok.kind == "WORD" and nxt.kind in ("EQ", "NEQ", "TILDE") and not nxt.spaced
            if tok.kind == "WORD" and tok.text == "where" and spec.where:
                self.take()
                conditions.extend(self.parse_conditions(properties))
                break
            if is_pair and spec.conditions:
                conditions.append(self.parse_condition(properties))
            elif tok.kind == "NOT" and spec.conditions:
                conditions.append(self.parse_condition(properties))
            elif is_pair:
                if nxt.kind != "EQ" or tok.text not in spec.keys:
                    raise self.fail("expected-end", nxt)
                self.take()
                self.take()
                value = self.parse_adjacent_value(menu)
                if tok.text in ("numbers", "number"):
                    positionals.append(value)
                else:
                    args.append((tok.text, value))
            elif tok.kind == "WORD" and tok.text in spec.flags:
                self.take()
                flags.add(tok.text)
            elif tok.kind == "WORD" and spec.conditions and tok.text in properties:
                conditions.append(self.parse_condition(properties))
            elif tok.kind in _VALUE_START and len(positionals) < spec.positional:
                positionals.append(self.parse_value(menu))
            else:
                raise self.fail("expected-end", tok)
        return MenuCommand(
            menu, verb, tuple(args), frozenset(flags), tuple(positionals), tuple(conditions), first.line, first.column
        )

    def parse_conditions(self, properties: frozenset[str]) -> list[Condition]:
        out = []
        while self.peek().kind not in _END:
            tok = self.peek()
            if tok.kind == "WORD" and tok.text == "and" and out:
                self.take()
                continue
            out.append(self.parse_condition(properties))
        return out

    def parse_condition(self, properties: frozenset[str]) -> Condition:
        negate = False
        if self.peek().kind == "NOT":
            self.take()
            negate = True
        tok = self.peek()
        if tok.kind != "WORD":
            raise self.fail("syntax", tok)
        self.take()
        op_tok = self.peek()
        if op_tok.kind in ("EQ", "NEQ", "TILDE") and not op_tok.spaced:
            if tok.text not in properties:
                raise self.fail("expected-end", op_tok)
            self.take()
            return Condition(tok.text, op_tok.text, self.parse_adjacent_value(), negate)
        if tok.text not in properties:
            raise self.fail("expected-end", tok)
        return Condition(tok.text, "", None, negate)

    # -- values -----------------------------------------------------------------------------
    def parse_adjacent_value(self, menu: tuple[str, ...] | None = None) -> Value:
        """The value right after ``=``; ``key= x`` gives an empty value (x is a new token)."""
        tok = self.peek()
        if tok.spaced or (tok.kind not in _VALUE_START and tok.kind != "NOT"):  # tcp-flags=!ack,!rst
            return Literal("")
        return self.parse_value(menu)

    def parse_value(self, menu: tuple[str, ...] | None = None) -> Value:
        parts: list[Value] = [self.parse_atom(menu)]
        while self.peek().kind in ("WORD", "STRING", "VAR", "NOT") and not self.peek().spaced:
            parts.append(self.parse_atom(menu))
        return parts[0] if len(parts) == 1 else Concat(tuple(parts))

    def parse_atom(self, menu: tuple[str, ...] | None) -> Value:
        tok = self.take()
        if tok.kind == "WORD":
            return Literal(tok.text)
        if tok.kind == "NOT":  # inside a value, "!" is a negation the menu reads (``!ack``)
            return Literal("!")
        if tok.kind == "VAR":
            return VarRef(tok.text, tok.column)
        if tok.kind == "STRING":
            return tok.parts[0] if len(tok.parts) == 1 else Concat(tok.parts)
        if tok.kind == "LBR":
            saved_cwd = self.cwd
            self.cwd = menu if menu is not None else self.cwd
            self.depth += 1
            try:
                if self.peek().kind == "RBR":
                    raise self.fail("syntax", self.peek())
                statement = self.parse_statement()
            finally:
                self.depth -= 1
                self.cwd = saved_cwd
            end = self.peek()
            if end.kind != "RBR":
                raise self.fail("syntax" if end.kind in ("EOF", "SEMI", "NL") else "expected-end", end)
            self.take()
            return Subst(statement)
        raise self.fail("syntax", tok)


def parse_line(text: str, flavour: str = "v7") -> tuple[Statement, ...]:
    """Statements of one exec line; raises CliSyntaxError (a newline is refused)."""
    return _Parser(tokenise(text), flavour).parse_all()


def parse_script(source: str, flavour: str = "v7") -> tuple[Statement, ...]:
    """Statements of a script source: newlines separate statements, ``#`` starts a comment."""
    return _Parser(tokenise(source, script=True), flavour).parse_all()
