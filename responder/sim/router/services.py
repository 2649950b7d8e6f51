"""``/ip service`` (the router's fixed set of services: no add, no remove) and ``/certificate``
(add, sign, remove), kept and printed so that a set-up script enabling api-ssl with a certificate
runs (manual "Services", "Certificates"). The simulator's own SSH and API servers are not
reconfigured by them: they listen where ``routeros-sim``/``SimRouter`` put them.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from responder.sim.router.printing import Field
from responder.sim.router.state import StateError
from responder.sim.router.tables import ArgumentError, MissingArguments, Table, parse_bool

# name, port, disabled by default (a v7 CHR's defaults; v6 also enables telnet, ftp and www)
_SERVICES = (
    ("telnet", 23, False),
    ("ftp", 21, False),
    ("www", 80, False),
    ("ssh", 22, False),
    ("www-ssl", 443, True),
    ("api", 8728, False),
    ("winbox", 8291, False),
    ("api-ssl", 8729, False),
)


def _invalid(name: str) -> ArgumentError:
    return ArgumentError(f"invalid value for argument {name}", kind="other")


@dataclass
class Service:
    number: int
    name: str
    port: int
    disabled: bool
    address: str = ""
    certificate: str = "none"
    defaults: dict[str, str] = field(default_factory=dict)

    def shown(self) -> dict[str, str]:
        return {
            "name": self.name,
            "port": str(self.port),
            "address": self.address,
            "certificate": self.certificate,
            "disabled": "yes" if self.disabled else "no",
        }


def default_services() -> list[Service]:
    services = [Service(n + 1, name, port, disabled) for n, (name, port, disabled) in enumerate(_SERVICES)]
    for service in services:
        service.defaults = service.shown()
    return services


@dataclass
class Certificate:
    number: int
    name: str
    values: dict[str, str]
    signed: bool = False


class ServiceTable(Table):
    legend = (("X", "disabled"), ("I", "invalid"))
    columns = (("NAME", "name"), ("PORT", "port"), ("ADDRESS", "address"), ("CERTIFICATE", "certificate"))

    def items(self) -> list:
        return list(self.state.services)

    def fields(self, item, flavour: str) -> list[Field]:
        shown = item.shown()
        return [Field(name, shown[name]) for name in ("name", "port", "address", "certificate")]

    def values(self, item, flavour: str) -> dict[str, object]:
        out: dict[str, object] = dict(item.shown())
        out["disabled"] = item.disabled
        return out

    def changed(self, item) -> list[tuple[str, str]]:
        """What ``export`` sets: the properties that differ from a fresh router's."""
        return [(k, v) for k, v in item.shown().items() if k != "name" and item.defaults.get(k) != v]

    def update(self, item, args: Mapping[str, str]) -> None:
        if "port" in args:
            if not args["port"].isdigit() or not 0 < int(args["port"]) < 65536:
                raise _invalid("port")
            item.port = int(args["port"])
        if "address" in args:
            parts = [p.strip() for p in args["address"].split(",") if p.strip()]
            try:
                item.address = ",".join(str(ipaddress.ip_network(p, strict=False)) for p in parts)
            except ValueError:
                raise _invalid("address") from None
        if "certificate" in args:
            wanted = args["certificate"]
            if wanted != "none" and not any(c.name == wanted for c in self.state.certificates):
                raise StateError("input does not match any value of certificate")
            item.certificate = wanted
        if "disabled" in args:
            item.disabled = parse_bool("disabled", args["disabled"])


class CertificateTable(Table):
    legend = (("K", "private-key"), ("T", "trusted"))
    columns = (("NAME", "name"), ("COMMON-NAME", "common-name"), ("FINGERPRINT", "fingerprint"))
    write_policies = frozenset({"write", "sensitive"})

    def items(self) -> list:
        return list(self.state.certificates)

    def flags(self, item) -> str:
        return "KT" if item.signed else ""

    def fields(self, item, flavour: str) -> list[Field]:
        out = [Field("name", item.name, True)] + [Field(k, v, True) for k, v in item.values.items()]
        if item.signed:
            digest = hashlib.sha256(f"{item.number}:{item.name}:{sorted(item.values.items())}".encode()).hexdigest()
            out.append(Field("fingerprint", digest))
        return out

    def add(self, args: Mapping[str, str], owner: str) -> object:
        if not args.get("name"):
            raise MissingArguments(["name"])
        if any(c.name == args["name"] for c in self.state.certificates):
            raise StateError("failure: certificate with the same name already exists")
        if "days-valid" in args and not args["days-valid"].isdigit():
            raise _invalid("days-valid")
        values = {k: v for k, v in args.items() if k != "name"}
        certificate = Certificate(self.state.take_rule_number(), args["name"], values)
        self.state.certificates.append(certificate)
        return certificate

    def sign(self, item) -> None:
        if item.signed:
            raise StateError("failure: certificate is already issued")
        item.signed = True

    def remove(self, item) -> None:
        if any(s.certificate == item.name for s in self.state.services):
            raise StateError("failure: certificate is in use")
        self.state.certificates.remove(item)


def service_table_for(state, menu: tuple[str, ...]) -> Table | None:
    if menu == ("ip", "service"):
        return ServiceTable(state)
    if menu == ("certificate",):
        return CertificateTable(state)
    return None
