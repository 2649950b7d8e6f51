"""Snort 3 alert_json: one object per line, any subset of its fields, in any order.

    { "timestamp" : "11/14-22:13:20.082001", "proto" : "TCP", "dir" : "C2S", "src_ap" : "203.0.113.50:40014", "dst_ap" : "198.51.100.10:15", "rule" : "122:1:1", ... }

An object with ``event_type`` is Suricata's eve.json and goes to that parser.
"""

from __future__ import annotations

from bridge.events import Alert, Origin

from .common import LOCAL, Clock
from .eve import alert_from_eve
from .json_object import load_object
from .snort_fields import alert_from_fields


def parse_json(line: str, origin: Origin, clock: Clock = LOCAL) -> Alert:
    obj = load_object(line)
    if "event_type" in obj:
        return alert_from_eve(obj, origin, clock)
    return alert_from_fields(obj, "json", origin, "snort3", clock)
