"""Table adapters for ``/ip service`` and ``/certificate`` (the facts live in ``services``)."""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping

from responder.sim.router.items import StateError
from responder.sim.router.printing import Field
from responder.sim.router.services import Certificate
from responder.sim.router.tables import MissingArguments, Table, invalid_value, parse_bool


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
                raise invalid_value("port")
            item.port = int(args["port"])
        if "address" in args:
            parts = [p.strip() for p in args["address"].split(",") if p.strip()]
            try:
                item.address = ",".join(str(ipaddress.ip_network(p, strict=False)) for p in parts)
            except ValueError:
                raise invalid_value("address") from None
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
            raise invalid_value("days-valid")
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
