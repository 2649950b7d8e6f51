"""The simulated router's memory: address lists, users, groups, scripts, globals, uptime.

Pure state with an injectable clock and no I/O; the records it keeps are in ``addresses`` and
``users``. Every front end (the SSH CLI today, an API server later) changes it through the same
methods while holding ``RouterState.lock``, so two front ends can share one router. Rules follow
ROUTEROS.md §2-§4.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from responder.routeros.duration import MAX_TIMEOUT_BY_FLAVOUR
from responder.sim.router.addresses import (
    AddressEntry,
    AddressEntryView,
    AddressTable,
    check_timeout,
    normalise_address,
)
from responder.sim.router.items import NoSuchItem, StateError, format_id, parse_id  # noqa: F401 -- re-exported
from responder.sim.router.users import (
    BUILTIN_GROUPS,
    SCRIPT_POLICIES,
    USERNAME_RE,
    Script,
    SshKey,
    User,
    parse_policy,
    parse_user_address,
)


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
        self.groups: dict[str, frozenset] = dict(BUILTIN_GROUPS)
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


__all__ = [
    "NoSuchItem",
    "RouterProfile",
    "RouterState",
    "StateError",
    "format_id",
    "parse_id",
]
