"""The menus routeros-sim knows, their verbs and the arguments each verb takes: the parser checks
a line against these before anything runs, so an unknown menu, verb or argument fails as on a
router (``bad command name X``, ``expected end of command``). Pure data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class VerbSpec:
    keys: frozenset[str] = frozenset()
    flags: frozenset[str] = frozenset()
    positional: int = 0  # item references / names that may follow the verb
    conditions: bool = False  # `find list=x`: key=value pairs are tests
    where: bool = False  # accepts `where cond...`
    v7_only: bool = False


@dataclass(frozen=True)
class MenuSpec:
    verbs: Mapping[str, VerbSpec]
    properties: frozenset[str]  # what `find`/`where` may test


_PRINT_FLAGS = frozenset({"terse", "detail", "brief", "count-only", "as-value", "without-paging"})
# `export` works in every menu and at the root (ROUTEROS.md "Emulator spec"; manual "Configuration Management")
EXPORT = VerbSpec(
    keys=frozenset({"file"}),
    flags=frozenset({"terse", "verbose", "compact", "show-sensitive", "hide-sensitive"}),
)


def _table_menu(
    properties: str,
    writable: str,
    extra_add: str = "",
    *,
    add: bool = True,
    v7_only_add: bool = False,
    extra_verbs: dict[str, VerbSpec] | None = None,
) -> MenuSpec:
    """The usual verbs of a RouterOS table (add/set/remove/print/find/get)."""
    props = frozenset(properties.split())
    keys = frozenset(writable.split())
    verbs: dict[str, VerbSpec] = {
        "set": VerbSpec(keys=keys | {"numbers"}, positional=1),
        "remove": VerbSpec(keys=frozenset({"numbers"}), positional=1),
        "print": VerbSpec(keys=frozenset({"proplist", "from"}), flags=_PRINT_FLAGS, where=True),
        "find": VerbSpec(conditions=True, where=True),
        "get": VerbSpec(keys=frozenset({"number", "value-name"}), positional=2),
    }
    if add:
        verbs["add"] = VerbSpec(keys=keys | frozenset(extra_add.split()), v7_only=v7_only_add)
    verbs.update(extra_verbs or {})
    return MenuSpec(verbs=verbs, properties=props | {".id"})


_ENABLE = {
    "enable": VerbSpec(keys=frozenset({"numbers"}), positional=1),
    "disable": VerbSpec(keys=frozenset({"numbers"}), positional=1),
}
_RULE_VERBS = {
    **_ENABLE,
    "move": VerbSpec(keys=frozenset({"numbers", "destination"}), positional=2),
    "reset-counters": VerbSpec(keys=frozenset({"numbers"}), positional=1),
}
_ADDRESS_LIST = _table_menu(
    "list address timeout comment disabled dynamic creation-time",
    "list address timeout comment disabled dynamic",
    extra_verbs=_ENABLE,
)
_SINGLETON_PRINT = VerbSpec(flags=frozenset({"without-paging", "as-value"}))
# What the rules of filter, raw and mangle share (manual "Firewall Filter", "Firewall Mangle", "Raw")
RULE_MATCHERS = (
    "chain action protocol src-address dst-address src-port dst-port port in-interface out-interface "
    "in-interface-list out-interface-list connection-state tcp-flags src-address-list dst-address-list "
    "limit log log-prefix comment disabled jump-target"
)
FILTER_WRITABLE = RULE_MATCHERS + " reject-with connection-nat-state"
RAW_WRITABLE = RULE_MATCHERS
MANGLE_WRITABLE = (
    RULE_MATCHERS + " sniff-target sniff-target-port sniff-id new-connection-mark new-packet-mark "
    "new-routing-mark passthrough connection-mark packet-mark routing-mark"
)
_RULE_READONLY = " dynamic invalid bytes packets"
_FILTER = _table_menu(FILTER_WRITABLE + _RULE_READONLY, FILTER_WRITABLE, "place-before", extra_verbs=_RULE_VERBS)
_RAW = _table_menu(RAW_WRITABLE + _RULE_READONLY, RAW_WRITABLE, "place-before", extra_verbs=_RULE_VERBS)
_MANGLE = _table_menu(MANGLE_WRITABLE + _RULE_READONLY, MANGLE_WRITABLE, "place-before", extra_verbs=_RULE_VERBS)
# /tool sniffer (manual "Packet Sniffer"): one set of settings, started and stopped
SNIFFER_SETTINGS = (
    "streaming-enabled streaming-server filter-stream filter-interface filter-ip-address filter-ipv6-address "
    "filter-mac-address filter-port filter-ip-protocol filter-mac-protocol filter-direction filter-operator-between-entries "
    "memory-limit memory-scroll file-name file-limit only-headers max-packet-size"
)
LOGGING_ACTION_WRITABLE = (
    "name target remote remote-port bsd-syslog remote-log-format syslog-facility syslog-severity src-address "
    "memory-lines memory-stop-on-full disk-file-name disk-lines-per-file disk-file-count"
)

MENUS: dict[tuple[str, ...], MenuSpec] = {
    ("ip", "firewall", "address-list"): _ADDRESS_LIST,
    ("ipv6", "firewall", "address-list"): _ADDRESS_LIST,
    ("ip", "firewall", "filter"): _FILTER,
    ("ipv6", "firewall", "filter"): _FILTER,
    ("ip", "firewall", "raw"): _RAW,
    ("ipv6", "firewall", "raw"): _RAW,
    ("ip", "firewall", "mangle"): _MANGLE,
    ("ipv6", "firewall", "mangle"): _MANGLE,
    ("system", "logging"): _table_menu(
        "topics action prefix disabled default comment", "topics action prefix disabled comment", extra_verbs=_ENABLE
    ),
    ("system", "logging", "action"): _table_menu(
        LOGGING_ACTION_WRITABLE + " default comment",
        LOGGING_ACTION_WRITABLE + " comment",
    ),
    ("system", "script"): _table_menu(
        "name owner source policy comment run-count dont-require-permissions",
        "name source policy comment owner dont-require-permissions",
        extra_verbs={"run": VerbSpec(keys=frozenset({"number"}), positional=1)},
    ),
    ("system", "resource"): MenuSpec(
        verbs={"print": _SINGLETON_PRINT, "get": VerbSpec(keys=frozenset({"value-name"}), positional=1)},
        properties=frozenset(),
    ),
    ("system", "identity"): MenuSpec(
        verbs={
            "print": _SINGLETON_PRINT,
            "get": VerbSpec(keys=frozenset({"value-name"}), positional=1),
            "set": VerbSpec(keys=frozenset({"name"})),
        },
        properties=frozenset(),
    ),
    ("ip", "service"): _table_menu(
        "name port address certificate disabled invalid tls-version vrf",
        "port address certificate disabled",
        add=False,
        extra_verbs=_ENABLE,
    ),
    ("certificate",): _table_menu(
        "name common-name subject-alt-name days-valid key-usage key-size country state locality organization "
        "unit fingerprint trusted private-key",
        "name common-name subject-alt-name days-valid key-usage key-size country state locality organization unit",
        extra_verbs={"sign": VerbSpec(keys=frozenset({"numbers", "ca", "name"}), positional=1)},
    ),
    ("log",): MenuSpec(
        verbs={
            "print": VerbSpec(flags=frozenset({"without-paging", "as-value", "count-only"}), where=True),
            "find": VerbSpec(conditions=True, where=True),
        },
        properties=frozenset({"time", "topics", "message", ".id"}),
    ),
    ("tool", "sniffer"): MenuSpec(
        verbs={
            "print": _SINGLETON_PRINT,
            "get": VerbSpec(keys=frozenset({"value-name"}), positional=1),
            "set": VerbSpec(keys=frozenset(SNIFFER_SETTINGS.split())),
            "start": VerbSpec(),
            "stop": VerbSpec(),
        },
        properties=frozenset(),
    ),
    ("user",): _table_menu(
        "name group address comment disabled last-logged-in",
        "name group password address comment disabled",
        extra_verbs=_ENABLE,
    ),
    ("user", "group"): _table_menu("name policy comment skin", "name policy comment skin"),
    ("user", "ssh-keys"): _table_menu(
        "user key-type bits comment key-owner",
        "user key comment",
        v7_only_add=True,
        extra_verbs={"import": VerbSpec(keys=frozenset({"user", "public-key-file"}))},
    ),
}
# Menus that exist only to hold others (``/ip``, ``/ip firewall``): they take ``export`` too.
_ALL_PREFIXES = frozenset(path[:n] for path in MENUS for n in range(len(path) + 1))


def children(menu: tuple[str, ...]) -> frozenset[str]:
    depth = len(menu)
    return frozenset(p[depth] for p in MENUS if len(p) > depth and p[:depth] == menu)


def verbs(menu: tuple[str, ...], flavour: str) -> Mapping[str, VerbSpec]:
    spec = MENUS.get(menu)
    out: dict[str, VerbSpec] = {}
    if spec is not None:
        out = {name: v for name, v in spec.verbs.items() if flavour == "v7" or not v.v7_only}
    if menu in _ALL_PREFIXES:
        out["export"] = EXPORT
    return out


def properties(menu: tuple[str, ...]) -> frozenset[str]:
    spec = MENUS.get(menu)
    return spec.properties if spec is not None else frozenset()
