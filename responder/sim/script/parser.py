"""Parser for one RouterOS CLI line (exec) or a script source (manual "Scripting").

Grammar: ROUTEROS.md "Emulator spec" and docs/routeros-sim.md. Parse errors carry RouterOS's
text and 1-based column (``bad command name X``: start of X; ``expected end of command``: the
``=`` of an unknown argument, or the start of a stray word; ``syntax error``: the bad
character). A line with an error anywhere runs nothing. Pure functions; no router state is
touched here. The tokens are ``tokens``'s, the statements ``syntax``'s, the menus ``menus``'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from responder.sim.script.expressions import ExpressionParsing
from responder.sim.script.menus import MENUS, MenuSpec, VerbSpec, children, properties, verbs
from responder.sim.script.syntax import (
    AnyOf,
    Block,
    BlockStatement,
    Builtin,
    ChangeMenu,
    CliSyntaxError,
    Concat,
    Condition,
    ConditionNode,
    Literal,
    MenuCommand,
    Operation,
    Put,
    Statement,
    Subst,
    Value,
    VarCommand,
    VarRef,
)
from responder.sim.script.tokens import Token, is_name_char, open_brackets, tokenise

_END = ("SEMI", "RBR", "EOF", "NL", "RBRACE")
_VALUE_START = ("WORD", "STRING", "VAR", "LBR", "LBRACE", "LPAR")
# The ``:commands`` besides the variable ones: (least, most unnamed operands, named arguments).
# The first operand of foreach/for is the loop variable's name.
BUILTINS: dict[str, tuple[int, int, frozenset[str]]] = {
    "do": (1, 1, frozenset({"on-error", "while"})),
    "if": (1, 1, frozenset({"do", "else"})),
    "foreach": (1, 1, frozenset({"in", "do"})),
    "onerror": (1, 1, frozenset({"in", "do"})),  # v7.13+: :onerror e in={...} do={... $e ...}
    "for": (1, 1, frozenset({"from", "to", "step", "do"})),
    "while": (1, 1, frozenset({"do"})),
    "len": (1, 1, frozenset()),
    "pick": (2, 3, frozenset()),
    "find": (2, 3, frozenset()),
    "typeof": (1, 1, frozenset()),
    "tostr": (1, 1, frozenset()),
    "tonum": (1, 1, frozenset()),
    "log": (2, 2, frozenset()),
    "error": (1, 1, frozenset()),
    "nothing": (0, 0, frozenset()),
    "delay": (0, 1, frozenset()),
}
_LOOP_VARIABLE = frozenset({"foreach", "for", "onerror"})
_V7_ONLY = frozenset({"onerror"})


@dataclass
class _Parser(ExpressionParsing):
    tokens: list[Token]
    flavour: str
    pos: int = 0
    cwd: tuple[str, ...] = ()
    depth: int = 0  # inside [ ]: a bare path there does not change the line's menu

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
        statements = self.parse_statements(closing="EOF")
        return statements

    def parse_statements(self, closing: str) -> tuple[Statement, ...]:
        """Statements up to ``closing`` (EOF, or the RBRACE of a block, which is not taken)."""
        statements: list[Statement] = []
        while True:
            tok = self.peek()
            if tok.kind == closing:
                break
            if tok.kind == "EOF" or tok.kind in ("RBR", "RBRACE"):
                raise self.fail("syntax", tok)
            if tok.kind in ("SEMI", "NL"):
                self.take()
                continue
            statements.append(self.parse_statement())
            end = self.peek()
            if end.kind == closing or end.kind in ("SEMI", "NL"):
                continue
            if end.kind in ("RBR", "RBRACE", "EOF"):
                raise self.fail("syntax", end)
            raise self.fail("expected-end", end)
        return tuple(statements)

    def parse_statement(self) -> Statement:
        tok = self.peek()
        if tok.kind == "LBRACE":
            return BlockStatement(self.parse_block())
        if tok.kind == "WORD" and tok.text.startswith(":"):
            return self.parse_builtin()
        if tok.kind != "WORD":
            raise self.fail("syntax", tok)
        return self.parse_menu_command()

    def parse_block(self) -> Block:
        """``{ ... }``: its own menu directory, starting from the enclosing one."""
        self.take()
        saved_cwd, saved_depth = self.cwd, self.depth
        self.depth = 0
        try:
            statements = self.parse_statements(closing="RBRACE")
        finally:
            self.cwd, self.depth = saved_cwd, saved_depth
        self.take()
        return Block(statements)

    def parse_builtin(self) -> Statement:
        tok = self.take()
        name = tok.text[1:]
        if name in ("global", "local", "set"):
            var = self.peek()
            if var.kind != "WORD" or not all(is_name_char(c) for c in var.text):
                raise self.fail("syntax", var)
            self.take()
            value = self.parse_value() if self.peek().kind in _VALUE_START else None
            return VarCommand(name, var.text, value, tok.line)
        if name == "put":
            value = self.parse_value() if self.peek().kind in _VALUE_START else None
            return Put(value, tok.line)
        if name not in BUILTINS or (name in _V7_ONLY and self.flavour == "v6"):
            raise CliSyntaxError("bad-command", f"bad command name {name}", tok.column + 1, tok.line)
        least, most, keys = BUILTINS[name]
        operands: list[Value] = []
        args: list[tuple[str, Value]] = []
        while self.peek().kind not in _END:
            word, nxt = self.peek(), self.peek(1)
            if word.kind == "WORD" and nxt.kind == "EQ" and not nxt.spaced and word.text in keys:
                self.take()
                self.take()
                args.append((word.text, self.parse_adjacent_value()))
            elif word.kind == "WORD" and nxt.kind == "EQ" and not nxt.spaced:
                raise self.fail("expected-end", nxt)
            elif len(operands) >= most:
                raise self.fail("expected-end", word)
            elif name in _LOOP_VARIABLE and not operands:
                if word.kind != "WORD" or not all(is_name_char(c) for c in word.text):
                    raise self.fail("syntax", word)
                operands.append(Literal(self.take().text))
            elif word.kind in _VALUE_START:
                operands.append(self.parse_value())
            else:
                raise self.fail("syntax", word)
        if len(operands) < least:
            raise self.fail("syntax", self.peek())
        return Builtin(name, tuple(operands), tuple(args), tok.line, tok.column)

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
            for segment in segments:
                column = base + offset
                offset += len(segment) + 1
                if not segment:
                    continue
                if segment == ".." and verb is None:  # one menu up
                    menu = menu[:-1]
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
        props = properties(menu)
        args: list[tuple[str, Value]] = []
        flags = set()
        positionals: list[Value] = []
        conditions: list[ConditionNode] = []
        while self.peek().kind not in _END:
            tok = self.peek()
            nxt = self.peek(1)
            is_pair = tok.kind == "WORD" and nxt.kind in ("EQ", "NEQ", "TILDE") and not nxt.spaced
            if tok.kind == "WORD" and tok.text == "where" and spec.where:
                self.take()
                conditions.extend(self.parse_condition_and(props))
                if self.peek().kind not in _END:
                    raise self.fail("expected-end", self.peek())
                break
            if is_pair and spec.conditions:
                conditions.append(self.parse_condition(props))
            elif tok.kind == "NOT" and spec.conditions:
                conditions.append(self.parse_condition(props))
            elif is_pair:
                if nxt.kind != "EQ" or tok.text not in spec.keys:
                    raise self.fail("expected-end", nxt)
                self.take()
                self.take()
                if self.peek().kind == "LBRACE":  # a code block is no property value (source={...} is not emulated)
                    raise self.fail("syntax", self.peek())
                value = self.parse_adjacent_value(menu)
                if tok.text in ("numbers", "number"):
                    positionals.insert(0, value)
                else:
                    args.append((tok.text, value))
            elif tok.kind == "WORD" and tok.text in spec.flags:
                self.take()
                flags.add(tok.text)
            elif tok.kind == "WORD" and spec.conditions and tok.text in props:
                conditions.append(self.parse_condition(props))
            elif tok.kind in _VALUE_START and len(positionals) < spec.positional:
                positionals.append(self.parse_value(menu))
            else:
                raise self.fail("expected-end", tok)
        return MenuCommand(
            menu, verb, tuple(args), frozenset(flags), tuple(positionals), tuple(conditions), first.line, first.column
        )

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
        tok = self.peek()
        if tok.kind == "LBRACE":
            return self.parse_block()
        if tok.kind == "LPAR":
            return self.parse_expression()
        self.take()
        if tok.kind == "WORD":
            return Literal(tok.text, bare=True)
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


def parse_entry(text: str, flavour: str, cwd: tuple[str, ...]) -> tuple[tuple[Statement, ...], tuple[str, ...]]:
    """What a person typed at the terminal (maybe several lines, maybe ``#`` comments), in the
    menu ``cwd``: its statements and the menu the terminal is in afterwards."""
    parser = _Parser(tokenise(text, script=True), flavour, cwd=cwd)
    statements = parser.parse_all()
    return statements, parser.cwd


__all__ = [
    "BUILTINS",
    "MENUS",
    "AnyOf",
    "Block",
    "BlockStatement",
    "Builtin",
    "ChangeMenu",
    "CliSyntaxError",
    "Concat",
    "Condition",
    "ConditionNode",
    "Literal",
    "MenuCommand",
    "MenuSpec",
    "Operation",
    "Put",
    "Statement",
    "Subst",
    "Token",
    "Value",
    "VarCommand",
    "VarRef",
    "VerbSpec",
    "children",
    "open_brackets",
    "parse_entry",
    "parse_line",
    "parse_script",
    "tokenise",
    "verbs",
]
