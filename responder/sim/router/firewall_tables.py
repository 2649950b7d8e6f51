"""Table adapters for ``/ip firewall filter``, ``/ipv6 firewall filter``, ``/system logging``
and ``/system logging action`` (the facts live in ``firewall`` and ``remote_log``)."""

from __future__ import annotations

from collections.abc import Mapping

from responder.sim.router.firewall import (
    ACTIONS,
    CONNECTION_STATES,
    PROTOCOL_NUMBERS,
    FilterRule,
    Limit,
    RuleError,
    format_tcp_flags,
    parse_tcp_flags,
)
from responder.sim.router.items import ArgumentError, StateError, invalid_value
from responder.sim.router.printing import Field
from responder.sim.router.remote_log import LogAction, LoggingError, LogRule, parse_port, parse_remote
from responder.sim.router.rules import move_rules, position, rule_table_for
from responder.sim.router.service_tables import service_table_for
from responder.sim.router.tables import MissingArguments, Table, parse_bool


class FilterTable(Table):
    legend = (("X", "disabled"), ("I", "invalid"), ("D", "dynamic"))
    columns = (("CHAIN", "chain"), ("ACTION", "action"))
    default_detail = True
    quiet_defaults = {"log": "no", "log-prefix": '""'}

    def __init__(self, state, family: int):
        super().__init__(state)
        self.family = family
        self.firewall = state.firewall[family]

    def items(self) -> list:
        return list(self.firewall.rules)

    def name_of(self, item) -> str | None:
        return None

    def fields(self, item, flavour: str) -> list[Field]:
        out = [Field("chain", item.chain), Field("action", item.action)]
        optional = (
            ("protocol", item.protocol_text),
            ("connection-state", ",".join(item.connection_state)),
            ("tcp-flags", format_tcp_flags(*item.tcp_flags)),
            ("src-address-list", item.src_address_list),
            ("dst-address-list", item.dst_address_list),
            ("limit", item.limit.text if item.limit else ""),
        )
        out += [Field(name, text) for name, text in optional if text]
        out += [Field(name, text) for name, text in item.extra.items()]
        out += [Field("log", "yes" if item.log else "no"), Field("log-prefix", f'"{item.log_prefix}"')]
        return out

    def values(self, item, flavour: str) -> dict[str, object]:
        out: dict[str, object] = {f.name: f.text for f in self.fields(item, flavour)}
        out["log-prefix"] = item.log_prefix
        out["disabled"] = item.disabled
        if item.comment:
            out["comment"] = item.comment
        return out

    def add(self, args: Mapping[str, str], owner: str) -> object:
        if not args.get("chain"):
            raise MissingArguments(["chain"])
        rule = FilterRule(self.state.take_rule_number(), args["chain"])
        self.update(rule, args)
        before = args.get("place-before")
        if before is not None:
            self.firewall.rules.insert(position(self.firewall.rules, before), rule)
        else:
            self.firewall.rules.append(rule)
        return rule

    def move(self, items: list, before) -> None:
        move_rules(self.firewall.rules, items, before)

    def update(self, item, args: Mapping[str, str]) -> None:
        try:
            if "chain" in args:
                item.chain = args["chain"]
            if "action" in args:
                if args["action"] not in ACTIONS:
                    raise invalid_value("action")
                item.action = args["action"]
            if "protocol" in args:
                text = args["protocol"].lower()
                number = PROTOCOL_NUMBERS.get(text, int(text) if text.isdigit() and int(text) < 256 else None)
                if text and number is None:
                    raise invalid_value("protocol")
                item.protocol, item.protocol_text = number, text
            if "connection-state" in args:
                states = tuple(s.strip() for s in args["connection-state"].split(",") if s.strip())
                if any(s not in CONNECTION_STATES for s in states):
                    raise invalid_value("connection-state")
                item.connection_state = states
            if "tcp-flags" in args:
                item.tcp_flags = parse_tcp_flags(args["tcp-flags"])
            if "limit" in args:
                item.limit = Limit.parse(args["limit"], self.state.profile.flavour) if args["limit"] else None
        except RuleError as exc:
            raise invalid_value(str(exc)) from None
        for name in ("src-address-list", "dst-address-list", "log-prefix", "comment"):
            if name in args:
                setattr(item, name.replace("-", "_"), args[name])
        for name in ("log", "disabled"):
            if name in args:
                setattr(item, name, parse_bool(name, args[name]))
        modelled = {"chain", "action", "protocol", "connection-state", "tcp-flags", "limit", "log", "disabled"}
        modelled |= {"src-address-list", "dst-address-list", "log-prefix", "comment", "place-before"}
        for name, text in args.items():
            if name not in modelled:
                if text:
                    item.extra[name] = text
                else:
                    item.extra.pop(name, None)

    def remove(self, item) -> None:
        self.firewall.rules.remove(item)


