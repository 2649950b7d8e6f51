"""Menus that are one set of values rather than a table: ``/system resource``, ``/system
identity``, ``/tool sniffer`` (``print``, ``get``, ``set``; the sniffer's ``start``/``stop``)."""

from __future__ import annotations

from responder.routeros.duration import format_duration
from responder.sim.router import printing
from responder.sim.router.tables import TimeValue
from responder.sim.script.errors import RuntimeCliError
from responder.sim.script.scope import Running, Scope
from responder.sim.script.syntax import MenuCommand
from responder.sim.script.values import to_text

SINGLETONS = frozenset({("system", "resource"), ("system", "identity"), ("tool", "sniffer")})


def resource_values(interp: Running) -> list[tuple[str, object]]:
    state = interp.state
    profile = state.profile
    return [
        ("uptime", TimeValue(state.uptime())),
        ("version", profile.version),
        ("build-time", "2024-10-22 10:17:35" if profile.flavour == "v7" else "oct/22/2024 10:17:35"),
        ("factory-software", profile.version.split()[0]),
        ("free-memory", "870.4MiB"),
        ("total-memory", "1024.0MiB"),
        ("cpu", "QEMU"),
        ("cpu-count", "1"),
        ("cpu-frequency", "2496MHz"),
        ("cpu-load", "1%"),
        ("free-hdd-space", "80.2MiB"),
        ("total-hdd-space", "89.2MiB"),
        ("architecture-name", profile.architecture),
        ("board-name", profile.board_name),
        ("platform", "MikroTik"),
    ]


def run_singleton(interp: Running, command: MenuCommand, args: dict[str, str], scope: Scope) -> object:
    state = interp.state
    if command.menu == ("system", "resource"):
        values = resource_values(interp)
    elif command.menu == ("system", "identity"):
        if command.verb == "set":
            if "name" in args:
                state.identity = args["name"]
            return None
        values = [("name", state.identity)]
    else:
        sniffer = state.sniffer
        if command.verb == "set":
            sniffer.set(args)
            return None
        if command.verb in ("start", "stop"):
            sniffer.running = command.verb == "start"
            return None
        values = list(sniffer.shown())
    if command.verb == "get":
        return get_value(interp, command, dict(values), scope)
    if "as-value" in command.flags:
        return [dict(values)]
    shown = [(k, format_duration(int(v.seconds)) if isinstance(v, TimeValue) else to_text(v)) for k, v in values]
    scope.out.extend(printing.render_properties(shown))
    return None


def get_value(interp: Running, command: MenuCommand, values: dict[str, object], scope: Scope) -> object:
    name_value = command.positionals[0] if command.positionals else command.arg("value-name")
    name = to_text(interp.evaluate(name_value, scope)) if name_value is not None else ""
    if name not in values:
        raise RuntimeCliError("input does not match any value of value-name", "other")
    return values[name]
