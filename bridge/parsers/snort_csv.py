"""alert_csv of both engines.

    Snort 3 default: 11/14-22:13:20.082001, 29, TCP, raw, 40, C2S, 203.0.113.50:40014, 198.51.100.10:15, 122:1:1, allow
    Snort 2 default: 11/14-22:13:20.027500 ,122,1,1,"(portscan) TCP Portscan",,203.0.113.50,,198.51.100.10,,...

Snort 3 separates with ", " and writes msg as the rule has it (in double quotes, inner quotes
as they are); Snort 2 separates with "," and writes msg through TextLog_Quote (double quotes,
``"`` and ``\\`` escaped with a backslash). Neither writes a header. Without ``csv_fields``
the three layouts the engines produce out of the box are recognised: Snort 3's default, Snort
3 with every csv field in the documented order, and Snort 2's default. Any other field list
must be given as ``csv_fields`` (the names from the engine's ``fields`` setting).

The message is the only free-text field, so it may hold the separator: the fields left of
``msg`` are taken from the left, those right of it from the right, and msg is what remains.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bridge.events import Alert, Origin

from .common import LOCAL, SNORT_TIME, Clock, UnparsableLine, strip_line, unquote
from .snort_fields import SNORT2_NAMES, alert_from_fields

SNORT3_DEFAULT = ("timestamp", "pkt_num", "proto", "pkt_gen", "pkt_len", "dir", "src_ap", "dst_ap", "rule", "action")
SNORT3_ALL = tuple(
    "action class b64_data client_bytes client_pkts dir dst_addr dst_ap dst_port eth_dst eth_len eth_src "
    "eth_type flowstart_time geneve_vni gid icmp_code icmp_id icmp_seq icmp_type iface ip_id ip_len msg mpls "
    "pkt_gen pkt_len pkt_num priority proto rev rule seconds server_bytes server_pkts service sgt sid src_addr "
    "src_ap src_port target tcp_ack tcp_flags tcp_len tcp_seq tcp_win timestamp tos ttl udp_len vlan".split()
)
SNORT2_DEFAULT = tuple(
    "timestamp sig_generator sig_id sig_rev msg proto src srcport dst dstport ethsrc ethdst ethlen tcpflags "
    "tcpseq tcpack tcplen tcpwindow ttl tos id dgmlen iplen icmptype icmpcode icmpid icmpseq".split()
)
SNORT2_ONLY = frozenset(SNORT2_DEFAULT) - {"timestamp", "msg", "proto", "ttl", "tos"}
SNORT3_ONLY = frozenset(SNORT3_ALL) - {"timestamp", "msg", "proto", "ttl", "tos"}

_SNORT3_START = re.compile(rf"{SNORT_TIME}, ", re.ASCII)
_SNORT2_START = re.compile(rf"{SNORT_TIME} ?,", re.ASCII)
_ACTION_START = re.compile(r"[a-z_ ]{1,16}, ", re.ASCII)
_SNORT2_ESCAPE = re.compile(r"\\([\\\"])", re.ASCII)


def _split(text: str, names: Sequence[str], sep: str) -> dict[str, str]:
    parts = text.split(sep)
    if len(parts) != len(names):
        if len(parts) < len(names) or "msg" not in names:
            raise UnparsableLine(f"csv line has {len(parts)} fields, expected {len(names)}")
        left = names.index("msg")
        right = len(names) - left - 1
        parts = parts[:left] + [sep.join(parts[left : len(parts) - right])] + parts[len(parts) - right :]
    return dict(zip(names, parts, strict=False))


def _layout(text: str, csv_fields: tuple[str, ...]) -> tuple[tuple[str, ...], str, str]:
    """(field names, separator, engine) for a line."""
    if csv_fields:
        names = tuple(name.strip().lower() for name in csv_fields)
        if any(name in SNORT2_ONLY for name in names):
            return names, ",", "snort2"
        if any(name in SNORT3_ONLY for name in names):
            return names, ", ", "snort3"
        return names, (", " if ", " in text else ","), ("snort3" if ", " in text else "snort2")
    if _SNORT3_START.match(text):
        return SNORT3_DEFAULT, ", ", "snort3"
    if _SNORT2_START.match(text):
        return SNORT2_DEFAULT, ",", "snort2"
    if _ACTION_START.match(text) and text.count(", ") >= len(SNORT3_ALL) - 1:
        return SNORT3_ALL, ", ", "snort3"
    raise UnparsableLine("not an alert_csv line of a known layout (set csv_fields)")


def parse_csv(line: str, origin: Origin, clock: Clock = LOCAL, csv_fields: tuple[str, ...] = ()) -> Alert:
    text = strip_line(line)
    if not text.strip():
        raise UnparsableLine("not an alert", noise=True)
    names, sep, engine = _layout(text, csv_fields)
    fields = _split(text, names, sep)
    msg: str | None = fields.get("msg")
    if engine == "snort2":
        fields = {SNORT2_NAMES.get(name, name): value for name, value in fields.items()}
        if msg is not None:
            msg = _SNORT2_ESCAPE.sub(r"\1", unquote(msg))
    elif msg is not None:
        msg = unquote(msg)
    return alert_from_fields(fields, "csv", origin, engine, clock, msg=msg if msg is not None else "")
