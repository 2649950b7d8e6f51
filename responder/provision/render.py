"""The RouterOS script that sets a router up for tzsp-ips, safe to run twice (pure rendering).

Every item is guarded: ``:if ([:len [MENU find where MARK]] = 0) do={ add } else={ set }``, so a
second run adds nothing, sets what differs back, and removes duplicates of our own rules. New rules
go above every rule (``place-before`` the first), and any of our drop rules that sits below an
``accept`` rule of its chain is moved back to the top. The guard opens on a line
of its own, the shape RouterOS linters (mikrotik-rsc-auditor ``--lint``) recognise; ``exec_lines``
joins each block into the single line RouterOS's SSH exec takes.
"""

from __future__ import annotations

import ipaddress
import re

from responder.provision.items import DROP_MARK, Item, Props, desired_items
from responder.provision.plan import COMMENT, ProvisionPlan, check_address
from responder.routeros.quoting import quote_value

_BARE_VALUE = re.compile(r"^[A-Za-z0-9_.:/,!@+-]+$")  # no brackets: `[` starts a command
_ALWAYS_QUOTED = frozenset({"comment", "password", "key"})
_FIRST_DUPLICATE = 1
_FOUND_ONLY = frozenset({"key-owner"})  # read-only: RouterOS derives it (from the key's comment)
_MANY = 1000  # :pick's end: past the last duplicate however many there are


def render_value(prop: str, text: str) -> str:
    if prop in _ALWAYS_QUOTED or not _BARE_VALUE.match(text):
        return quote_value(text)
    return text


def render_props(props: Props) -> str:
    return " ".join(f"{name}={render_value(name, text)}" for name, text in props)


def where(key: Props) -> str:
    return "where " + " ".join(f"{name}={render_value(name, text)}" for name, text in key)


def _find(item: Item) -> str:
    return f"[{item.menu} find {where(item.key)}]"


def add_command(item: Item) -> str:
    """The command that creates ``item`` (at the top of its table when it must be there)."""
    if item.add_command:
        return item.add_command
    words = render_props(tuple((n, v) for n, v in item.key if n not in _FOUND_ONLY) + item.props + item.on_add)
    if not item.at_top:
        return f"{item.menu} add {words}"
    first = f"[:pick [{item.menu} find] 0]"
    return f":do {{ {item.menu} add {words} place-before={first} }} on-error={{ {item.menu} add {words} }}"


def set_command(item: Item, props: Props | None = None) -> str:
    props = item.props if props is None else props
    if item.singleton:
        return f"{item.menu} set {render_props(props)}"
    return f"{item.menu} set {_find(item)} {render_props(props)}"


def remove_duplicates_command(item: Item) -> str:
    return f"{item.menu} remove [:pick {_find(item)} {_FIRST_DUPLICATE} {_MANY}]"


def remove_command(item: Item) -> str:
    return f"{item.menu} remove {_find(item)}"


def item_block(item: Item) -> list[str]:
    """The lines that make ``item`` so, whatever the router holds now."""
    if item.absent:
        return [remove_command(item)]
    if item.singleton:
        return [set_command(item), *item.after]
    lines = [f":if ([:len {_find(item)}] = 0) do={{", f"    {add_command(item)}"]
    updates = []
    if item.props:
        # a rule someone disabled is enabled again: a disabled drop blocks nothing
        enable = (("disabled", "no"),) if " firewall " in item.menu else ()
        updates.append(set_command(item, item.props + enable))
    if item.can_duplicate:
        updates.append(remove_duplicates_command(item))
    if updates:
        lines.append("} else={")
        lines += [f"    {line}" for line in updates]
    lines.append("}")
    return lines + list(item.after)


def move_to_top_command(menu: str, find: str) -> str:
    return f"{menu} move {find} destination=[:pick [{menu} find] 0]"


def position_block(menu: str, chain: str) -> list[str]:
    """Moves our drop rules that sit below an accept rule of ``chain`` to the top of the table
    (rules are visited in table order; ``move`` keeps the rule, so nothing passes meanwhile)."""
    ours = f"[{menu} find where chain={chain} and comment~{quote_value('^' + DROP_MARK)}]"
    return [
        "{",
        f"    :local ours {ours}",
        "    :local accepted false",
        f"    :foreach i in=[{menu} find where chain={chain}] do={{",
        f'        :if ([{menu} get $i action] = "accept") do={{ :set accepted true }}',
        f'        :if ($accepted and [:typeof [:find $ours $i]] = "num") do={{ {move_to_top_command(menu, "$i")} }}',
        "    }",
        "}",
    ]


