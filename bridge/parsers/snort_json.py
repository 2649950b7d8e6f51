"""Snort 3 alert_json: one object per line, any subset of its fields, in any order.

    { "timestamp" : "11/14-22:13:20.082001", "proto" : "TCP", "dir" : "C2S", "src_ap" : "203.0.113.50:40014", "dst_ap" : "198.51.100.10:15", "rule" : "122:1:1", ... }

An object with ``event_type`` is Suricata's eve.json and goes to that parser.
"""

from __future__ import annotations

import json

from bridge.events import Alert, Origin

from .common import LOCAL, Clock, UnparsableLine, strip_line
from .snort_fields import alert_from_fields

try:  # orjson decodes an alert line 2-3 times faster than json: it was most of a line's cost
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - a platform without an orjson wheel
    _fast_loads = None


def load_object(line: str) -> dict:
    """One JSON object from a line, or UnparsableLine (never JSON's own errors)."""
    text = strip_line(line).strip()
    if not text.startswith("{"):
        raise UnparsableLine("not a JSON object", noise=not text)
    obj = None
    if _fast_loads is not None:
        try:
            obj = _fast_loads(text)
        except (ValueError, RecursionError):
            pass  # what orjson refuses (NaN, lone surrogates, deep nesting) json decides, as before
    if obj is None:
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError):
            raise UnparsableLine("bad JSON") from None
    if not isinstance(obj, dict):
        raise UnparsableLine("not a JSON object")
    return obj


def parse_json(line: str, origin: Origin, clock: Clock = LOCAL) -> Alert:
    obj = load_object(line)
    if "event_type" in obj:
        from .eve import alert_from_eve

        return alert_from_eve(obj, origin, clock)
    return alert_from_fields(obj, "json", origin, "snort3", clock)
