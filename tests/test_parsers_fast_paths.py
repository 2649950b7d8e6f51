"""The shortcuts that make alert parsing fast change nothing: Alert's written-out __init__,
orjson before json, JSON numbers read without a text round trip, the timestamp caches."""

from __future__ import annotations

import dataclasses
import inspect
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.events import Alert, Origin
from bridge.parsers import Clock, UnparsableLine, json_object, parse_line
from bridge.parsers.json_object import load_object

UTC = timezone.utc
CLOCK = Clock(tz=UTC, now=datetime(2023, 11, 20, tzinfo=UTC))
ORIGIN = Origin("test", 0, 1)
DATA = Path(__file__).resolve().parent / "data"


def test_alert_init_takes_exactly_its_fields_in_order_with_their_defaults():
    parameters = list(inspect.signature(Alert.__init__).parameters.values())[1:]
    fields = dataclasses.fields(Alert)
    assert [p.name for p in parameters] == [f.name for f in fields]
    for parameter, field in zip(parameters, fields, strict=True):
        expected = inspect.Parameter.empty if field.default is dataclasses.MISSING else field.default
        assert parameter.default == expected, field.name


def test_alert_is_still_a_frozen_dataclass():
    values = dict(gid=1, sid=2, rev=3, msg="m", format="fast", origin=ORIGIN, priority=1, sport=80)
    alert = Alert(**values)
    positional = Alert(1, 2, 3, "m", "fast", ORIGIN, 1, None, None, None, 80)
    assert alert == positional and hash(alert) == hash(positional)
    assert alert != dataclasses.replace(alert, sid=9)
    assert dataclasses.replace(alert, sid=9).sid == 9 and alert.sid == 2
    assert alert.dst is None and alert.icmp_type is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        alert.sid = 5
    assert repr(alert).startswith("Alert(gid=1, sid=2, rev=3, msg='m', format='fast'")
    assert dataclasses.asdict(alert)["sport"] == 80 and list(vars(alert)) == [f.name for f in dataclasses.fields(Alert)]
    with pytest.raises(TypeError):
        Alert(1, 2, 3, "m", "fast")  # origin is required


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=8))
def test_orjson_reads_what_json_reads(obj):
    text = json.dumps(obj)
    want = json.loads(text)
    if any(type(v) is int and not -(2**63) <= v < 2**64 for v in _leaves(want)):
        return  # beyond 64 bits orjson gives a float: never a valid alert field either way
    assert load_object(text) == want


def _leaves(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


@pytest.mark.parametrize("text", ['{"a": NaN}', '{"a": "\\ud800"}', '{"a": 1e400}'])
def test_what_orjson_refuses_json_still_decides(text):
    assert load_object(text) == json.loads(text)


def sample_json_lines():
    paths = [DATA / "snort/snort3/alert_json_all/alert_json.txt", DATA / "suricata/eve.json"]
    paths += sorted((DATA / "snort/calibration/alerts/snort3").glob("*/alert_json.txt"))
    return [line for path in paths for line in path.read_text().splitlines() if line.strip()]


def parsed_all(lines):
    out = []
    for line in lines:
        try:
            out.append(parse_line(line, ORIGIN, "auto", clock=CLOCK))
        except UnparsableLine as error:
            out.append(error.reason)
    return out


def test_without_orjson_every_sample_line_gives_the_same_alert(monkeypatch):
    lines = sample_json_lines()
    assert len(lines) > 100
    with_orjson = parsed_all(lines)
    monkeypatch.setattr(json_object, "_fast_loads", None)
    assert parsed_all(lines) == with_orjson
    assert sum(isinstance(a, Alert) for a in with_orjson) > 100


NUMBERS = {
    "gid": 1,
    "sid": 1000001,
    "rev": 2,
    "priority": 1,
    "src_port": 51515,
    "dst_port": 80,
    "icmp_type": 3,
    "seconds": 1700000000,
}
BASE = {
    "msg": "m",
    "proto": "TCP",
    "src_addr": "192.0.2.77",
    "dst_addr": "198.51.100.10",
    "timestamp": "11/14-22:13:20.082001",
}


def test_json_numbers_and_the_same_numbers_as_text_give_one_alert():
    as_numbers = parse_line(json.dumps({**BASE, **NUMBERS}), ORIGIN, "json", clock=CLOCK)
    as_text = parse_line(json.dumps({**BASE, **{k: f" {v} " for k, v in NUMBERS.items()}}), ORIGIN, "json", clock=CLOCK)
    assert as_numbers == as_text
    assert (as_numbers.sid, as_numbers.sport, as_numbers.icmp_type) == (1000001, 51515, 3)
    assert as_numbers.time == datetime(2023, 11, 14, 22, 13, 20, 82001, tzinfo=UTC)


@pytest.mark.parametrize(
    "field, value",
    [
        ("priority", -1),
        ("priority", 2**32),
        ("src_port", 65536),
        ("dst_port", -1),
        ("sid", 2**32),
        ("icmp_type", True),
        ("seconds", -1),
        ("gid", 1.0),
    ],
)
def test_json_numbers_out_of_range_are_refused(field, value):
    with pytest.raises(UnparsableLine):
        parse_line(json.dumps({**BASE, **NUMBERS, field: value}), ORIGIN, "json", clock=CLOCK)


def test_the_last_timestamp_is_reused_only_for_the_same_engine_and_clock():
    line = '11/14-22:13:23.105015 [**] [1:2:3] "m" [**] [Priority: 1] {TCP} 192.0.2.77:1 -> 198.51.100.10:80'
    plus_one = Clock(tz=timezone(timedelta(hours=1)), now=CLOCK.now)
    first = parse_line(line, ORIGIN, "fast", clock=CLOCK).time
    again = parse_line(line, ORIGIN, "fast", clock=CLOCK).time
    shifted = parse_line(line, ORIGIN, "fast", clock=plus_one).time
    assert first == again == datetime(2023, 11, 14, 22, 13, 23, 105015, tzinfo=UTC)
    assert first - shifted == timedelta(hours=1)
    snort2 = parse_line(line.replace(' "m" ', " m ").replace("5 [**]", "5  [**]", 1), ORIGIN, "fast", clock=CLOCK)
    assert (snort2.engine, snort2.time) == ("snort2", first)


def test_tcp_flags_are_checked_even_when_seen_before():
    good = {**BASE, **NUMBERS, "tcp_flags": "***A*R**"}
    assert parse_line(json.dumps(good), ORIGIN, "json", clock=CLOCK).tcp_flags == "***A*R**"
    assert parse_line(json.dumps(good), ORIGIN, "json", clock=CLOCK).tcp_flags == "***A*R**"
    with pytest.raises(UnparsableLine):
        parse_line(json.dumps({**good, "tcp_flags": "$(reboot)"}), ORIGIN, "json", clock=CLOCK)
