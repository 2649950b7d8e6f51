"""Snort 3's named alert fields (alert_json and alert_csv share the names) -> Alert.

Snort 2's alert_csv names are mapped onto these names first (see ``SNORT2_NAMES``), so one
function turns any field set, in any order, with any fields missing, into an Alert.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Mapping, Optional

from bridge.events import Alert, Origin

from .common import (
    PORT_PROTOCOLS,
    Clock,
    UnparsableLine,
    as_int,
    parse_address,
    parse_port,
    parse_snort_time,
    shown,
    split_endpoint,
)

# Snort 2 alert_csv field name -> the Snort 3 name for the same thing
SNORT2_NAMES = {
    "sig_generator": "gid",
    "sig_id": "sid",
    "sig_rev": "rev",
    "src": "src_addr",
    "srcport": "src_port",
    "dst": "dst_addr",
    "dstport": "dst_port",
    "tcpflags": "tcp_flags",
    "icmptype": "icmp_type",
}

_RULE = re.compile(r"(\d{1,10}):(\d{1,10}):(\d{1,10})", re.ASCII)
_TCP_FLAGS = re.compile(r"[*12CEUAPRSF]{8}", re.ASCII)
_DIRECTIONS = frozenset({"C2S", "S2C", "UNK"})
_FRACTION = re.compile(r"\.(\d{1,6})$", re.ASCII)


def _text(fields: Mapping[str, object], name: str) -> str:
    value = fields.get(name)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise UnparsableLine(f"bad {name} {shown(str(value))}")
    return str(value).strip()


def _rule_id(fields: Mapping[str, object]) -> tuple:
    rule = _text(fields, "rule")
    if rule:
        match = _RULE.fullmatch(rule)
        if match is None:
            raise UnparsableLine(f"bad rule {shown(rule)}")
        return tuple(int(part) for part in match.groups())
    sid = _text(fields, "sid")
    if not sid:
        raise UnparsableLine("no rule or sid field")
    gid = _text(fields, "gid")
    rev = _text(fields, "rev")
    return (as_int(gid, "gid") if gid else 1, as_int(sid, "sid"), as_int(rev, "rev") if rev else 0)


def _endpoint(fields: Mapping[str, object], side: str, with_port: Optional[bool]):
    """(address, port) of one side from ``src_addr``/``src_port`` or, failing those, ``src_ap``."""
    address_text = _text(fields, f"{side}_addr")
    port_text = _text(fields, f"{side}_port")
    address = parse_address(address_text)
    port = parse_port(port_text) if port_text else None
    ap = _text(fields, f"{side}_ap")
    if ap:
        ap_address, ap_port = split_endpoint(ap, True)  # "%s:%u": always a port, 0 when none
        if not address_text:
            address = ap_address
        if port is None and (with_port or (with_port is None and ap_port)):
            port = ap_port
    return address, port


def _time(fields: Mapping[str, object], engine: str, clock: Clock) -> Optional[datetime]:
    stamp = _text(fields, "timestamp")
    seconds = _text(fields, "seconds")
    if seconds:
        # epoch seconds are exact; the printed timestamp adds the microseconds
        fraction = _FRACTION.search(stamp)
        micro = int(fraction.group(1).ljust(6, "0")) if fraction else 0
        try:
            return datetime.fromtimestamp(as_int(seconds, "seconds"), timezone.utc) + timedelta(microseconds=micro)
        except (OverflowError, OSError, ValueError):
            raise UnparsableLine(f"bad seconds {shown(seconds)}") from None
    if stamp:
        return parse_snort_time(stamp, engine, clock)
    return None


def alert_from_fields(
    fields: Mapping[str, object], fmt: str, origin: Origin, engine: str, clock: Clock, msg: Optional[str] = None
) -> Alert:
    gid, sid, rev = _rule_id(fields)
    proto = _text(fields, "proto") or None
    with_port = None if proto is None else proto.upper() in PORT_PROTOCOLS
    src, sport = _endpoint(fields, "src", with_port)
    dst, dport = _endpoint(fields, "dst", with_port)
    priority = _text(fields, "priority")
    classification = _text(fields, "class")
    direction = _text(fields, "dir") or None
    if direction is not None and direction not in _DIRECTIONS:
        raise UnparsableLine(f"bad dir {shown(direction)}")
    tcp_flags = _text(fields, "tcp_flags") or None
    if tcp_flags is not None and _TCP_FLAGS.fullmatch(tcp_flags) is None:
        raise UnparsableLine(f"bad tcp_flags {shown(tcp_flags)}")
    icmp_type = _text(fields, "icmp_type")
    return Alert(
        gid=gid,
        sid=sid,
        rev=rev,
        msg=_text(fields, "msg") if msg is None else msg,
        format=fmt,
        origin=origin,
        priority=as_int(priority, "priority") if priority else None,
        classification=classification if classification and classification != "none" else None,
        proto=proto,
        src=src,
        sport=sport,
        dst=dst,
        dport=dport,
        time=_time(fields, engine, clock),
        engine=engine,
        direction=direction,
        tcp_flags=tcp_flags,
        icmp_type=as_int(icmp_type, "icmp_type") if icmp_type else None,
    )