class LoggingActionTable(Table):
    columns = (("NAME", "name"), ("TARGET", "target"), ("REMOTE", "remote"))
    legend = (("*", "default"),)

    def items(self) -> list:
        return list(self.state.logging.actions)

    def flags(self, item) -> str:
        return "*" if item.default else ""

    def fields(self, item, flavour: str) -> list[Field]:
        out = [Field("name", item.name, True), Field("target", item.target)]
        if item.target == "remote":
            out += [Field("remote", item.remote), Field("remote-port", str(item.remote_port))]
        return out

    def add(self, args: Mapping[str, str], owner: str) -> object:
        if not args.get("name"):
            raise MissingArguments(["name"])
        if self.state.logging.action(args["name"]) is not None:
            raise StateError("failure: action with such name already exists")
        action = LogAction(self.state.logging.take_number(), args["name"])
        self.update(action, args)
        self.state.logging.actions.append(action)
        return action

    def update(self, item, args: Mapping[str, str]) -> None:
        try:
            if "target" in args:
                if args["target"] not in ("memory", "disk", "echo", "remote"):
                    raise invalid_value("target")
                item.target = args["target"]
            if "remote" in args:
                item.remote = parse_remote(args["remote"])
            if "remote-port" in args:
                item.remote_port = parse_port(args["remote-port"])
        except LoggingError as exc:
            raise ArgumentError(str(exc), kind="other") from None
        if "bsd-syslog" in args:
            if self.state.profile.flavour == "v7" and "remote-log-format" in args:
                raise invalid_value("bsd-syslog")
            item.bsd_syslog = parse_bool("bsd-syslog", args["bsd-syslog"])
        if "remote-log-format" in args:
            if args["remote-log-format"] not in ("default", "syslog", "cef"):
                raise invalid_value("remote-log-format")
            item.remote_log_format = args["remote-log-format"]
        if "name" in args:
            item.name = args["name"]

    def remove(self, item) -> None:
        if item.default:
            raise StateError("failure: default action can not be removed")
        self.state.logging.actions.remove(item)


class LoggingRuleTable(Table):
    columns = (("TOPICS", "topics"), ("ACTION", "action"), ("PREFIX", "prefix"))
    legend = (("X", "disabled"), ("*", "default"))

    def items(self) -> list:
        return list(self.state.logging.rules)

    def name_of(self, item) -> str | None:
        return None

    def flags(self, item) -> str:
        return ("X" if item.disabled else "") + ("*" if item.default else "")

    def fields(self, item, flavour: str) -> list[Field]:
        return [Field("topics", ",".join(item.topics)), Field("action", item.action), Field("prefix", item.prefix)]

    def add(self, args: Mapping[str, str], owner: str) -> object:
        rule = LogRule(self.state.logging.take_number(), (), "memory")
        self.update(rule, args)
        self.state.logging.rules.append(rule)
        return rule

    def update(self, item, args: Mapping[str, str]) -> None:
        if "action" in args:
            if self.state.logging.action(args["action"]) is None:
                raise StateError("input does not match any value of action")
            item.action = args["action"]
        if "topics" in args:
            item.topics = tuple(t.strip() for t in args["topics"].split(",") if t.strip())
        if "prefix" in args:
            item.prefix = args["prefix"]
        if "disabled" in args:
            item.disabled = parse_bool("disabled", args["disabled"])

    def remove(self, item) -> None:
        self.state.logging.rules.remove(item)


def firewall_table_for(state, menu) -> Table | None:
    if menu in (("ip", "firewall", "filter"), ("ipv6", "firewall", "filter")):
        return FilterTable(state, 4 if menu[0] == "ip" else 6)
    if menu == ("system", "logging"):
        return LoggingRuleTable(state)
    if menu == ("system", "logging", "action"):
        return LoggingActionTable(state)
    return rule_table_for(state, menu) or service_table_for(state, menu)


__all__ = ["FilterTable", "LoggingActionTable", "LoggingRuleTable", "firewall_table_for"]
