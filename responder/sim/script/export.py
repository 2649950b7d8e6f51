"""``export`` (any menu, or ``/export`` for all): the configuration as the commands that make it
(manual "Configuration Management"): a ``# date by RouterOS version`` line, each menu's path on a
line of its own, then ``add``/``set`` lines with the properties that differ from the default in
alphabetical order, values quoted when they need it, long lines wrapped with `` \\`` (``terse``:
one line per item, path included, never wrapped). Dynamic and default items, the built-in
groups, users and their keys are not exported (users are not part of a RouterOS export).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from responder.sim.router.printing import format_date
from responder.sim.router.tables import table_for
from responder.sim.script.menus import MENUS
from responder.sim.script.syntax import MenuCommand
from responder.sim.script.values import to_text

if TYPE_CHECKING:
    from responder.sim.script.interpreter import Interpreter, _Scope

EXPORT_ORDER: tuple[tuple[str, ...], ...] = (
    ("ip", "firewall", "address-list"),
    ("ip", "firewall", "filter"),
    ("ip", "firewall", "mangle"),
    ("ip", "firewall", "raw"),
    ("ipv6", "firewall", "address-list"),
    ("ipv6", "firewall", "filter"),
    ("ipv6", "firewall", "mangle"),
    ("ipv6", "firewall", "raw"),
    ("ip", "service"),
    ("system", "identity"),
    ("system", "logging", "action"),
    ("system", "logging"),
    ("system", "script"),
    ("tool", "sniffer"),
    ("user", "group"),
)
_BUILTIN_GROUPS = ("full", "read", "write")
_NOT_EXPORTED = frozenset({"place-before", "password", "dynamic", "timeout", "owner"})
_WRAP = 80
_PLAIN = re.compile(r"[A-Za-z0-9_.:,/*!@+%&<>-]+")


def quote(text: str) -> str:
    """A value as export writes it: bare when it can be, else quoted with RouterOS's escapes."""
    if text and _PLAIN.fullmatch(text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


def _is_default(name: str, value: object) -> bool:
    text = to_text(value)
    return text == "" or (name in ("disabled", "log", "dont-require-permissions") and text in ("false", "no"))


def _item_args(interp: Interpreter, menu: tuple[str, ...], table, item) -> list[str] | None:
    if getattr(item, "dynamic", False) or getattr(item, "default", False):
        return None
    if menu == ("user", "group") and item.name in _BUILTIN_GROUPS:
        return None
    writable = MENUS[menu].verbs["add"].keys - _NOT_EXPORTED
    values = table.values(item, interp.flavour)
    if table.comment(item):
        values["comment"] = table.comment(item)
    pairs = sorted((k, v) for k, v in values.items() if k in writable and not _is_default(k, v))
    return [f"{k}={quote(to_text(v))}" for k, v in pairs]


def _singleton_args(interp: Interpreter, menu: tuple[str, ...]) -> list[str] | None:
    state = interp.state
    if menu == ("system", "identity"):
        pairs = [("name", state.identity)] if state.identity != "MikroTik" else []
    else:
        pairs = state.sniffer.changed()
    return [f"{k}={quote(v)}" for k, v in sorted(pairs)] if pairs else None


def _wrap(words: list[str]) -> list[str]:
    lines, current = [], words[0]
    for word in words[1:]:
        if len(current) + 1 + len(word) + 2 > _WRAP and current.strip():
            lines.append(current + " \\")
            current = "    " + word
        else:
            current += " " + word
    lines.append(current)
    return lines


def export_lines(interp: Interpreter, prefix: tuple[str, ...], terse: bool) -> list[str]:
    flavour, state = interp.flavour, interp.state
    lines = [f"# {format_date(state.now(), flavour)} by RouterOS {state.profile.version.split()[0]}"]
    if flavour == "v7":
        lines += ["# software id = ", "#"]
    for menu in EXPORT_ORDER:
        if menu[: len(prefix)] != prefix:
            continue
        path = "/" + " ".join(menu)
        commands: list[list[str]] = []
        if menu in (("system", "identity"), ("tool", "sniffer")):
            args = _singleton_args(interp, menu)
            if args:
                commands.append(["set", *args])
        elif menu == ("ip", "service"):  # fixed items: `set NAME ...` for what changed
            table = table_for(state, menu)
            for item in table.items():
                changed = table.changed(item)
                if changed:
                    commands.append(["set", item.name, *(f"{k}={quote(v)}" for k, v in sorted(changed))])
        else:
            table = table_for(state, menu)
            for item in table.items():
                args = _item_args(interp, menu, table, item)
                if args is not None:
                    commands.append(["add", *args])
        if not commands:
            continue
        if terse:
            lines += [" ".join([path, *words]) for words in commands]
        else:
            lines.append(path)
            for words in commands:
                lines += _wrap(words)
    return lines


def export(interp: Interpreter, command: MenuCommand, args: dict[str, str], scope: _Scope) -> None:
    lines = export_lines(interp, command.menu, "terse" in command.flags)
    if "file" in args:
        name = args["file"] if args["file"].endswith(".rsc") else args["file"] + ".rsc"
        interp.state.files[name] = "\n".join(lines) + "\n"
        return None
    scope.out.extend(lines)
    return None
