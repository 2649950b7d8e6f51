"""The simulated router's memory: address lists, users, groups, scripts, globals, uptime.

Pure state with an injectable clock and no I/O. Every front end (the SSH CLI today, an API
server later) changes it through the same methods while holding ``RouterState.lock``, so two
front ends can share one router. Rules follow ROUTEROS.md §2-§4.
"""

from __future__ import annotations

import heapq
import ipaddress
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from responder.routeros.duration import MAX_TIMEOUT_BY_FLAVOUR, MAX_TIMEOUT_SECONDS, format_range_limit

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
_BUILTIN_GROUPS = {
    "full": frozenset(ALL_POLICIES),
    "read": frozenset(ALL_POLICIES) - {"write", "policy", "ftp", "sensitive", "sniff"},
    "write": frozenset(ALL_POLICIES) - {"policy", "sensitive"},
}
# Policies a script can carry (login kinds such as ssh/api make no sense for a script).
SCRIPT_POLICIES = ("ftp", "reboot", "read", "write", "policy", "test", "password", "sniff", "sensitive", "romon")

_DNS_NAME_RE = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?$")
USERNAME_RE = re.compile(r"^([^+]+)(\+[0-9a-z]*)?$")


class StateError(Exception):
    """A refusal the router prints as-is (``failure: already have such entry``, ``no such item``)."""

    def __init__(self, text: str, *, kind: str = "other"):
        super().__init__(text)
        self.text = text
        self.kind = kind


class NoSuchItem(StateError):
    def __init__(self) -> None:
        super().__init__("no such item", kind="no-such-item")


# ----------------------------------------------------------------------------- addresses


def normalise_address(text: str, family: int) -> str:
    """The address as the router stores and prints it (ROUTEROS.md §2 "Normalisation").

    Host bits are cleared, an IPv4 /32 is bare, an IPv4 range that is exactly one prefix
    becomes the prefix, an IPv6 address without prefix becomes /128, and anything else that
    looks like a host name is kept as a DNS name. Raises StateError otherwise.
    """
    text = text.strip()
    if family == 4:
        if "-" in text:
            ranged = _normalise_v4_range(text)
            if ranged is not None:
                return ranged
        try:
            net = ipaddress.IPv4Network(text, strict=False)
        except ValueError:
            return _dns_name(text)
        return str(net.network_address) if net.prefixlen == 32 else str(net)
    if "-" in text and ":" in text:
        raise StateError(f"failure: {text} is not a valid dns name")
    try:
        net6 = ipaddress.IPv6Network(text, strict=False)
    except ValueError:
        return _dns_name(text)
    return str(net6)


def _normalise_v4_range(text: str) -> str | None:
    """None when ``text`` is not two IPv4 addresses around a dash (then it may be a DNS name)."""
    first, _, last = text.partition("-")
    try:
        low, high = ipaddress.IPv4Address(first.strip()), ipaddress.IPv4Address(last.strip())
    except ValueError:
        return None
    if low > high:
        raise StateError(f"failure: {text} is not a valid dns name")
    nets = list(ipaddress.summarize_address_range(low, high))
    if len(nets) == 1:
        net = nets[0]
        return str(net.network_address) if net.prefixlen == 32 else str(net)
    return f"{low}-{high}"


def _dns_name(text: str) -> str:
    if ":" in text or not _DNS_NAME_RE.match(text):
        raise StateError(f"failure: {text} is not a valid dns name")
    return text.lower()


@dataclass
class AddressEntry:
    number: int  # internal id; printed as ``*HEX``
    list: str
    address: str  # normalised
    comment: str = ""
    disabled: bool = False
    dynamic: bool = False
    deadline: float | None = None  # clock time the router removes it; None = no timeout
    created: float = 0.0

    @property
    def id(self) -> str:
        return format_id(self.number)


@dataclass(frozen=True)
class AddressEntryView:
    """What callers (tests, API server) get: a snapshot, remaining timeout in seconds."""

    id: str
    list: str
    address: str
    comment: str
    disabled: bool
    dynamic: bool
    timeout: float | None
    created: float


