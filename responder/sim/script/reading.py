"""The interpreter's reading side: which items a command names (``[find where ...]``, ``*ID``,
printed numbers, names) and ``print`` / ``get`` over a table. A mixin of ``Interpreter``, which
provides ``evaluate``, ``refuse``, ``flavour`` and ``state``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from responder.sim.router import printing
from responder.sim.router.addresses import normalise_address
from responder.sim.router.log_table import LogTable
from responder.sim.router.printing import Record
from responder.sim.router.state import StateError, parse_id
from responder.sim.router.tables import AddressListTable, Table
from responder.sim.script.errors import RuntimeCliError
from responder.sim.script.scope import Scope
from responder.sim.script.syntax import AnyOf, Condition, ConditionNode, Literal, MenuCommand
from responder.sim.script.values import to_text


class Reading:
    # -- item selection -----------------------------------------------------------------------
    def select(self, table: Table, conditions: Sequence[ConditionNode], scope: Scope) -> list:
        tests = [self.prepare(c, scope) for c in conditions]
        return [item for item in table.items() if all(self.holds(table, item, t) for t in tests)]

    def prepare(self, node: ConditionNode, scope: Scope) -> tuple:
        """The condition with its value evaluated once, before the items are walked."""
        if isinstance(node, AnyOf):
            return (node, tuple(tuple(self.prepare(c, scope) for c in alt) for alt in node.alternatives))
        return (node, self.evaluate(node.value, scope) if node.value is not None else None)

    def holds(self, table: Table, item, test: tuple) -> bool:
        node, data = test
        if isinstance(node, AnyOf):
            result = any(all(self.holds(table, item, t) for t in alt) for alt in data)
            return result != node.negate
        return self.matches(table, item, node, data)

    def matches(self, table: Table, item, condition: Condition, wanted: object) -> bool:
        values = table.values(item, self.flavour)
        values[".id"] = table.item_id(item)
        have = values.get(condition.prop)
        if condition.op == "":
            result = have is True or to_text(have) in ("yes", "true")
        elif condition.op == "~":
            try:
                result = re.search(to_text(wanted), to_text(have)) is not None
            except re.error:
                raise RuntimeCliError("invalid regular expression", "syntax") from None
        else:
            equal = self.same_value(table, condition.prop, have, wanted)
            result = equal if condition.op == "=" else not equal
        return result != condition.negate

    @staticmethod
    def same_value(table: Table, prop: str, have: object, wanted: object) -> bool:
        text = to_text(wanted)
        if isinstance(have, bool) or prop in table.booleans:
            truthy = have is True or to_text(have) in ("yes", "true")
            return text.lower() in (("yes", "true") if truthy else ("no", "false"))
        if prop == "address" and isinstance(table, AddressListTable):
            try:
                return normalise_address(text, table.family) == have
            except StateError:
                return False
        if prop == ".id":
            return text.upper() == to_text(have).upper()
        return text == to_text(have)

    def resolve(self, command: MenuCommand, scope: Scope, table: Table) -> list:
        """Items named by ids (``*1A``), printed numbers (``0,1``), names, or ``[find ...]``."""
        refs: list[str] = []
        for value in command.positionals[:1]:
            result = self.evaluate(value, scope)
            for part in result if isinstance(result, list) else [result]:
                refs.extend(r for r in to_text(part).split(",") if r)
        if not command.positionals:
            raise self.refuse(command, "Script Error: missing value(s) of argument(s) numbers", "other")
        items = table.items()
        by_id = {table.item_id(item): item for item in items}
        out = []
        for ref in refs:
            if parse_id(ref) is not None:
                found = by_id.get(ref.upper())
            elif ref.isdigit():
                numbers = scope.numbers.get(command.menu, [])
                index = int(ref)
                found = by_id.get(numbers[index]) if index < len(numbers) else None
            else:
                found = next((item for item in items if table.name_of(item) == ref), None)
            if found is None:
                raise RuntimeCliError("no such item", "no-such-item")
            if found not in out:
                out.append(found)
        return out

    # -- print / get --------------------------------------------------------------------------
    def records(self, table: Table, items: list, proplist: list[str] | None) -> list[Record]:
        records = []
        for index, item in enumerate(items):
            fields = table.fields(item, self.flavour)
            if proplist is not None:
                fields = [f for f in fields if f.name in proplist]
            records.append(Record(index, table.flags(item), tuple(fields), table.comment(item)))
        return records

    def print_table(
        self, command: MenuCommand, table: Table, args: dict[str, str], scope: Scope, *, quiet: bool
    ) -> object:
        items = self.select(table, command.conditions, scope)
        if "from" in args:
            wanted = {
                table.item_id(i)
                for i in self.resolve(
                    MenuCommand(command.menu, "print", positionals=(Literal(args["from"]),)), scope, table
                )
            }
            items = [i for i in items if table.item_id(i) in wanted]
        proplist = [p.strip() for p in args["proplist"].split(",")] if "proplist" in args else None
        if "count-only" in command.flags:
            if not quiet:
                scope.out.append(str(len(items)))
            return len(items)
        if "as-value" in command.flags:
            rows = []
            for item in items:
                row = {".id": table.item_id(item), **table.values(item, self.flavour)}
                if proplist is not None:
                    row = {k: v for k, v in row.items() if k in proplist or k == ".id"}
                rows.append(row)
            return rows
        if isinstance(table, LogTable):  # `time topics message`, one line each, no numbers
            scope.out.extend(table.line(item) for item in items)
            return None
        scope.numbers[command.menu] = [table.item_id(i) for i in items]
        records = self.records(table, items, proplist)
        if table.quiet_defaults and not ({"detail", "terse"} & command.flags):  # plain print: only what was set
            records = [
                replace(r, fields=tuple(f for f in r.fields if table.quiet_defaults.get(f.name) != f.text))
                for r in records
            ]
        if "terse" in command.flags:
            scope.out.extend(printing.render_terse(self.flavour, records))
        elif "detail" in command.flags or table.default_detail:
            scope.out.extend(printing.render_detail(self.flavour, records, table.legend))
        else:
            scope.out.extend(printing.render_table(self.flavour, records, table.columns, table.legend))
        return None

    def get_property(self, command: MenuCommand, table: Table, items: list, scope: Scope) -> object:
        if len(command.positionals) < 2 and command.arg("value-name") is None:
            raise self.refuse(command, "Script Error: missing value(s) of argument(s) value-name", "other")
        name_value = command.positionals[1] if len(command.positionals) > 1 else command.arg("value-name")
        name = to_text(self.evaluate(name_value, scope))
        if len(items) != 1:
            raise RuntimeCliError("no such item", "no-such-item")
        values = table.values(items[0], self.flavour)
        values[".id"] = table.item_id(items[0])
        if name not in values and name not in {f.name for f in table.fields(items[0], self.flavour)}:
            raise RuntimeCliError("input does not match any value of value-name", "other")
        return values.get(name)
