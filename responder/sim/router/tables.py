"""One adapter per RouterOS table menu: what its items are, how they print, how add/set change them.

The interpreter runs the generic verbs (print, find, get, set, remove, enable, disable) over
these adapters, so each menu states only its own facts. Values handed to ``add``/``update``
are already evaluated to text.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence

from responder.routeros.duration import DurationError, format_clock, format_duration, parse_duration
from responder.sim.router.items import invalid_value
from responder.sim.router.printing import Field, format_date
from responder.sim.router.state import RouterState, StateError, format_id
from responder.sim.router.users import ALL_POLICIES, SCRIPT_POLICIES, parse_policy, parse_user_address


class MissingArguments(StateError):
    def __init__(self, names: Sequence[str]):
        super().__init__("Script Error: missing value(s) of argument(s) " + ",".join(names), kind="other")


def parse_bool(name: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("yes", "true"):
        return True
    if lowered in ("no", "false"):
        return False
    raise invalid_value(name)


def parse_timeout(text: str) -> float:
    try:
        return parse_duration(text)
    except DurationError:
        raise invalid_value("timeout") from None


def _assign(item, args: Mapping[str, str], converters: Mapping[str, Callable[[str], object]]) -> None:
    """``set``: each given property, converted, onto the item's attribute of the same name."""
    for name, convert in converters.items():
        if name in args:
            setattr(item, name, convert(args[name]))


def _yes(value: bool) -> str:
    return "yes" if value else "no"


class Table:
    """Defaults shared by the table menus; subclasses fill in the facts."""

    legend: tuple[tuple[str, str], ...] = ()
    columns: tuple[tuple[str, str], ...] = ()
    default_detail = False  # menus RouterOS prints in detail form by default (scripts, groups)
    write_policies = frozenset({"write"})
    booleans = frozenset({"disabled", "dynamic"})
    quiet_defaults: dict[str, str] = {}  # fields a plain print leaves out at these values (``print detail`` shows them)

    def __init__(self, state: RouterState):
        self.state = state

    # facts each table gives
    def items(self) -> list:
        raise NotImplementedError

    def item_id(self, item) -> str:
        return format_id(item.number)

    def name_of(self, item) -> str | None:
        return getattr(item, "name", None)

    def flags(self, item) -> str:
        return "X" if getattr(item, "disabled", False) else ""

    def comment(self, item) -> str | None:
        return getattr(item, "comment", "") or None

    def fields(self, item, flavour: str) -> list[Field]:
        raise NotImplementedError

    def values(self, item, flavour: str) -> dict[str, object]:
        """Typed properties for ``get``, ``find`` and ``as-value`` (besides ``.id``)."""
        out: dict[str, object] = {f.name: f.text for f in self.fields(item, flavour)}
        if self.comment(item):
            out["comment"] = self.comment(item)
        return out

    def add(self, args: Mapping[str, str], owner: str) -> object:
        raise StateError("failure: cannot add here")

    def update(self, item, args: Mapping[str, str]) -> None:
        raise StateError("failure: cannot change this")

    def remove(self, item) -> None:
        raise StateError("failure: cannot remove this")

    def move(self, items: list, before) -> None:
        raise StateError("failure: cannot move here")

    def enable(self, item, enabled: bool) -> None:
        self.update(item, {"disabled": "no" if enabled else "yes"})


class AddressListTable(Table):
    legend = (("X", "disabled"), ("D", "dynamic"))
    columns = (("LIST", "list"), ("ADDRESS", "address"), ("CREATION-TIME", "creation-time"), ("TIMEOUT", "timeout"))

    def __init__(self, state: RouterState, family: int):
        super().__init__(state)
        self.family = family

    def items(self) -> list:
        return self.state.entries(self.family)

    def name_of(self, item) -> str | None:
        return None

    def flags(self, item) -> str:
        return ("X" if item.disabled else "") + ("D" if item.dynamic else "")

    def _remaining(self, item) -> float | None:
        return None if item.deadline is None else max(0.0, item.deadline - self.state.now())

    def fields(self, item, flavour: str) -> list[Field]:
        out = [
            Field("list", item.list, True),
            Field("address", item.address),
            Field("creation-time", format_date(item.created, flavour)),
        ]
        remaining = self._remaining(item)
        if remaining is not None:
            out.append(Field("timeout", format_duration(remaining)))
        if flavour == "v7":
            out.append(Field("dynamic", _yes(item.dynamic)))
        return out

    def values(self, item, flavour: str) -> dict[str, object]:
        out: dict[str, object] = {
            "address": item.address,
            "creation-time": format_date(item.created, flavour),
            "dynamic": item.dynamic,
            "list": item.list,
        }
        if item.comment:
            out["comment"] = item.comment
        if item.disabled:
            out["disabled"] = True
        remaining = self._remaining(item)
        if remaining is not None:
            out["timeout"] = TimeValue(remaining)
        return out

    def add(self, args: Mapping[str, str], owner: str) -> object:
        missing = [name for name in ("list", "address") if not args.get(name)]
        if missing:
            raise MissingArguments(missing)
        timeout = parse_timeout(args["timeout"]) if args.get("timeout") else None
        return self.state.add_address(
            self.family,
            list_name=args["list"],
            address=args["address"],
            timeout=timeout,
            comment=args.get("comment", ""),
            disabled=parse_bool("disabled", args.get("disabled", "no")),
            dynamic=parse_bool("dynamic", args.get("dynamic", "no")),
        )

    def update(self, item, args: Mapping[str, str]) -> None:
        timeout = parse_timeout(args["timeout"]) if "timeout" in args else None
        disabled = parse_bool("disabled", args["disabled"]) if "disabled" in args else None
        self.state.update_address(
            self.family,
            item.number,
            list_name=args.get("list"),
            address=args.get("address"),
            timeout=timeout,
            comment=args.get("comment"),
            disabled=disabled,
        )

    def remove(self, item) -> None:
        self.state.remove_address(self.family, item.number)


