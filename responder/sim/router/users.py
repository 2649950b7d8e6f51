"""The simulated router's users, groups, SSH keys and scripts: the records and their policies.

Pure data and parsing; ``state.RouterState`` keeps them and checks names. Rules follow ROUTEROS.md §3-§4.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from responder.sim.router.items import StateError

ALL_POLICIES = (
    "local",
    "telnet",
    "ssh",
    "ftp",
    "reboot",
    "read",
    "write",
    "policy",
    "test",
    "winbox",
    "password",
    "web",
    "sniff",
    "sensitive",
    "api",
    "romon",
    "rest-api",
)
# Built-in groups as a fresh router has them (``read`` lacks write/policy, ``write`` lacks policy).
BUILTIN_GROUPS = {
    "full": frozenset(ALL_POLICIES),
    "read": frozenset(ALL_POLICIES) - {"write", "policy", "ftp", "sensitive", "sniff"},
    "write": frozenset(ALL_POLICIES) - {"policy", "sensitive"},
}
# Policies a script can carry (login kinds such as ssh/api make no sense for a script).
SCRIPT_POLICIES = ("ftp", "reboot", "read", "write", "policy", "test", "password", "sniff", "sensitive", "romon")

USERNAME_RE = re.compile(r"^([^+]+)(\+[0-9a-z]*)?$")


@dataclass
class User:
    name: str
    group: str
    password: str | None = None
    address: tuple[ipaddress._BaseNetwork, ...] | None = None  # None = from anywhere
    comment: str = ""
    disabled: bool = False
    number: int = 0

    def allows_peer(self, peer: str) -> bool:
        if not self.address:
            return True
        try:
            ip = ipaddress.ip_address(peer.split("%")[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return any(ip.version == net.version and ip in net for net in self.address)


@dataclass
class SshKey:
    number: int
    user: str
    key_type: str  # "ssh-rsa", "ssh-ed25519", ...
    key_blob: bytes
    comment: str = ""
    bits: int = 0


@dataclass
class Script:
    number: int
    name: str
    owner: str
    source: str
    policy: frozenset
    comment: str = ""
    run_count: int = 0


def parse_user_address(text: str) -> tuple[ipaddress._BaseNetwork, ...] | None:
    """``/user set u address=192.0.2.10/32,2001:db8::/64``; empty = no restriction."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        return None
    nets = []
    for part in parts:
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise StateError(f"invalid value for argument address: {part}", kind="other") from None
    return tuple(nets)


def parse_policy(text: str | Iterable[str]) -> frozenset:
    items = [p.strip() for p in (text.split(",") if isinstance(text, str) else text) if p.strip()]
    out = set()
    for item in items:
        name = item[1:] if item.startswith("!") else item
        if name not in ALL_POLICIES:
            raise StateError(f"invalid value for argument policy: {item}", kind="other")
        if not item.startswith("!"):
            out.add(name)
    return frozenset(out)


__all__ = [
    "ALL_POLICIES",
    "BUILTIN_GROUPS",
    "SCRIPT_POLICIES",
    "USERNAME_RE",
    "Script",
    "SshKey",
    "User",
    "parse_policy",
    "parse_user_address",
]