def format_id(number: int) -> str:
    return f"*{number:X}"


def parse_id(text: str) -> int | None:
    if len(text) >= 2 and text[0] == "*":
        try:
            return int(text[1:], 16)
        except ValueError:
            return None
    return None


# ----------------------------------------------------------------------------- users & scripts


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


# ----------------------------------------------------------------------------- the router


@dataclass(frozen=True)
class RouterProfile:
    """What ``/system resource`` reports and which CLI dialect the router speaks."""

    flavour: str = "v7"
    version: str = ""
    board_name: str = "CHR"
    architecture: str = "x86_64"

    def __post_init__(self) -> None:
        if self.flavour not in ("v6", "v7"):
            raise ValueError(f"flavour must be v6 or v7, got {self.flavour!r}")
        if not self.version:
            object.__setattr__(self, "version", "7.16.2 (stable)" if self.flavour == "v7" else "6.49.17 (long-term)")

    @property
    def max_timeout(self) -> float:
        """The longest address-list timeout this flavour takes (see responder.routeros.duration)."""
        return float(MAX_TIMEOUT_BY_FLAVOUR[self.flavour])


class AddressTable:
    """The entries of one family, indexed by number and by (list, address), expiring off a heap."""

    def __init__(self) -> None:
        self.by_number: dict[int, AddressEntry] = {}  # insertion order = print order
        self.by_key: dict[tuple[str, str], int] = {}
        self._deadlines: list[tuple[float, int]] = []  # (deadline, number); stale pairs are skipped
        self.next_number = 1

    def insert(self, entry: AddressEntry) -> None:
        self.by_number[entry.number] = entry
        self.by_key[(entry.list, entry.address)] = entry.number
        self.next_number = max(self.next_number, entry.number + 1)
        self.arm(entry)

    def arm(self, entry: AddressEntry) -> None:
        if entry.deadline is not None:
            heapq.heappush(self._deadlines, (entry.deadline, entry.number))

    def holds(self, list_name: str, address: str) -> bool:
        return (list_name, address) in self.by_key

    def discard(self, entry: AddressEntry) -> None:
        self.by_number.pop(entry.number, None)
        if self.by_key.get((entry.list, entry.address)) == entry.number:
            del self.by_key[(entry.list, entry.address)]

    def rekey(self, entry: AddressEntry, list_name: str, address: str) -> None:
        """``set list=/address=``: same number, same place in print order."""
        if self.by_key.get((entry.list, entry.address)) == entry.number:
            del self.by_key[(entry.list, entry.address)]
        entry.list, entry.address = list_name, address
        self.by_key[(list_name, address)] = entry.number

    def expire(self, now: float) -> None:
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, number = heapq.heappop(self._deadlines)
            entry = self.by_number.get(number)
            if entry is not None and entry.deadline == deadline:
                self.discard(entry)

    def drop_dynamic(self) -> None:
        for entry in [e for e in self.by_number.values() if e.dynamic]:
            self.discard(entry)
        self._deadlines = []


