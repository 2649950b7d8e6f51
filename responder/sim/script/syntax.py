"""What a parsed RouterOS line or script is made of: statements, values, conditions, and the
parse error RouterOS prints. Frozen dataclasses; the parser builds them, the interpreter runs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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


# ----------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Literal:
    text: str
    bare: bool = field(
        default=False, compare=False
    )  # an unquoted word: ``5`` is a number and ``true`` a boolean, ``"5"`` text


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


@dataclass(frozen=True)
class Block:
    """``{ ... }``: statements run in a scope of their own (``do={...}``, ``on-error={...}``)."""

    statements: tuple[Statement, ...]


@dataclass(frozen=True)
class Operation:
    """An operator in ``( ... )``: ``=``, ``!=``, ``<``, ``>``, ``<=``, ``>=``, ``~``, ``&&``,
    ``||``, ``!`` (one operand), ``.`` (concatenation), ``+``, ``-``."""

    op: str
    operands: tuple[Value, ...]


Value = Literal | VarRef | Subst | Concat | Block | Operation


# ----------------------------------------------------------------------------- conditions


@dataclass(frozen=True)
class Condition:
    prop: str
    op: str  # "=", "!=", "~" or "" (bare property: true when yes)
    value: Value | None
    negate: bool = False


@dataclass(frozen=True)
class AnyOf:
    """``a=1 or b=2`` in ``where``: each alternative is a tuple of conditions that all hold."""

    alternatives: tuple[tuple[ConditionNode, ...], ...]
    negate: bool = False


ConditionNode = Condition | AnyOf


# ----------------------------------------------------------------------------- statements


@dataclass(frozen=True)
class MenuCommand:
    menu: tuple[str, ...]
    verb: str
    args: tuple[tuple[str, Value], ...] = ()
    flags: frozenset[str] = frozenset()
    positionals: tuple[Value, ...] = ()
    conditions: tuple[ConditionNode, ...] = ()
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


@dataclass(frozen=True)
class Builtin:
    """A ``:command`` other than the variable ones: ``:do``, ``:if``, ``:foreach``, ``:for``,
    ``:len``, ``:pick``, ``:typeof``, ``:tostr``, ``:log``, ``:error``, ``:nothing``. ``args``
    are the named arguments (``do=``, ``on-error=``, ``in=``...), ``operands`` the unnamed ones."""

    name: str
    operands: tuple[Value, ...] = ()
    args: tuple[tuple[str, Value], ...] = ()
    line: int = 1
    column: int = 1

    def arg(self, key: str) -> Value | None:
        for name, value in self.args:
            if name == key:
                return value
        return None


@dataclass(frozen=True)
class BlockStatement:
    """A bare ``{ ... }`` on a line of its own: its ``:local`` variables end with it."""

    block: Block


Statement = MenuCommand | VarCommand | Put | ChangeMenu | Builtin | BlockStatement
