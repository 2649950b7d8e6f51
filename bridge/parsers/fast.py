"""alert_fast (and Snort 2 ``-A console`` / ``-A fast``, Snort 3 ``-A alert_fast`` on stdout).

    Snort 3: 11/14-22:13:20.082001 [**] [122:1:1] "(port_scan) TCP portscan" [**] [Priority: 3] {TCP} 203.0.113.50:40014 -> 198.51.100.10:15
    Snort 2: 11/14-22:13:20.027500  [**] [122:1:1] (portscan) TCP Portscan [**] [Classification: Attempted Information Leak] [Priority: 2] {PROTO:255} 203.0.113.50 -> 198.51.100.10

The line is read from both ends: the timestamp and ``[gid:sid:rev]`` from the left, the
engine-written tail (``[**] [Classification] [Priority] {PROTO} src -> dst``) anchored at the
right end. The message is whatever lies between, so a message holding ``[**]``, quotes or
address-like text never moves the real address fields.
"""

from __future__ import annotations

import re
from datetime import datetime

from bridge.events import Alert, Origin

from .common import (
    LOCAL,
    PORT_PROTOCOLS,
    SNORT_TIME,
    Clock,
    UnparsableLine,
    parse_snort_time,
    split_endpoint,
    strip_line,
)

# What the Snort loggers print after the message: LogPriorityData, LogAppID, "{proto} ",
# LogIpAddrs. Shared with alert_syslog, which prints the same pieces without the "[**]".
TAIL = (
    r"(?:\[Classification: (?P<cls>[^\]]*)\] )?"
    r"(?:\[Priority: (?P<prio>\d{1,10})\] )?"
    r"(?:\[AppID: [^\]]*\] )?"
    r"(?:<[^>\s]*> )?"  # syslog's alert_interface
    r"\{(?P<proto>[^{}]*)\} (?P<src>\S*) ->(?: (?P<dst>\S*))?\s*$"
)

_FAST = re.compile(
    rf"(?P<ts>{SNORT_TIME})(?P<gap> +)(?:\[[^\]\[]{{1,32}}\] +)?"  # optional action: [drop], [Drop], [wDrop]
    r"\[\*\*\] \[(?P<gid>\d{1,10}):(?P<sid>\d{1,10}):(?P<rev>\d{1,10})\] "
    r"(?: <[^>\s]*> )?"  # alert_interface
    r"(?P<msg>.*) \[\*\*\] " + TAIL,  # greedy: the last "[**]" that a valid tail follows
    re.DOTALL | re.ASCII,
)

# Lines Snort writes around alerts that are not alerts: alert_fast packet=true dumps,
# alert_full blocks. Recognised so they can be reported as noise rather than as broken.
_NOISE = re.compile(
    r"\s*$"
    r"|(?:[0-9A-F]{2} )+"  # hex dump row
    r"|- - - "  # dump frame
    r"|[\w.]+\[\d+\]:$"  # buffer header "http_inspect.http_uri[45]:"
    r"|\[\*\*\] \[\d+:\d+:\d+\] .*\[\*\*\]$"  # alert_full first line
    r"|\[(?:Classification|Priority|Xref)"
    r"|(?:TCP|UDP|ICMP|IP|PROTO:\d+) TTL:"
    r"|[*UAPRSF12]{8} Seq:"
    r"|Type:\d+ "
    r"|" + SNORT_TIME + r"(?: \S* -> \S*)?\s*$"
    r"|\S+ -> \S+$",
    re.ASCII,
)


def is_noise(text: str) -> bool:
    """A line Snort writes next to alerts (packet dump, alert_full block, blank)."""
    return _NOISE.match(text[:512]) is not None


def engine_of(msg: str, gap: int) -> str | None:
    """Snort 3 keeps the msg in quotes and prints one space after the time; Snort 2 neither."""
    if len(msg) >= 2 and msg[0] == '"' and msg[-1] == '"':
        return "snort3"
    if gap >= 2:
        return "snort2"
    return None


def alert_from_parts(
    match: re.Match[str], msg: str, engine: str | None, fmt: str, origin: Origin, time: datetime | None
) -> Alert:
    """The Alert for a fast or syslog line, once its message and time are known."""
    gid, sid, rev, cls, prio, proto, src_text, dst_text = match.group(
        "gid", "sid", "rev", "cls", "prio", "proto", "src", "dst"
    )
    with_port = proto in PORT_PROTOCOLS
    src, sport = split_endpoint(src_text, with_port)
    dst, dport = split_endpoint(dst_text or "", with_port)
    # positional, in field order: the cheapest call (an alert storm parses every line)
    return Alert(
        int(gid),
        int(sid),
        int(rev),
        msg[1:-1] if engine == "snort3" else msg,
        fmt,
        origin,
        int(prio) if prio is not None else None,
        cls,
        proto or None,
        src,
        sport,
        dst,
        dport,
        time,
        engine,
    )


def parse_fast(line: str, origin: Origin, clock: Clock = LOCAL) -> Alert:
    text = strip_line(line)
    match = _FAST.match(text)
    if match is None:
        if is_noise(text):
            raise UnparsableLine("not an alert", noise=True)
        raise UnparsableLine("not an alert_fast line")
    stamp, gap, msg = match.group("ts", "gap", "msg")
    engine = engine_of(msg, len(gap))
    return alert_from_parts(match, msg, engine, "fast", origin, parse_snort_time(stamp, engine, clock))