class TimeValue:
    """A RouterOS ``time`` value; scripts print it as ``1d02:03:04``."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __str__(self) -> str:
        return format_clock(self.seconds)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TimeValue) and other.seconds == self.seconds


def _policy_text(policy: frozenset, universe: Sequence[str], negated: bool) -> str:
    names = [p for p in universe if p in policy]
    if negated:
        names += ["!" + p for p in universe if p not in policy]
    return ",".join(names)


class ScriptTable(Table):
    legend = (("I", "invalid"),)
    columns = (("NAME", "name"), ("OWNER", "owner"), ("RUN-COUNT", "run-count"))
    default_detail = True

    def items(self) -> list:
        return list(self.state.scripts.values())

    def fields(self, item, flavour: str) -> list[Field]:
        return [
            Field("name", item.name, True),
            Field("owner", item.owner, True),
            Field("policy", _policy_text(item.policy, SCRIPT_POLICIES, False)),
            Field("dont-require-permissions", "no"),
            Field("run-count", str(item.run_count)),
            Field("source", item.source, True),
        ]

    def add(self, args: Mapping[str, str], owner: str) -> object:
        policy = parse_policy(args["policy"]) if "policy" in args else None
        return self.state.add_script(
            args.get("name", ""), args.get("source", ""), args.get("owner") or owner, policy, args.get("comment", "")
        )

    def update(self, item, args: Mapping[str, str]) -> None:
        if "name" in args and args["name"] != item.name:
            if args["name"] in self.state.scripts:
                raise StateError("failure: item with such name already exists")
            del self.state.scripts[item.name]
            item.name = args["name"]
            self.state.scripts[item.name] = item
        _assign(item, args, {"source": str, "policy": parse_policy, "comment": str, "owner": str})

    def remove(self, item) -> None:
        del self.state.scripts[item.name]


class UserTable(Table):
    legend = (("X", "disabled"),)
    columns = (("NAME", "name"), ("GROUP", "group"), ("ADDRESS", "address"), ("LAST-LOGGED-IN", "last-logged-in"))
    write_policies = frozenset({"write", "policy"})

    def items(self) -> list:
        return list(self.state.users.values())

    def fields(self, item, flavour: str) -> list[Field]:
        address = ",".join(str(n) for n in item.address) if item.address else ""
        return [
            Field("name", item.name, True),
            Field("group", item.group, True),
            Field("address", address),
            Field("last-logged-in", ""),
        ]

    def add(self, args: Mapping[str, str], owner: str) -> object:
        if not args.get("name"):
            raise MissingArguments(["name"])
        user = self.state.add_user(
            args["name"],
            group=args.get("group", "read"),
            password=args.get("password", ""),
            address=args.get("address", ""),
            comment=args.get("comment", ""),
        )
        user.disabled = parse_bool("disabled", args.get("disabled", "no"))
        return user

    def update(self, item, args: Mapping[str, str]) -> None:
        if "group" in args:
            if args["group"] not in self.state.groups:
                raise StateError("input does not match any value of group")
            item.group = args["group"]
        _assign(
            item,
            args,
            {
                "password": str,
                "address": parse_user_address,
                "comment": str,
                "disabled": lambda text: parse_bool("disabled", text),
            },
        )
        if "name" in args and args["name"] != item.name:
            new = args["name"]
            if new in self.state.users or "+" in new:
                raise StateError("failure: user with the same name already exists")
            del self.state.users[item.name]
            for key in self.state.keys_of(item.name):
                key.user = new
            item.name = new
            self.state.users[new] = item

    def remove(self, item) -> None:
        del self.state.users[item.name]
        self.state.ssh_keys = [k for k in self.state.ssh_keys if k.user != item.name]


class _Group:
    """A group seen as a table item (the state keeps groups as name -> policy set)."""

    def __init__(self, number: int, name: str, policy: frozenset, comment: str = ""):
        self.number, self.name, self.policy = number, name, policy
        self.comment = comment


class GroupTable(Table):
    columns = (("NAME", "name"), ("POLICY", "policy"))
    default_detail = True
    write_policies = frozenset({"write", "policy"})

    def items(self) -> list:
        comments = self.state.group_comments
        return [
            _Group(n + 1, name, policy, comments.get(name, ""))
            for n, (name, policy) in enumerate(self.state.groups.items())
        ]

    def fields(self, item, flavour: str) -> list[Field]:
        return [
            Field("name", item.name, True),
            Field("policy", _policy_text(item.policy, ALL_POLICIES, True)),
            Field("skin", "default"),
        ]

    def add(self, args: Mapping[str, str], owner: str) -> object:
        if not args.get("name"):
            raise MissingArguments(["name"])
        self.state.add_group(args["name"], args.get("policy", ""), args.get("comment", ""))
        return [g for g in self.items() if g.name == args["name"]][0]

    def update(self, item, args: Mapping[str, str]) -> None:
        policy = set(self.state.groups[item.name])
        if "policy" in args:  # `group set` changes only the listed policies
            for part in (p.strip() for p in args["policy"].split(",") if p.strip()):
                name = part.lstrip("!")
                parse_policy(name)
                (policy.discard if part.startswith("!") else policy.add)(name)
        self.state.groups[item.name] = frozenset(policy)
        if "comment" in args:
            self.state.group_comments[item.name] = args["comment"]
        if "name" in args and args["name"] != item.name:
            if args["name"] in self.state.groups:
                raise StateError("failure: group with the same name already exists")
            self.state.groups[args["name"]] = self.state.groups.pop(item.name)
            if item.name in self.state.group_comments:
                self.state.group_comments[args["name"]] = self.state.group_comments.pop(item.name)
            for user in self.state.users.values():
                if user.group == item.name:
                    user.group = args["name"]

    def remove(self, item) -> None:
        if any(u.group == item.name for u in self.state.users.values()):
            raise StateError("failure: group is in use")
        del self.state.groups[item.name]
        self.state.group_comments.pop(item.name, None)


def parse_public_key(text: str) -> tuple[str, bytes, int, str]:
    """(type, blob, bits, comment) of an OpenSSH one-line key or a PKCS#1/SPKI PEM public key."""
    import paramiko
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    bad = StateError("unable to load key file (wrong format or bad passphrase)")
    text = text.strip()
    comment = ""
    if text.startswith("-----BEGIN"):
        try:
            public = serialization.load_pem_public_key(text.encode())
        except ValueError:
            raise bad from None
        if isinstance(public, ec.EllipticCurvePublicKey):
            raise bad
        line = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
        key_type, b64 = line.split()[:2]
    else:
        parts = text.split(None, 2)
        if len(parts) < 2:
            raise bad
        key_type, b64 = parts[0], parts[1]
        comment = parts[2] if len(parts) > 2 else ""
    if key_type not in ("ssh-rsa", "ssh-ed25519", "sk-ssh-ed25519@openssh.com"):
        raise bad
    try:
        blob = base64.b64decode(b64, validate=True)
        key = paramiko.PKey.from_type_string(key_type, blob) if key_type != "sk-ssh-ed25519@openssh.com" else None
    except Exception:
        raise bad from None
    bits = key.get_bits() if key is not None else 256
    if key_type == "ssh-rsa" and bits < 2048:
        raise StateError("keys smaller than 2048bit are not allowed")
    return key_type, blob, bits, comment


