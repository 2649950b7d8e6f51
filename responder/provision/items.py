"""What a provisioned router holds, as data: one Item per user, group, key, rule and setting (pure).

The script (render.py) and ``--check`` (drift.py) both work from this list, so what the script makes
and what the check looks for cannot drift apart. Items we add to a table carry a ``comment`` that
starts with ``tzsp-ips``; that mark (or the name, where RouterOS keeps names unique) is how a second
run finds what the first one made.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass

from responder.provision.plan import (
    BLOCK_IN,
    COMMENT,
    STEALTH_LOG_PREFIX,
    TZSP_MODES,
    ProvisionError,
    ProvisionPlan,
    check_address,
    check_port,
    stealth_limit,
)
from responder.routeros.commands import check_name

Props = tuple[tuple[str, str], ...]

DROP_MARK = f"{COMMENT}: drop "  # every drop rule's comment starts with it (the position check finds them by it)
LOG_ACTION = "tzspips"  # RouterOS logging action names take no '-'


@dataclass(frozen=True)
class Item:
    menu: str  # "/ip firewall filter"
    what: str  # for people: "IPv4 filter input: drop sources in blacklist"
    key: Props  # how it is found: (("comment", "tzsp-ips: ..."),) or (("name", "ips"),)
    props: Props = ()  # what it must hold; set when it differs
    on_add: Props = ()  # given only when it is created (the throwaway password)
    at_top: bool = False  # added above every rule of its table (place-before the first)
    top_of: str | None = None  # the chain whose accept rules it must stay above
    singleton: bool = False  # a settings menu (/tool sniffer): set, never add
    absent: bool = False  # ours, but must not be there (drops in the table block_in does not use)
    add_command: str | None = None  # instead of ``add key props`` (v6 imports keys from a file)
    after: tuple[str, ...] = ()  # commands run after it is in place (/tool sniffer start)

    @property
    def can_duplicate(self) -> bool:
        """Whether RouterOS lets two entries share our key: names are unique; a user's keys are
        ours to deduplicate only when they carry our mark (v7), never a key somebody else added."""
        if self.singleton or self.key[0][0] == "name":
            return False
        return self.menu != "/user ssh-keys" or len(self.key) > 1

    def prop(self, name: str) -> str | None:
        return dict(self.key + self.props).get(name)


def _comment(text: str) -> Props:
    return (("comment", f"{COMMENT}: {text}"),)


def desired_items(plan: ProvisionPlan) -> list[Item]:
    """Everything the router must hold for ``plan``, in the order the script makes it."""
    host = check_address(plan.this_host)
    user = check_name("user", plan.user)
    group = check_name("group", plan.group)
    list_name = check_name("list", plan.list_name)
    if plan.flavour not in ("v6", "v7"):
        raise ProvisionError(f"flavour must be v6 or v7, got {plan.flavour!r}")
    if plan.tzsp not in TZSP_MODES:
        raise ProvisionError(f"tzsp must be one of {', '.join(TZSP_MODES)}, got {plan.tzsp!r}")
    if plan.transport not in ("ssh", "api"):
        raise ProvisionError(f"transport must be ssh or api, got {plan.transport!r}")
    if plan.block_in not in BLOCK_IN:
        raise ProvisionError(f"block_in must be filter or raw, got {plan.block_in!r}")
    tzsp_port = check_port("tzsp port", plan.tzsp_port)
    syslog_port = check_port("syslog port", plan.syslog_port) if plan.syslog_port is not None else None

    items = [
        Item(
            "/user group",
            f"user group {group}",
            (("name", group),),
            (("policy", f"{plan.transport},read,write"),),
        ),
        Item(
            "/user",
            f"user {user}",
            (("name", user),),
            (("group", group), ("address", f"{host}/{host.max_prefixlen}"), ("comment", f"{COMMENT} responder")),
            on_add=(("password", plan.throwaway_password),) if plan.throwaway_password is not None else (),
        ),
    ]
    if plan.public_key is not None:
        if plan.flavour == "v7":  # the key's comment becomes its key-owner: our mark, naming this key
            owner = plan.public_key.owner
            key: Props = (("user", user), ("key-owner", owner))
            add, on_add = None, (("key", f"{plan.public_key.openssh} {owner}"),)
        else:  # RouterOS v6 imports keys only from a file uploaded beforehand, with its own comment
            key, add, on_add = (("user", user),), f"/user ssh-keys import user={user} public-key-file=tzsp-ips.pub", ()
        items.append(Item("/user ssh-keys", f"SSH key of user {user}", key, on_add=on_add, add_command=add))

    for family, menu in (("IPv4", "/ip firewall filter"), ("IPv6", "/ipv6 firewall filter")):
        items += [
            Item(
                menu,
                f"{family} filter input: log new connections",
                _comment("log new connections (port-scan detector)"),
                (("chain", "input"), ("action", "log"), ("connection-state", "new"), ("log-prefix", COMMENT)),
                at_top=True,
            ),
            Item(
                menu,
                f"{family} filter input: log stealth probes",
                _comment("log stealth scan probes, FIN/NULL/XMAS (port-scan detector)"),
                (
                    ("chain", "input"),
                    ("action", "log"),
                    ("protocol", "tcp"),
                    ("connection-state", "invalid"),
                    ("tcp-flags", "!ack,!rst"),
                    ("limit", stealth_limit(plan.flavour, plan.scan_ports)),
                    ("log-prefix", STEALTH_LOG_PREFIX),
                ),
                at_top=True,
            ),
        ]
        items += _drops(family, "filter", list_name, plan.block_in != "filter")
        items += _drops(family, "raw", list_name, plan.block_in != "raw")

    mangle = Item(
        "/ip firewall mangle",
        "TZSP streaming by mangle sniff-tzsp",
        _comment("to tzspd"),
        (
            ("chain", "prerouting"),
            ("action", "sniff-tzsp"),
            ("sniff-target", str(host)),
            ("sniff-target-port", str(tzsp_port)),
        ),
        absent=plan.tzsp != "mangle",
    )
    if plan.tzsp != "none":
        items.append(mangle)
    if plan.tzsp == "sniffer":
        target = f"{host}:{tzsp_port}" if host.version == 4 else f"[{host}]:{tzsp_port}"
        items.append(
            Item(
                "/tool sniffer",
                "TZSP streaming by the packet sniffer",
                (),
                (("streaming-enabled", "yes"), ("streaming-server", target), ("filter-stream", "yes")),
                singleton=True,
                after=("/tool sniffer start",),
            )
        )
    if syslog_port is not None:
        items += [
            Item(
                "/system logging action",
                f"remote log action {LOG_ACTION} (to the port-scan detector)",
                (("name", LOG_ACTION),),
                (("target", "remote"), ("remote", str(host)), ("remote-port", str(syslog_port))),
            ),
            Item(
                "/system logging",
                "firewall topic logged remotely",
                (("action", LOG_ACTION),),
                (("topics", "firewall"),),
            ),
        ]
    if plan.memory_logging:
        # [scan] routers reads the router's own log over its connection: the firewall topic must reach
        # the memory action. Found by both action and topics, never the default `topics=info` rule.
        items.append(
            Item(
                "/system logging",
                "firewall topic kept in the memory log (read by [scan] routers)",
                (("action", "memory"), ("topics", "firewall")),
            )
        )
    return items


def _drops(family: str, table: str, list_name: str, absent: bool) -> list[Item]:
    """Drop rules for the address list: in filter input and forward, or in raw prerouting (before
    connection tracking, what MikroTik recommends against floods)."""
    menu = f"/{'ip' if family == 'IPv4' else 'ipv6'} firewall {table}"
    if table == "filter":
        rules = (("input", "src", "sources"), ("forward", "src", "sources"), ("forward", "dst", "destinations"))
    else:
        rules = (("prerouting", "src", "sources"), ("prerouting", "dst", "destinations"))
    return [
        Item(
            menu,
            f"{family} {table} {chain}: drop {whom} in address list {list_name}",
            ((("comment", f"{DROP_MARK}{chain} {whom} in the address list")),),
            (("chain", chain), ("action", "drop"), (f"{direction}-address-list", list_name)),
            at_top=True,
            top_of=chain,
            absent=absent,
        )
        for chain, direction, whom in rules
    ]


def watched_items(list_name: str, block_in: str, remote_logging: bool) -> list[Item]:
    """What the running service checks on each router: the drop rules (present, on the configured
    list, enabled, above every accept of their chain) and, with a syslog listener, the remote
    logging of the firewall topic. The rest depends on choices made at provisioning time
    (--tzsp, --this-host, --flavour) that the service does not know."""
    placeholder = ProvisionPlan(
        router="-",
        router_host="-",
        this_host=ipaddress.ip_address("127.0.0.1"),  # only in props left out below
        list_name=list_name,
        block_in=block_in,
        tzsp="none",
        syslog_port=514 if remote_logging else None,
    )
    watched = []
    for item in desired_items(placeholder):
        if item.top_of:
            watched.append(item)
        elif item.menu == "/system logging action":
            watched.append(dataclasses.replace(item, props=(("target", "remote"),)))
        elif item.menu == "/system logging":
            watched.append(item)
    return watched
