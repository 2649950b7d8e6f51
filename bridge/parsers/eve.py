"""Suricata eve.json alert events (``event_type: alert``).

    {"timestamp":"2017-04-07T22:24:37.251547+0100","event_type":"alert","src_ip":"192.168.2.14","src_port":50096,
     "dest_ip":"209.53.113.5","dest_port":80,"proto":"TCP","direction":"to_server",
     "alert":{"action":"allowed","gid":1,"signature_id":2018358,"rev":10,"signature":"...","category":"...","severity":2}, ...}

``severity`` is Suricata's priority (1 = highest, as in Snort); ``category`` is the
classtype's description. Other event types (flow, http, dns, stats, ...) are not alerts.
"""

from __future__ import annotations

from collections.abc import Mapping

from bridge.events import Alert, Origin

from .common import (
    LOCAL,
    Clock,
    UnparsableLine,
    as_int,
    parse_address,
    parse_iso_time,
    parse_port,
    shown,
)
from .json_object import load_object

_PORT_PROTOCOLS = frozenset({"TCP", "UDP", "SCTP"})
_DIRECTIONS = {"to_server": "C2S", "to_client": "S2C"}


def _string(obj: Mapping[str, object], name: str) -> str:
    value = obj.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UnparsableLine(f"bad {name} {shown(str(value))}")
    return value


def _optional_int(obj: Mapping[str, object], name: str) -> int | None:
    value = obj.get(name)
    return None if value is None else as_int(value, name)


def _port(obj: Mapping[str, object], name: str, proto: str) -> int | None:
    value = obj.get(name)
    if value is None or proto not in _PORT_PROTOCOLS:
        return None
    return parse_port(str(as_int(value, name)))


def _direction(obj: Mapping[str, object]) -> str | None:
    """Suricata 7 says it outright; older versions only through the flow's own tuple."""
    direction = obj.get("direction")
    if isinstance(direction, str) and direction in _DIRECTIONS:
        return _DIRECTIONS[direction]
    flow = obj.get("flow")
    if isinstance(flow, dict) and isinstance(flow.get("src_ip"), str) and obj.get("src_ip"):
        return "C2S" if flow["src_ip"] == obj["src_ip"] else "S2C"
    return None


def alert_from_eve(obj: Mapping[str, object], origin: Origin, clock: Clock = LOCAL) -> Alert:
    if obj.get("event_type") != "alert":
        raise UnparsableLine("not an alert event", noise=True)
    alert = obj.get("alert")
    if not isinstance(alert, dict) or "signature_id" not in alert:
        raise UnparsableLine("alert event without alert.signature_id")
    proto = _string(obj, "proto").upper()
    stamp = _string(obj, "timestamp")
    return Alert(
        gid=as_int(alert.get("gid", 1), "gid"),
        sid=as_int(alert["signature_id"], "signature_id"),
        rev=as_int(alert.get("rev", 0), "rev"),
        msg=_string(alert, "signature"),
        format="eve",
        origin=origin,
        priority=_optional_int(alert, "severity"),
        classification=_string(alert, "category") or None,
        proto=proto or None,
        src=parse_address(_string(obj, "src_ip")),
        sport=_port(obj, "src_port", proto),
        dst=parse_address(_string(obj, "dest_ip")),
        dport=_port(obj, "dest_port", proto),
        time=parse_iso_time(stamp, clock) if stamp else None,
        engine="suricata",
        direction=_direction(obj),
        icmp_type=_optional_int(obj, "icmp_type"),
    )


def parse_eve(line: str, origin: Origin, clock: Clock = LOCAL) -> Alert:
    return alert_from_eve(load_object(line), origin, clock)
