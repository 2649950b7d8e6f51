"""Addresses the policy must never block, found at the edge: this host's own, and the routers'.

Linux: IPv4 from /proc/net/fib_trie (every "/32 host LOCAL" entry, plus the subnets' broadcast
addresses), IPv6 from /proc/net/if_inet6; anywhere: what the host name resolves to. Each source
that is missing or unreadable is skipped -- this only ever adds protection.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from bridge.events import IPAddress
from responder.config import RouterConfig


def host_addresses(fib_trie: str = "/proc/net/fib_trie", if_inet6: str = "/proc/net/if_inet6") -> list[IPAddress]:
    """This host's addresses (and its IPv4 subnets' broadcast addresses), sorted, without duplicates."""
    found: set[IPAddress] = set()
    found.update(_fib_trie_addresses(_read(fib_trie)))
    found.update(_if_inet6_addresses(_read(if_inet6)))
    found.update(_resolve(socket.gethostname()))
    return sorted(found, key=lambda a: (a.version, int(a)))


def router_addresses(routers: Iterable[RouterConfig], resolve: bool = True) -> list[IPAddress]:
    """The configured routers' addresses; host names are resolved when ``resolve``."""
    found: set[IPAddress] = set()
    for router in routers:
        try:
            found.add(ipaddress.ip_address(router.host))
        except ValueError:
            if resolve:
                found.update(_resolve(router.host))
    return sorted(found, key=lambda a: (a.version, int(a)))


def _fib_trie_addresses(text: str) -> set[IPAddress]:
    """Entries of the form "|-- a.b.c.d" followed by "/32 host LOCAL" or "/32 link BROADCAST"."""
    found: set[IPAddress] = set()
    previous = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("/32 ") and (line.endswith(" LOCAL") or line.endswith(" BROADCAST")):
            try:
                found.add(ipaddress.IPv4Address(previous))
            except ValueError:
                pass
        if line.startswith("|-- "):
            previous = line[4:].strip()
    return found


def _if_inet6_addresses(text: str) -> set[IPAddress]:
    found: set[IPAddress] = set()
    for line in text.splitlines():
        fields = line.split()
        if fields and len(fields[0]) == 32:
            try:
                found.add(ipaddress.IPv6Address(int(fields[0], 16)))
            except ValueError:
                pass
    return found


def _resolve(name: str) -> set[IPAddress]:
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return set()
    found: set[IPAddress] = set()
    for info in infos:
        try:
            found.add(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))
        except ValueError:
            pass
    return found


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""
