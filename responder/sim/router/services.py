"""``/ip service`` (the router's fixed set of services: no add, no remove) and ``/certificate``
(add, sign, remove), kept and printed so that a set-up script enabling api-ssl with a certificate
runs (manual "Services", "Certificates"). The simulator's own SSH and API servers are not
reconfigured by them: they listen where ``routeros-sim``/``SimRouter`` put them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
