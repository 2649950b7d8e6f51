"""``/ip firewall raw``, ``/ip firewall mangle`` and their ``/ipv6`` twins: rules the simulator
keeps, prints, exports and moves, without matching packets through them (the packet path is
the filter's, ``firewall``). Chains and actions are checked as the manual lists them ("Firewall
Mangle", "Raw"); ``sniff-tzsp`` needs a ``sniff-target`` address (manual "Packet Sniffer").
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from responder.sim.router.items import NoSuchItem, StateError, parse_id
from responder.sim.router.printing import Field
from responder.sim.router.tables import MissingArguments, Table, invalid_value, parse_bool

RAW_CHAINS = ("prerouting", "output")
MANGLE_CHAINS = ("prerouting", "input", "forward", "output", "postrouting")
RAW_ACTIONS = ("accept", "add-dst-to-address-list", "add-src-to-address-list", "drop", "jump", "log", "notrack")
RAW_ACTIONS += ("passthrough", "return")
MANGLE_ACTIONS = (
    "accept",
    "add-dst-to-address-list",
    "add-src-to-address-list",
    "change-dscp",
    "change-mss",
    "change-ttl",
    "clear-df",
    "fasttrack-connection",
    "jump",
    "log",
    "mark-connection",
    "mark-packet",
    "mark-routing",
    "passthrough",
    "return",
    "route",
    "set-priority",
    "sniff-pc",
    "sniff-tzsp",
    "strip-ipv4-options",
)
_BOOLEANS = ("disabled", "log", "passthrough")
_DEFAULTS = {"log": "no", "log-prefix": "", "disabled": "no"}


@dataclass
class Rule:
    number: int
    values: dict[str, str] = field(default_factory=dict)  # chain and action first, then as given

    @property
    def disabled(self) -> bool:
        return self.values.get("disabled") == "yes"

    @property
    def comment(self) -> str:
        return self.values.get("comment", "")


class RuleTable(Table):
    """One raw or mangle table of one address family, in rule order."""

    legend = (("X", "disabled"), ("I", "invalid"), ("D", "dynamic"))
    columns = (("CHAIN", "chain"), ("ACTION", "action"))
    default_detail = True
    quiet_defaults = {"log": "no", "log-prefix": '""'}

    def __init__(self, state, family: int, kind: str):
        super().__init__(state)
        self.family, self.kind = family, kind
        self.rules: list[Rule] = state.rule_lists.setdefault((family, kind), [])
        self.chains = RAW_CHAINS if kind == "raw" else MANGLE_CHAINS
        self.actions = RAW_ACTIONS if kind == "raw" else MANGLE_ACTIONS

    def items(self) -> list:
        return list(self.rules)

    def name_of(self, item) -> str | None:
        return None

    def fields(self, item, flavour: str) -> list[Field]:
        shown = {k: v for k, v in item.values.items() if k not in ("comment", "disabled")}
        shown.setdefault("log", "no")
        shown.setdefault("log-prefix", "")
        return [Field(k, f'"{v}"' if k == "log-prefix" else v) for k, v in shown.items()]

    def values(self, item, flavour: str) -> dict[str, object]:
        out: dict[str, object] = dict(_DEFAULTS)
        out.update(item.values)
        for name in _BOOLEANS:
            if name in out:
                out[name] = out[name] == "yes"
        return out

    def add(self, args: Mapping[str, str], owner: str) -> object:
        if not args.get("chain"):
            raise MissingArguments(["chain"])
        rule = Rule(self.state.take_rule_number(), {"chain": "", "action": "accept"})
        self.update(rule, args)
        if rule.values.get("action") == "sniff-tzsp" and "sniff-target" not in rule.values:
            raise StateError("failure: sniff-target must be set for action sniff-tzsp")
        before = args.get("place-before")
        if before is not None:
            self.rules.insert(position(self.rules, before), rule)
        else:
            self.rules.append(rule)
        return rule

    def update(self, item, args: Mapping[str, str]) -> None:
        new = dict(item.values)
        for name, text in args.items():
            if name == "place-before":
                continue
            if name == "chain" and text not in self.chains and self.kind == "raw":
                raise invalid_value("chain")
            if name == "action" and text not in self.actions:
                raise invalid_value("action")
            if name in _BOOLEANS:
                text = "yes" if parse_bool(name, text) else "no"
            if name == "sniff-target":
                try:
                    text = str(ipaddress.ip_address(text))
                except ValueError:
                    raise invalid_value(name) from None
            if name == "sniff-target-port" and not (text.isdigit() and 0 < int(text) < 65536):
                raise invalid_value(name)
            new[name] = text
        item.values = new

    def remove(self, item) -> None:
        self.rules.remove(item)

    def move(self, items: list, before) -> None:
        move_rules(self.rules, items, before)


def position(rules: list, ref: str) -> int:
    """The index ``place-before=`` names: an ``*ID`` (the first of a ``find`` list) or a number."""
    first = ref.replace(";", ",").split(",")[0].strip()
    number = parse_id(first)
    for index, rule in enumerate(rules):
        if rule.number == number:
            return index
    if first.isdigit() and int(first) < len(rules):
        return int(first)
    raise NoSuchItem()


def move_rules(rules: list, items: list, before) -> None:
    """``move``: the items, in their order, to just above ``before`` (to the end without one)."""
    if before is not None and before in items:
        return
    for item in items:
        rules.remove(item)
    at = rules.index(before) if before is not None else len(rules)
    rules[at:at] = items


_RAW_MODELLED = frozenset({"chain", "action", "protocol", "src-address-list", "dst-address-list", "comment"})
_RAW_MODELLED |= {"disabled", "log", "log-prefix"}


def raw_action(rules: list[Rule], family_packet, in_list) -> str | None:
    """What ``/ip firewall raw`` ``prerouting`` does to an arriving packet, before connection
    tracking: ``drop`` or ``accept`` (the first matching rule that ends the chain), or None when
    no rule ends it. A rule matches on ``protocol`` and ``src-/dst-address-list`` (``!`` negates);
    a rule with any other matcher (``in-interface=``...) is not modelled and never matches."""
    from responder.sim.router.firewall import PROTOCOL_NUMBERS

    packet = family_packet
    for rule in rules:
        values = rule.values
        if rule.disabled or values.get("chain") != "prerouting" or set(values) - _RAW_MODELLED:
            continue
        protocol = values.get("protocol", "")
        if protocol and PROTOCOL_NUMBERS.get(protocol, int(protocol) if protocol.isdigit() else -1) != packet.proto:
            continue
        if not all(
            _in_list_matches(values.get(key, ""), address, in_list)
            for key, address in (("src-address-list", packet.src), ("dst-address-list", packet.dst))
        ):
            continue
        if values.get("action") in ("drop", "accept"):
            return values["action"]
    return None


def _in_list_matches(wanted: str, address: str, in_list) -> bool:
    if not wanted:
        return True
    negated, name = wanted.startswith("!"), wanted.lstrip("!")
    return in_list(name, address) != negated


def rule_table_for(state, menu: tuple[str, ...]) -> Table | None:
    if len(menu) == 3 and menu[0] in ("ip", "ipv6") and menu[1] == "firewall" and menu[2] in ("raw", "mangle"):
        return RuleTable(state, 4 if menu[0] == "ip" else 6, menu[2])
    return None


__all__ = ["MANGLE_ACTIONS", "RAW_ACTIONS", "Rule", "RuleTable", "move_rules", "position", "rule_table_for"]