class SshKeyTable(Table):
    columns = (("USER", "user"), ("KEY-TYPE", "key-type"), ("BITS", "bits"), ("KEY-OWNER", "key-owner"))
    write_policies = frozenset({"write", "policy"})

    def items(self) -> list:
        return list(self.state.ssh_keys)

    def name_of(self, item) -> str | None:
        return None

    def comment(self, item) -> str | None:
        return None

    def fields(self, item, flavour: str) -> list[Field]:
        short = {"ssh-rsa": "rsa", "ssh-ed25519": "ed25519"}.get(item.key_type, "ed25519-sk")
        return [
            Field("user", item.user, True),
            Field("key-type", short),
            Field("bits", str(item.bits)),
            Field("key-owner", item.comment, True),
        ]

    def add(self, args: Mapping[str, str], owner: str) -> object:
        if not args.get("user") or not args.get("key"):
            raise MissingArguments([n for n in ("user", "key") if not args.get(n)])
        if args["key"].strip().startswith("-----BEGIN"):  # `add` takes the one-line form only
            raise StateError("unable to load key file (wrong format or bad passphrase)")
        key_type, blob, bits, comment = parse_public_key(args["key"])
        return self.state.add_ssh_key(args["user"], key_type, blob, args.get("comment", comment), bits)

    def import_file(self, args: Mapping[str, str]) -> object:
        name = args.get("public-key-file", "")
        if not args.get("user") or not name:
            raise MissingArguments([n for n in ("user", "public-key-file") if not args.get(n)])
        if name not in self.state.files:
            raise StateError("unable to load key file (wrong format or bad passphrase)")
        key_type, blob, bits, comment = parse_public_key(self.state.files[name])
        key = self.state.add_ssh_key(args["user"], key_type, blob, comment, bits)
        del self.state.files[name]  # RouterOS deletes the file once imported
        return key

    def remove(self, item) -> None:
        self.state.ssh_keys.remove(item)
