"""The ``:commands`` of RouterOS scripting besides the variable ones (manual "Scripting"):
``:do {…} on-error={…}``, ``:onerror e in={…} do={…}`` (v7), ``:if (…) do={…} else={…}``, ``:while``, ``:foreach``, ``:for``, ``:len``,
``:pick``, ``:find``, ``:typeof``, ``:tostr``, ``:tonum``, ``:log``, ``:error``, ``:nothing``,
``:delay`` (which does not wait: the simulator has no use for sleeping).

Loops are bounded (``MAX_TURNS`` turns for one entry, nested loops and the scripts it runs
included) so a pasted script cannot hang the simulator, which runs it holding the router's lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from responder.sim.script.syntax import Builtin, Value
from responder.sim.script.values import find_in, length, pick, to_bool, to_number, to_text, type_of

if TYPE_CHECKING:
    from responder.sim.script.interpreter import Interpreter, _Scope

MAX_TURNS = 100_000


def _turn(scope: _Scope) -> None:
    from responder.sim.script.interpreter import RuntimeCliError

    scope.turns[0] += 1
    if scope.turns[0] > MAX_TURNS:
        raise RuntimeCliError(f"too many loop turns (routeros-sim stops at {MAX_TURNS})", "other")


LOG_TOPICS = ("debug", "error", "info", "warning")


def run_builtin(interp: Interpreter, statement: Builtin, scope: _Scope) -> object:
    from responder.sim.script.interpreter import RuntimeCliError

    name = statement.name

    def value(v: Value | None) -> object:
        return interp.evaluate(v, scope) if v is not None else None

    operands = statement.operands
    if name == "do":
        handler = statement.arg("on-error")
        if handler is None:
            return interp.run_block(value(operands[0]), scope)
        mark = len(scope.out)
        try:
            return interp.run_block(value(operands[0]), scope)
        except RuntimeCliError:
            del scope.out[mark:]  # not what was printed before the error: the error's own line is never printed
            return interp.run_block(value(handler), scope)
    if name == "onerror":
        mark = len(scope.out)
        try:
            interp.run_block(value(statement.arg("in")), scope)
        except RuntimeCliError as exc:
            del scope.out[mark:]
            interp.run_block(value(statement.arg("do")), scope, {to_text(value(operands[0])): exc.text})
            return True
        return False
    if name == "if":
        truth = to_bool(value(operands[0]))
        if truth is None:
            raise RuntimeCliError("conditional not boolean", "other")
        return interp.run_block(value(statement.arg("do" if truth else "else")), scope)
    if name == "foreach":
        items = value(statement.arg("in"))
        sequence = items if isinstance(items, list) else ([] if items is None else [items])
        body = value(statement.arg("do"))
        for item in sequence:
            _turn(scope)
            interp.run_block(body, scope, {to_text(value(operands[0])): item})
        return None
    if name == "while":
        body = value(statement.arg("do"))
        while True:
            truth = to_bool(value(operands[0]))
            if truth is None:
                raise RuntimeCliError("conditional not boolean", "other")
            if not truth:
                return None
            _turn(scope)
            interp.run_block(body, scope)
    if name == "for":
        start, stop = to_number(value(statement.arg("from"))), to_number(value(statement.arg("to")))
        step = to_number(value(statement.arg("step"))) if statement.arg("step") is not None else 1
        if start is None or stop is None or not step:
            raise RuntimeCliError("invalid value for argument from/to/step", "other")
        if statement.arg("step") is None and stop < start:
            step = -1
        body = value(statement.arg("do"))
        current = start
        while current <= stop if step > 0 else current >= stop:
            _turn(scope)
            interp.run_block(body, scope, {to_text(value(operands[0])): current})
            current += step
        return None
    if name == "len":
        return length(value(operands[0]))
    if name == "pick":
        return interp.operate_call(pick, [value(v) for v in operands])
    if name == "find":
        return interp.operate_call(find_in, [value(v) for v in operands])
    if name == "typeof":
        return type_of(value(operands[0]))
    if name == "tostr":
        return to_text(value(operands[0]))
    if name == "tonum":
        return to_number(value(operands[0]))
    if name == "log":
        topic = to_text(value(operands[0]))
        if topic not in LOG_TOPICS:
            raise RuntimeCliError(f"bad command name {topic}", "bad-command")
        interp.log(("script", topic), to_text(value(operands[1])))
        return None
    if name == "error":
        raise RuntimeCliError(to_text(value(operands[0])), "script-error")
    return None  # :nothing, :delay