def one_line(lines: list[str]) -> str:
    """A block as one RouterOS line: ``;`` between statements, none after ``{`` or before ``}``."""
    out = ""
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if out and not out.endswith("{") and not line.startswith("}"):
            out += "; "
        elif out:
            out += " "
        out += line
    return out


def script_blocks(plan: ProvisionPlan) -> list[tuple[str, list[list[str]]]]:
    """(section heading, blocks of lines) in the order the script runs them."""
    items = desired_items(plan)
    host = check_address(plan.this_host)
    login = "API" if plan.transport == "api" else "SSH"
    account = [item_block(i) for i in items if i.menu.startswith("/user")]
    if plan.public_key is not None and plan.flavour == "v6":
        account.insert(2, ["# RouterOS v6 imports keys from a file: upload our public key as tzsp-ips.pub first"])
    if plan.public_key is None:
        where_kept = plan.password_source or "your password file"
        account.append(
            [f"# no key configured: give {plan.user} the password kept in {where_kept}: /user set ... password=..."]
        )
    if plan.transport == "api":
        account += _api_service(plan, f"{host}/{host.max_prefixlen}")

    firewall_items = [i for i in items if " firewall filter" in i.menu or " firewall raw" in i.menu]
    chains = sorted({(i.menu, i.top_of) for i in firewall_items if i.top_of and not i.absent})
    firewall = [position_block(menu, chain) for menu, chain in chains]
    firewall += [item_block(i) for i in firewall_items]

    tzsp = [item_block(i) for i in items if i.menu in ("/ip firewall mangle", "/tool sniffer")]
    if plan.tzsp == "none":
        tzsp = [["# not set up (--tzsp none)"]]
    logging = [item_block(i) for i in items if i.menu.startswith("/system logging")]
    if not logging:
        logging = [["# not set up ([scan] syslog is not configured)"]]
    table = "raw prerouting, before connection tracking" if plan.block_in == "raw" else "filter input and forward"
    return [
        (
            f"1. a group with only what address-list blocking over {login} needs, and a user limited to this host",
            account,
        ),
        (
            f"2. scan-detector logging, and drops of address list {plan.list_name} above every accept ({table})",
            firewall,
        ),
        (f"3. stream traffic to this host's tzspd (TZSP, UDP {plan.tzsp_port})", tzsp),
        ("4. send firewall log lines to this host (the [scan] syslog listener)", logging),
    ]


def render_provision(plan: ProvisionPlan) -> str:
    """The script to paste into the router's terminal or ``/import``; running it again changes nothing."""
    host = check_address(plan.this_host)
    lines = [
        f"# tzsp-ips: set up router {plan.router} ({plan.router_host}) for the IPS host {host}",
        "# Paste into the router's terminal as an administrator, or upload and /import it. Running it again",
        f"# adds nothing: it finds what it made by the comment {COMMENT!r} and sets back what differs.",
    ]
    for heading, blocks in script_blocks(plan):
        lines += ["", f"# {heading}"]
        for block in blocks:
            lines += block
    return "\n".join(lines) + "\n"


def exec_lines(plan: ProvisionPlan) -> list[str]:
    """The script as the single lines ``--apply`` runs one exec at a time (comments left out)."""
    out = []
    for _, blocks in script_blocks(plan):
        for block in blocks:
            code = [line for line in block if not line.lstrip().startswith("#")]
            if code:
                out.append(one_line(code))
    return out


def _api_service(plan: ProvisionPlan, host_prefix: str) -> list[list[str]]:
    """The API service, only for this host; for api-ssl a certificate first (without one RouterOS
    offers only anonymous DH, which the responder refuses)."""
    if not plan.api_tls:
        return [
            ["# the plain API (8728), only for this host: the password crosses the network unencrypted"],
            [f"/ip service set api address={host_prefix} disabled=no"],
        ]
    try:
        san = f"IP:{ipaddress.ip_address(plan.router_host)}"
    except ValueError:
        san = f"DNS:{plan.router_host}"
    return [
        ["# a certificate for api-ssl (8729), and the service only for this host"],
        [
            ":if ([:len [/certificate find where name=tzsp-ips-api]] = 0) do={",
            f"    /certificate add name=tzsp-ips-api common-name={quote_value(plan.router_host)} "
            f"subject-alt-name={quote_value(san)} days-valid=3650 key-usage=digital-signature,key-encipherment,tls-server",
            "    /certificate sign tzsp-ips-api",
            "}",
        ],
        [f"/ip service set api-ssl certificate=tzsp-ips-api address={host_prefix} disabled=no"],
        [f"# then on the IPS host: snort-bridge trust {plan.router}  (pins this certificate's SHA-256)"],
    ]
