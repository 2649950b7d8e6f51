"""``/log`` as a table the interpreter can ``print`` and ``find where`` over: the memory log's
entries (``memory_log``), each printed as RouterOS's ``time topics message`` line."""

from __future__ import annotations

from responder.sim.router.memory_log import api_row, print_line
from responder.sim.router.printing import Field
from responder.sim.router.tables import Table


class LogTable(Table):
    def items(self) -> list:
        return self.state.logging.memory.entries()

    def name_of(self, item) -> str | None:
        return None

    def comment(self, item) -> str | None:
        return None

    def fields(self, item, flavour: str) -> list[Field]:
        row = api_row(item, self.state.now())
        return [Field(name, row[name]) for name in ("time", "topics", "message")]

    def line(self, item) -> str:
        return print_line(item, self.state.now())
