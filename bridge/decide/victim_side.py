"""Rules whose alert flows from the victim: the attacker is the alert's destination.

Most rules are written attacker -> victim, so the bridge names the source. Some report what the
victim's own host sent: a shell's banner or a reply leaking data from a server of ours to an
outside client (``$HOME_NET -> $EXTERNAL_NET``, ``flow:to_client``), a successful compromise
(``classtype:successful-admin``, ``successful-user``, ``successful-recon-*``, ``credential-theft``),
an infected host calling its controller (``trojan-activity``, ``malware-cnc``,
``command-and-control``, categories ``INDICATOR-COMPROMISE``, ``ATTACK_RESPONSE``, ``MALWARE-CNC``,
``MALWARE-BACKDOOR``). For those the source is our compromised host and the outside end is the
attacker: blocking the source would cut the victim off and leave its controller free (issue 27:
the Snort 3 community rule 1:2123, "Microsoft cmd.exe banner", from a reverse shell).

The rule header says which side the rule writer put each end on; the alert does not carry it.
``victim_side_rules`` reads rule files (pure, over lines) and returns the gid:sid of such rules;
``VICTIM_SIDE`` is that list for the public rule sets this project is tested with (Snort 2.9 and 3
community rules, ET Open for Snort 2.9), regenerated with ``python -m bridge.decide.victim_side FILE...``.
``policy.attacker`` in the configuration overrides it per rule.

Pure: no I/O but reading the shipped list once.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

# Header: action proto src_addr src_port direction dst_addr dst_port (options); commented rules count
# too (the community sets ship most rules commented out, for the admin to enable).
_RULE = re.compile(r"^\s*#?\s*(?:alert|drop|block|reject)\s+\S+\s+(\S+)\s+(\S+)\s+->\s+(\S+)\s+(\S+)\s*\((.*)\)\s*$")
_OPTION = re.compile(r'(\w+)\s*:\s*((?:"(?:[^"\\]|\\.)*")|[^;]*);')
_OURS = re.compile(r"^\$(HOME_NET|[A-Z0-9_]*_SERVERS?)$")  # $HOME_NET, $HTTP_SERVERS, $SMTP_SERVERS, ...
_VICTIM_CLASSTYPES = frozenset(
    {
        "successful-admin",
        "successful-user",
        "successful-recon-limited",
        "successful-recon-largescale",
        "credential-theft",
        "trojan-activity",
        "malware-cnc",
        "command-and-control",
    }
)
_VICTIM_CATEGORIES = re.compile(
    r"^(?:ET |GPL )?(INDICATOR-COMPROMISE|ATTACK[_-]RESPONSES?|MALWARE-CNC|MALWARE-BACKDOOR)\b"
)
_DNS_PORTS = frozenset({"53", "[53]"})  # a query for a bad name goes to a resolver, not to the attacker

SHIPPED = "victim_side.txt"


def _options(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in _OPTION.findall(text + ";"):
        found.setdefault(name.lower(), value.strip().strip('"'))
    return found


def why_victim_side(line: str) -> tuple[str, str] | None:
    """("gid:sid", why) when ``line`` is a rule from our side to $EXTERNAL_NET that reports on our host, else None.

    ``why``: "to_client" (a reply from our server), the classtype, or the message's category."""
    match = _RULE.match(line)
    if not match:
        return None
    src, _sport, dst, dport, body = match.groups()
    if not _OURS.match(src) or dst != "$EXTERNAL_NET" or dport in _DNS_PORTS:
        return None
    options = _options(body)
    sid = options.get("sid", "")
    if not sid.isdigit():
        return None
    gid = options.get("gid", "1")
    flow = options.get("flow", "").replace(" ", "").split(",")
    classtype = options.get("classtype", "")
    category = _VICTIM_CATEGORIES.match(options.get("msg", ""))
    if "to_client" in flow or "from_server" in flow:
        why = "to_client"  # a reply from our server to an outside client
    elif classtype in _VICTIM_CLASSTYPES:
        why = classtype
    elif category:
        why = category.group(1)
    else:
        return None
    return f"{gid}:{sid}", why


def victim_side_rules(lines: Iterable[str]) -> dict[str, str]:
    """{gid:sid: why} of every victim-side rule among ``lines`` (rule files, concatenated)."""
    found: dict[str, str] = {}
    for line in lines:
        hit = why_victim_side(line)
        if hit is not None:
            found.setdefault(*hit)
    return found


@lru_cache(maxsize=1)
def shipped() -> frozenset[str]:
    """The gid:sid list shipped beside this module (public rule sets)."""
    text = resources.files(__package__).joinpath(SHIPPED).read_text()
    return frozenset(line.split()[0] for line in text.splitlines() if line.strip() and not line.startswith("#"))


def main(argv: list[str]) -> int:
    found: dict[str, str] = {}
    for path in argv:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for key, why in victim_side_rules(handle).items():
                found.setdefault(key, why)
    print("# gid:sid of rules whose alert flows from the victim (bridge/decide/victim_side.py); generated from:")
    for path in argv:
        print(f"#   {path.rsplit('/', 1)[-1]}")
    print("# (the public rule sets of tests/data/rules/; their sources and licences: tests/data/rules/SOURCES.md)")
    for key in sorted(found, key=lambda k: tuple(int(part) for part in k.split(":"))):
        print(f"{key}\t{found[key]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