class RouterState:
    """All router memory. Hold ``lock`` around any sequence of calls that must be atomic."""

    def __init__(
        self,
        *,
        profile: RouterProfile = RouterProfile(),
        clock: Callable[[], float] = time.time,
        identity: str = "MikroTik",
    ):
        self.profile = profile
        self.clock = clock
        self.identity = identity
        self.lock = threading.RLock()
        self.boot_time = clock()
        self.addresses: dict[int, AddressTable] = {4: AddressTable(), 6: AddressTable()}
        self.groups: dict[str, frozenset] = dict(_BUILTIN_GROUPS)
        self.group_comments: dict[str, str] = {}
        self.users: dict[str, User] = {}
        self.ssh_keys: list[SshKey] = []
        self.scripts: dict[str, Script] = {}
        self.globals: dict[tuple[str, str], object] = {}
        self.files: dict[str, str] = {}  # what `/file` would hold, for `ssh-keys import`
        self.log: list[str] = []  # `/log` lines, e.g. "script error: ..."
        self._next_number = 1  # users, keys, scripts
        from responder.sim.router.firewall import Firewall  # (imported here: those modules build on this one)
        from responder.sim.router.remote_log import Logging
        from responder.sim.router.services import default_services
        from responder.sim.router.settings import SnifferSettings

        self.firewall = {4: Firewall(), 6: Firewall()}  # /ip and /ipv6 firewall filter, with conntrack
        self.logging = Logging()  # /system logging rules and actions
        self.rule_lists: dict[tuple[int, str], list] = {}  # (family, "raw" | "mangle") -> rules, in order
        self.sniffer = SnifferSettings(profile.flavour)  # /tool sniffer
        self.services = default_services()  # /ip service
        self.certificates: list = []  # /certificate
        self._next_rule = 1

    # -- time -----------------------------------------------------------------------------
    def now(self) -> float:
        return self.clock()

    def uptime(self) -> float:
        return max(0.0, self.clock() - self.boot_time)

    def reboot(self) -> None:
        """Dynamic entries and globals live in RAM: gone. Static config stays; uptime restarts."""
        with self.lock:
            for table in self.addresses.values():
                table.drop_dynamic()
            self.globals.clear()
            self.logging.memory.clear()  # /log lives in RAM too
            self.boot_time = self.clock()

    def take_rule_number(self) -> int:
        number, self._next_rule = self._next_rule, self._next_rule + 1
        return number

    def _take_number(self) -> int:
        number = self._next_number
        self._next_number += 1
        return number

    # -- address lists --------------------------------------------------------------------
    def expire(self) -> None:
        """Drop dynamic entries whose countdown ended (done lazily before every look)."""
        now = self.clock()
        for table in self.addresses.values():
            table.expire(now)

    def entries(self, family: int) -> list[AddressEntry]:
        self.expire()
        return list(self.addresses[family].by_number.values())

    def view(self, entry: AddressEntry) -> AddressEntryView:
        remaining = None if entry.deadline is None else max(0.0, entry.deadline - self.clock())
        return AddressEntryView(
            entry.id, entry.list, entry.address, entry.comment, entry.disabled, entry.dynamic, remaining, entry.created
        )

    def find_entry(self, family: int, number: int) -> AddressEntry:
        self.expire()
        entry = self.addresses[family].by_number.get(number)
        if entry is None:
            raise NoSuchItem()
        return entry

    def add_address(
        self,
        family: int,
        *,
        list_name: str,
        address: str,
        timeout: float | None = None,
        comment: str = "",
        disabled: bool = False,
        dynamic: bool = False,
    ) -> AddressEntry:
        if not list_name:
            raise StateError("failure: list name must be set")
        normalised = normalise_address(address, family)
        check_timeout(timeout, self.profile.max_timeout)
        self.expire()
        table = self.addresses[family]
        if table.holds(list_name, normalised):
            raise StateError("failure: already have such entry", kind="duplicate")
        now = self.clock()
        has_timeout = timeout is not None and timeout > 0
        entry = AddressEntry(
            number=table.next_number,
            list=list_name,
            address=normalised,
            comment=comment,
            disabled=disabled,
            dynamic=dynamic or has_timeout,
            deadline=now + timeout if has_timeout else None,
            created=now,
        )
        table.insert(entry)
        return entry

    def update_address(
        self,
        family: int,
        number: int,
        *,
        list_name: str | None = None,
        address: str | None = None,
        timeout: float | None = None,
        comment: str | None = None,
        disabled: bool | None = None,
    ) -> AddressEntry:
        """``set``: a timeout re-arms the countdown from now (scripts use it to refresh)."""
        entry = self.find_entry(family, number)
        new_list = entry.list if list_name is None else list_name
        new_address = entry.address if address is None else normalise_address(address, family)
        table = self.addresses[family]
        moved = (new_list, new_address) != (entry.list, entry.address)
        if moved and table.holds(new_list, new_address):
            raise StateError("failure: already have such entry", kind="duplicate")
        check_timeout(timeout, self.profile.max_timeout)
        if moved:
            table.rekey(entry, new_list, new_address)
        if comment is not None:
            entry.comment = comment
        if disabled is not None:
            entry.disabled = disabled
        if timeout is not None:
            # Unverified on real routers for a static entry; here it becomes dynamic with the timeout.
            if timeout > 0:
                entry.deadline = self.clock() + timeout
                entry.dynamic = True
                table.arm(entry)
            else:
                entry.deadline = None
        return entry

    def remove_address(self, family: int, number: int) -> None:
        self.addresses[family].discard(self.find_entry(family, number))

    # -- users ----------------------------------------------------------------------------
    def add_group(self, name: str, policy: str | Iterable[str], comment: str = "") -> None:
        if name in self.groups:
            raise StateError("failure: group with the same name already exists")
        self.groups[name] = parse_policy(policy)
        if comment:
            self.group_comments[name] = comment

    def add_user(
        self, name: str, *, group: str, password: str | None = None, address: str = "", comment: str = ""
    ) -> User:
        if not name or "+" in name:
            raise StateError("failure: user name may not contain '+'" if "+" in name else "failure: name not set")
        if name in self.users:
            raise StateError("failure: user with the same name already exists")
        if group not in self.groups:
            raise StateError("input does not match any value of group")
        user = User(
            name=name,
            group=group,
            password=password,
            address=parse_user_address(address),
            comment=comment,
            number=self._take_number(),
        )
        self.users[name] = user
        return user

    def policies_of(self, user_name: str) -> frozenset:
        user = self.users.get(user_name)
        return self.groups.get(user.group, frozenset()) if user else frozenset()

    def keys_of(self, user_name: str) -> list[SshKey]:
        return [k for k in self.ssh_keys if k.user == user_name]

    def add_ssh_key(self, user_name: str, key_type: str, blob: bytes, comment: str = "", bits: int = 0) -> SshKey:
        if user_name not in self.users:
            raise StateError("input does not match any value of user")
        key = SshKey(self._take_number(), user_name, key_type, blob, comment, bits)
        self.ssh_keys.append(key)  # real routers do not deduplicate keys either
        return key

    def login_name(self, login: str) -> str | None:
        """``admin+ct80w`` -> ``admin`` (the ``+`` parameters only tune the terminal)."""
        match = USERNAME_RE.match(login)
        return match.group(1) if match else None

    # -- scripts and globals --------------------------------------------------------------
    def add_script(
        self, name: str, source: str, owner: str, policy: Iterable[str] | None = None, comment: str = ""
    ) -> Script:
        if not name:
            raise StateError("failure: name not set")
        if name in self.scripts:
            raise StateError("failure: item with such name already exists")
        if policy is None:
            policy = self.policies_of(owner) & frozenset(SCRIPT_POLICIES)
        script = Script(self._take_number(), name, owner, source, frozenset(policy), comment)
        self.scripts[name] = script
        return script

    def get_global(self, user: str, name: str) -> object:
        return self.globals.get((user, name))

    def set_global(self, user: str, name: str, value: object) -> None:
        self.globals[(user, name)] = value


def check_timeout(timeout: float | None, limit: float = MAX_TIMEOUT_SECONDS) -> None:
    if timeout is not None and not 0 <= timeout <= limit:
        raise StateError(
            f"value of timeout is out of range (00:00:00 .. {format_range_limit(limit)})", kind="out-of-range"
        )


__all__ = [
    "ALL_POLICIES",
    "SCRIPT_POLICIES",
    "AddressEntry",
    "AddressTable",
    "AddressEntryView",
    "NoSuchItem",
    "RouterProfile",
    "RouterState",
    "Script",
    "SshKey",
    "StateError",
    "User",
    "check_timeout",
    "format_id",
    "normalise_address",
    "parse_id",
    "parse_policy",
    "parse_user_address",
]
