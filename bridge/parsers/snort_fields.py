"""Snort 3's named alert fields (alert_json and alert_csv share the names) -> Alert.

Snort 2's alert_csv names are mapped onto these names first (see ``SNORT2_NAMES``), so one
function turns any field set, in any order, with any fields missing, into an Alert.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone

from bridge.events import Alert, IPAddress, Origin

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
    if type(value) is str:  # the common case first
        return value.strip()
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise UnparsableLine(f"bad {name} {shown(str(value))}")
    return str(value).strip()


def _number(fields: Mapping[str, object], name: str) -> int | None:
    """An unsigned 32-bit field: a JSON number or digits; None when absent or empty."""
    value = fields.get(name)
    if type(value) is int and 0 <= value <= 0xFFFFFFFF:  # alert_json's own numbers: no text round trip
        return value
    text = _text(fields, name)
    return as_int(text, name) if text else None


def _port(fields: Mapping[str, object], name: str) -> int | None:
    value = fields.get(name)
    if type(value) is int and 0 <= value <= 65535:
        return value
    text = _text(fields, name)
    return parse_port(text) if text else None


def _rule_id(fields: Mapping[str, object]) -> tuple:
    rule = _text(fields, "rule")
    if rule:
        match = _RULE.fullmatch(rule)
        if match is None:
            raise UnparsableLine(f"bad rule {shown(rule)}")
        return tuple(int(part) for part in match.groups())
    sid = _number(fields, "sid")
    if sid is None:
        raise UnparsableLine("no rule or sid field")
    gid = _number(fields, "gid")
    rev = _number(fields, "rev")
    return (1 if gid is None else gid, sid, 0 if rev is None else rev)


def _endpoint(fields: Mapping[str, object], side: str, with_port: bool | None) -> tuple[IPAddress | None, int | None]:
    """(address, port) of one side from ``src_addr``/``src_port`` or, failing those, ``src_ap``."""
    address_text = _text(fields, _ADDR[side])
    address = parse_address(address_text)
    port = _port(fields, _PORT[side])
    ap = _text(fields, _AP[side])
    if ap:
        ap_address, ap_port = split_endpoint(ap, True)  # "%s:%u": always a port, 0 when none
        if not address_text:
            address = ap_address
        if port is None and (with_port or (with_port is None and ap_port)):
            port = ap_port
    return address, port


_ADDR = {"src": "src_addr", "dst": "dst_addr"}
_PORT = {"src": "src_port", "dst": "dst_port"}
_AP = {"src": "src_ap", "dst": "dst_ap"}
_VALID_FLAGS: dict = {}  # tcp_flags strings already checked (Snort prints at most 2^8 different ones)


def _time(fields: Mapping[str, object], engine: str, clock: Clock) -> datetime | None:
    stamp = _text(fields, "timestamp")
    seconds = _number(fields, "seconds")
    if seconds is not None:
        # epoch seconds are exact; the printed timestamp adds the microseconds
        fraction = _FRACTION.search(stamp)
        micro = int(fraction.group(1).ljust(6, "0")) if fraction else 0
        second = _EPOCH_SECONDS.get(seconds)
        if second is None:
            try:
                second = datetime.fromtimestamp(seconds, timezone.utc)
            except (OverflowError, OSError, ValueError):
                raise UnparsableLine(f"bad seconds {shown(str(seconds))}") from None
            if len(_EPOCH_SECONDS) >= 1024:  # alerts come in time order: old seconds are not asked again
                _EPOCH_SECONDS.clear()
            _EPOCH_SECONDS[seconds] = second
        return second.replace(microsecond=micro) if micro else second
    if stamp:
        return parse_snort_time(stamp, engine, clock)
    return None


_EPOCH_SECONDS: dict = {}  # "seconds" -> its UTC datetime


def alert_from_fields(
    fields: Mapping[str, object], fmt: str, origin: Origin, engine: str, clock: Clock, msg: str | None = None
) -> Alert:
    gid, sid, rev = _rule_id(fields)
    proto = _text(fields, "proto") or None
    with_port = None if proto is None else proto.upper() in PORT_PROTOCOLS
    src, sport = _endpoint(fields, "src", with_port)
    dst, dport = _endpoint(fields, "dst", with_port)
    classification = _text(fields, "class")
    direction = _text(fields, "dir") or None
    if direction is not None and direction not in _DIRECTIONS:
        raise UnparsableLine(f"bad dir {shown(direction)}")
    tcp_flags = _text(fields, "tcp_flags") or None
    if tcp_flags is not None and tcp_flags not in _VALID_FLAGS:
        if _TCP_FLAGS.fullmatch(tcp_flags) is None:
            raise UnparsableLine(f"bad tcp_flags {shown(tcp_flags)}")
        if len(_VALID_FLAGS) >= 4096:  # a file written by anything else stays bounded
            _VALID_FLAGS.clear()
        _VALID_FLAGS[tcp_flags] = True
    # positional, in field order: the cheapest call (an alert storm parses every line)
    return Alert(
        gid,
        sid,
        rev,
        _text(fields, "msg") if msg is None else msg,
        fmt,
        origin,
        _number(fields, "priority"),
        classification if classification and classification != "none" else None,
        proto,
        src,
        sport,
        dst,
        dport,
        _time(fields, engine, clock),
        engine,
        direction,
        tcp_flags,
        _number(fields, "icmp_type"),
    )
