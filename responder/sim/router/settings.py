"""``/tool sniffer``: one set of settings (``set``, ``print``, ``get``) and ``start``/``stop``
(manual "Packet Sniffer"; ROUTEROS.md §6). The simulator keeps and checks them; it sends no TZSP.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from responder.sim.router.items import invalid_value

_BOOLEANS = ("only-headers", "memory-scroll", "streaming-enabled", "filter-stream")
_DIRECTIONS = ("any", "rx", "tx")
TZSP_PORT = 37008


def parse_streaming_server(text: str, flavour: str) -> str:
    """``IP``, ``IP:port`` or ``[v6]:port`` (v7; the manual's form) as the router prints it."""
    text = text.strip()
    host, port = text, TZSP_PORT
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise invalid_value("streaming-server")
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        if not port_text.isdigit():
            raise invalid_value("streaming-server")
        port = int(port_text)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise invalid_value("streaming-server") from None
    if not 0 < port < 65536:
        raise invalid_value("streaming-server")
    if flavour == "v6":
        return str(address)  # v6 has streaming-server=IP and always port 37008 (manual, v6 wiki)
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


class SnifferSettings:
    def __init__(self, flavour: str):
        self.flavour = flavour
        self.running = False
        self.values: dict[str, str] = {
            "only-headers": "no",
            "memory-limit": "100KiB",
            "memory-scroll": "yes",
            "file-name": "",
            "file-limit": "1000KiB",
            "streaming-enabled": "no",
            "streaming-server": "0.0.0.0:37008" if flavour == "v7" else "0.0.0.0",
            "filter-stream": "no",
            "filter-interface": "",
            "filter-mac-address": "",
            "filter-mac-protocol": "",
            "filter-ip-address": "",
            "filter-ipv6-address": "",
            "filter-ip-protocol": "",
            "filter-port": "",
            "filter-direction": "any",
            "filter-operator-between-entries": "or",
            "max-packet-size": "2048",
        }
        self.defaults = dict(self.values)

    def set(self, args: Mapping[str, str]) -> None:
        new = dict(self.values)
        for name, text in args.items():
            if name not in new:
                raise invalid_value(name)
            if name in _BOOLEANS:
                lowered = text.lower()
                if lowered not in ("yes", "no", "true", "false"):
                    raise invalid_value(name)
                text = "yes" if lowered in ("yes", "true") else "no"
            elif name == "streaming-server":
                text = parse_streaming_server(text, self.flavour)
            elif name == "filter-direction" and text not in _DIRECTIONS:
                raise invalid_value(name)
            elif name == "max-packet-size" and not text.isdigit():
                raise invalid_value(name)
            new[name] = text
        self.values = new

    def shown(self) -> list[tuple[str, str]]:
        return list(self.values.items()) + [("running", "yes" if self.running else "no")]

    def changed(self) -> list[tuple[str, str]]:
        """What ``export`` writes: the settings that differ from a fresh router's."""
        return [(k, v) for k, v in self.values.items() if self.defaults[k] != v]
