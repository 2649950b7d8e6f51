"""Which table adapter serves a menu (``/ip firewall address-list``, ``/user``, ``/log``, …): the one
place that knows every table module, so that none of them needs to know the others."""

from __future__ import annotations

from responder.sim.router.firewall_tables import firewall_table_for
from responder.sim.router.log_table import LogTable
from responder.sim.router.state import RouterState
from responder.sim.router.tables import AddressListTable, GroupTable, ScriptTable, SshKeyTable, Table, UserTable


def table_for(state: RouterState, menu: tuple[str, ...]) -> Table | None:
    if menu == ("ip", "firewall", "address-list"):
        return AddressListTable(state, 4)
    if menu == ("ipv6", "firewall", "address-list"):
        return AddressListTable(state, 6)

    if menu == ("log",):
        return LogTable(state)
    return {
        ("system", "script"): ScriptTable,
        ("user",): UserTable,
        ("user", "group"): GroupTable,
        ("user", "ssh-keys"): SshKeyTable,
    }.get(menu, lambda s: firewall_table_for(s, menu))(state)
