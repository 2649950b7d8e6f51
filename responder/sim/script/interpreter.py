"""Run parsed CLI statements against a RouterState and produce what the router prints.

``Interpreter.run_line(user, line)`` is the whole behaviour of one SSH exec: parse errors
print one line and run nothing (exit status configurable, real routers vary); a runtime
error prints its text and stops the rest of the line (exit status 0). Output lines are
joined with CRLF. The caller holds no lock: the line runs under ``state.lock``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from responder.sim.router.state import RouterState, StateError
from responder.sim.router.tables import SshKeyTable, Table, table_for
from responder.sim.script.builtins import run_builtin
from responder.sim.script.errors import RuntimeCliError
from responder.sim.script.export import export
from responder.sim.script.parser import (
    Block,
    BlockStatement,
    Builtin,
    ChangeMenu,
    CliSyntaxError,
    Concat,
    Literal,
    MenuCommand,
    Operation,
    Put,
    Statement,
    Subst,
    Value,
    VarCommand,
    VarRef,
    parse_entry,
    parse_line,
    parse_script,
)
from responder.sim.script.reading import Reading
from responder.sim.script.singletons import SINGLETONS, run_singleton
from responder.sim.script.values import ValueError_, joined, operate, to_text, typed_word

_READ_VERBS = frozenset({"print", "find", "get"})
_MAX_SCRIPT_DEPTH = 8


@dataclass(frozen=True)
class ExecResult:
    lines: tuple[str, ...]
    exit_status: int
    error_kind: str | None = None  # None on success; "syntax", "duplicate", "permission", ...

    @property
    def output(self) -> str:
        """What goes to the SSH channel: CRLF line ends, nothing at all for no output."""
        return "".join(line + "\r\n" for line in self.lines)


@dataclass
class _Scope:
    """One running line or script: whose it is, what it may do, its variables and item numbers.

    ``frames``: the ``:local`` variables of each enclosing block, innermost last. ``declared``:
    the globals this line or script declared (a terminal session keeps them from line to line)."""

    user: str
    policies: frozenset
    out: list[str]
    frames: list[dict[str, object]] = field(default_factory=lambda: [{}])
    declared: set = field(default_factory=set)
    numbers: dict[tuple[str, ...], list[str]] = field(default_factory=dict)
    depth: int = 0
    turns: list[int] = field(default_factory=lambda: [0])  # loop turns so far, shared with scripts it runs

    def frame_of(self, name: str) -> dict[str, object] | None:
        for frame in reversed(self.frames):
            if name in frame:
                return frame
        return None


@dataclass
class Console:
    """What a terminal session keeps between entries: the menu it is in, the globals it
    declared, and the item numbers of its last ``print`` in each menu."""

    cwd: tuple[str, ...] = ()
    declared: set = field(default_factory=set)
    numbers: dict[tuple[str, ...], list[str]] = field(default_factory=dict)


class Interpreter(Reading):
    def __init__(self, state: RouterState, *, parse_error_exit: int = 0, send_log=None):
        self.state = state
        self.parse_error_exit = parse_error_exit
        self.send_log = send_log  # (host, port, datagram) -> None: remote logging, or None to drop it

    @property
    def flavour(self) -> str:
        return self.state.profile.flavour

    # -- entry points -------------------------------------------------------------------------
    def run_line(self, user: str, line: str, *, console: Console | None = None, script: bool = False) -> ExecResult:
        """One exec line; with a ``console``, what a person entered at the terminal (it may span
        lines and hold ``#`` comments; the console's menu, globals and item numbers carry over
        to the next entry); ``script``: a script source without a console."""
        try:
            if console is not None:
                statements, cwd = parse_entry(line, self.flavour, console.cwd)
                console.cwd = cwd
            else:
                statements = (parse_script if script else parse_line)(line, self.flavour)
        except CliSyntaxError as exc:
            return ExecResult((exc.text,), self.parse_error_exit, exc.kind)
        with self.state.lock:
            scope = _Scope(user=user, policies=self.state.policies_of(user), out=[])
            if console is not None:
                scope.declared, scope.numbers = console.declared, console.numbers
            try:
                self.run_statements(statements, scope)
            except RuntimeCliError as exc:
                scope.out.append(exc.text)
                return ExecResult(tuple(scope.out), 0, exc.kind)
        return ExecResult(tuple(scope.out), 0)

    # -- statements ---------------------------------------------------------------------------
    def run_statements(self, statements, scope: _Scope) -> object:
        result = None
        for statement in statements:
            result = self.execute(statement, scope, quiet=False)
        return result

    def run_block(self, block: Value | None, scope: _Scope, variables: dict[str, object] | None = None) -> object:
        """A ``{ ... }``: its ``:local`` variables (and ``variables``, a loop's) end with it."""
        if block is None:
            return None
        if not isinstance(block, Block):
            raise RuntimeCliError("expected command block", "syntax")
        scope.frames.append(dict(variables or {}))
        try:
            return self.run_statements(block.statements, scope)
        finally:
            scope.frames.pop()

    def execute(self, statement: Statement, scope: _Scope, *, quiet: bool) -> object:
        if isinstance(statement, ChangeMenu):
            return None
        if isinstance(statement, Put):
            value = self.evaluate(statement.value, scope) if statement.value is not None else None
            scope.out.extend(to_text(value).split("\n"))
            return None
        if isinstance(statement, VarCommand):
            return self.execute_var(statement, scope)
        if isinstance(statement, BlockStatement):
            return self.run_block(statement.block, scope)
        if isinstance(statement, Builtin):
            return run_builtin(self, statement, scope)
        return self.execute_command(statement, scope, quiet=quiet)

    def execute_var(self, statement: VarCommand, scope: _Scope) -> None:
        value = self.evaluate(statement.value, scope) if statement.value is not None else None
        name = statement.name
        if statement.kind == "global":
            scope.declared.add(name)
            frame = scope.frame_of(name)
            if frame is not None:
                del frame[name]
            if statement.value is not None:
                self.state.set_global(scope.user, name, value)
        elif statement.kind == "local":
            scope.frames[-1][name] = value
        else:
            frame = scope.frame_of(name)
            if frame is not None:
                frame[name] = value
            elif name in scope.declared:
                self.state.set_global(scope.user, name, value)
            else:
                scope.frames[-1][name] = value

    def evaluate(self, value: Value, scope: _Scope) -> object:
        if isinstance(value, Literal):
            return typed_word(value.text) if value.bare else value.text
        if isinstance(value, VarRef):
            frame = scope.frame_of(value.name)
            if frame is not None:
                return frame[value.name]
            if value.name in scope.declared:
                return self.state.get_global(scope.user, value.name)
            return None  # an undeclared variable is "nothing"
        if isinstance(value, Concat):
            return self.operate_call(joined, [[to_text(self.evaluate(part, scope)) for part in value.parts]])
        if isinstance(value, Subst):
            return self.execute(value.statement, scope, quiet=True)
        if isinstance(value, Operation):
            if value.op in ("&&", "||"):  # the right side runs only when it decides
                left = self.evaluate(value.operands[0], scope)
                if to_text(left) == ("false" if value.op == "&&" else "true"):
                    return value.op == "||"
                return self.operate(value.op, [left, self.evaluate(value.operands[1], scope)])
            return self.operate(value.op, [self.evaluate(v, scope) for v in value.operands])
        if isinstance(value, Block):
            return value
        raise TypeError(f"not a value: {value!r}")

    @staticmethod
    def operate(op: str, operands: list[object]) -> object:
        return Interpreter.operate_call(operate, [op, operands])

    @staticmethod
    def operate_call(function, arguments: list[object]) -> object:
        """A pure value function; its refusal becomes the line's runtime error."""
        try:
            return function(*arguments)
        except ValueError_ as exc:
            raise RuntimeCliError(str(exc), "other") from None

    # -- menu commands ------------------------------------------------------------------------
    def refuse(self, command: MenuCommand, text: str, kind: str) -> RuntimeCliError:
        """v7 names the command and line after the message (ROUTEROS.md §1)."""
        if self.flavour == "v7":
            text = f"{text} ({command.path}; line {command.line})"
        return RuntimeCliError(text, kind)

    def check_policy(self, command: MenuCommand, scope: _Scope, table: Table | None) -> None:
        if command.verb in _READ_VERBS or command.verb == "export":
            needed = frozenset({"read"}) | (
                frozenset({"sensitive"}) if "show-sensitive" in command.flags else frozenset()
            )
        elif command.menu == ("tool", "sniffer") and command.verb in ("start", "stop"):
            needed = frozenset({"sniff"})
        elif command.menu == ("system", "script") and command.verb == "run":
            needed = frozenset({"read"})
        else:
            needed = table.write_policies if table is not None else frozenset({"write"})
        if not needed <= scope.policies:
            raise self.refuse(command, "not enough permissions (9)", "permission")

    def execute_command(self, command: MenuCommand, scope: _Scope, *, quiet: bool) -> object:
        table = table_for(self.state, command.menu)
        self.check_policy(command, scope, table)
        args = {key: to_text(self.evaluate(value, scope)) for key, value in command.args}
        try:
            if command.verb == "export":
                return export(self, command, args, scope)
            if command.menu in SINGLETONS:
                return run_singleton(self, command, args, scope)
            if command.menu == ("system", "script") and command.verb == "run":
                scripts = self.resolve(command, scope, table)
                for script in scripts:
                    self.run_script(script, scope, command)
                return None
            return self.table_verb(command, table, args, scope, quiet=quiet)
        except StateError as exc:
            if exc.text.startswith("Script Error:"):
                raise self.refuse(command, exc.text, exc.kind) from None
            raise RuntimeCliError(exc.text, exc.kind) from None

    def table_verb(
        self, command: MenuCommand, table: Table, args: dict[str, str], scope: _Scope, *, quiet: bool
    ) -> object:
        verb = command.verb
        if verb == "add":
            return table.item_id(table.add(args, scope.user))
        if verb == "import" and isinstance(table, SshKeyTable):
            table.import_file(args)
            return None
        if verb == "find":
            return [table.item_id(item) for item in self.select(table, command.conditions, scope)]
        if verb == "print":
            return self.print_table(command, table, args, scope, quiet=quiet)
        items = self.resolve(command, scope, table)
        if verb == "reset-counters":
            return None
        if verb == "get":
            return self.get_property(command, table, items, scope)
        for item in items:
            if verb == "remove":
                table.remove(item)
            elif verb == "set":
                table.update(item, args)
            elif verb in ("enable", "disable"):
                table.enable(item, verb == "enable")
            elif verb == "sign":
                table.sign(item)
        if verb == "move":
            table.move(items, self.move_destination(command, table, scope))
        return None

    def move_destination(self, command: MenuCommand, table: Table, scope: _Scope):
        """``move 3 0`` / ``move numbers=[find ...] destination=[find ...]``: the item to move above."""
        target = command.positionals[1] if len(command.positionals) > 1 else command.arg("destination")
        if target is None:
            return None
        reference = MenuCommand(command.menu, "move", positionals=(target,), line=command.line)
        found = self.resolve(reference, scope, table)
        return found[0] if found else None

    # -- scripts ------------------------------------------------------------------------------
    def run_script(self, script, scope: _Scope, command: MenuCommand) -> None:
        """As the caller (its globals), with the script's policies; needs all of them."""
        if not script.policy <= scope.policies:
            raise self.refuse(command, "not enough permissions (9)", "permission")
        if scope.depth >= _MAX_SCRIPT_DEPTH:
            raise RuntimeCliError("script error: too many nested script runs", "other")
        script.run_count += 1
        inner = _Scope(
            user=scope.user,
            policies=script.policy & scope.policies,
            out=scope.out,
            depth=scope.depth + 1,
            turns=scope.turns,
        )
        try:
            statements = parse_script(script.source, self.flavour)
            for statement in statements:
                self.execute(statement, inner, quiet=False)
        except CliSyntaxError as exc:
            self.log(("script", "error"), f"script error: {exc.text}")
            raise RuntimeCliError(exc.text, exc.kind) from None
        except RuntimeCliError as exc:
            self.log(("script", "error"), f"script error: {exc.text}")
            raise

    def log(self, topics: tuple[str, ...], message: str) -> None:
        """A message of the router's own (``:log``, script errors): ``state.log``, and through
        ``/system logging`` to memory (``/log print``) and remote actions (``send_log``)."""
        self.state.log.append(message)
        datagrams = self.state.logging.emit(topics, message, self.state.now(), self.state.identity)
        if self.send_log is not None:
            for host, port, data in datagrams:
                self.send_log(host, port, data)
