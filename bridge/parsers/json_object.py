"""One JSON object from an alert line: shared by the Snort 3 alert_json and Suricata eve.json parsers."""

from __future__ import annotations

import json

from .common import UnparsableLine, strip_line

try:  # orjson decodes an alert line 2-3 times faster than json: it was most of a line's cost
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - a platform without an orjson wheel
    _fast_loads = None  # type: ignore[assignment]


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
