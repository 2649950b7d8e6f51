"""alert_syslog: what Snort hands to syslog, as sent and as syslog daemons store it.

    raw (/dev/log):   <33>Nov 22 03:38:45 snort: [122:1:1] (portscan) TCP Portscan [Classification: ...] [Priority: 2] {PROTO:255} 203.0.113.50 -> 198.51.100.10
    rsyslog file:     2026-11-22T03:35:41.962312+00:00 vm snort[8181]: [122:1:1] "(port_scan) TCP portscan" [Priority: 3] {TCP} 203.0.113.50:40014 -> 198.51.100.10:15
    traditional file: Nov 22 03:35:41 vm snort[8181]: [1:1000001:1] "TEST web attack" [Priority: 1] {TCP} 192.0.2.77:51515 -> 198.51.100.10:80
    RFC 5424:         <33>1 2026-11-22T03:35:41.962Z vm snort 8181 - - [1:1000001:1] ...

Whatever the header, the Snort part starts at ``TAG[PID]: [gid:sid:rev]``; the header
(anything before it) only gives the time. The body is alert_fast's tail without ``[**]``.
"""

from __future__ import annotations

import re
from datetime import datetime

from bridge.events import Alert, Origin

from .common import (
    BSD_TIME,
    LOCAL,
    Clock,
    UnparsableLine,
    parse_bsd_time,
    parse_iso_time,
    strip_line,
)
from .fast import TAIL, alert_from_parts

_RFC3164 = re.compile(
    r"(?:<(?P<pri>\d{1,3})>)?(?P<head>[^\[\]]{0,200}?)"
    r"(?P<tag>[\w./-]{1,64})(?:\[(?P<pid>\d{1,10})\])?: "
    r"(?P<body>\[\d{1,10}:\d{1,10}:\d{1,10}\] .*)",
    re.DOTALL | re.ASCII,
)
_RFC5424 = re.compile(
    r"<(?P<pri>\d{1,3})>1 (?P<head>\S+) \S+ (?P<tag>\S+) (?P<pid>\S+) \S+ (?:-|\[.*?\]) \ufeff?"
    r"(?P<body>\[\d{1,10}:\d{1,10}:\d{1,10}\] .*)",
    re.DOTALL | re.ASCII,
)
_BODY = re.compile(
    r"\[(?P<gid>\d{1,10}):(?P<sid>\d{1,10}):(?P<rev>\d{1,10})\] (?P<msg>.*?) " + TAIL,  # lazy: Priority is optional
    re.DOTALL | re.ASCII,
)
_HEAD_TIME = re.compile(rf"(?P<iso>\d{{4}}-\d\d-\d\d[T ]\d\d:\d\d:\d\d\S*)|(?P<bsd>{BSD_TIME})", re.ASCII)

# rsyslog/syslog lines that carry a Snort message without an alert in it (startup, stats)
_SNORT_TAG = re.compile(r".{0,200}?\bsnort\w*(?:\[\d+\])?: ", re.DOTALL | re.ASCII)


def _header_time(head: str, clock: Clock) -> datetime | None:
    found = _HEAD_TIME.search(head)
    if found is None:
        return None
    if found.group("iso"):
        return parse_iso_time(found.group("iso"), clock)
    return parse_bsd_time(found.group("bsd"), clock)


def parse_syslog(line: str, origin: Origin, clock: Clock = LOCAL) -> Alert:
    text = strip_line(line)
    envelope = _RFC3164.match(text) or _RFC5424.match(text)
    if envelope is None:
        if _SNORT_TAG.match(text):
            raise UnparsableLine("syslog message from snort that is not an alert", noise=True)
        raise UnparsableLine("not an alert_syslog line")
    pri = envelope.group("pri")
    if pri is not None and int(pri) > 191:
        raise UnparsableLine(f"bad syslog priority <{pri}>")
    body = _BODY.fullmatch(envelope.group("body"))
    if body is None:
        raise UnparsableLine("syslog alert without {PROTO} src -> dst")
    msg = body.group("msg")
    engine = "snort3" if len(msg) >= 2 and msg[0] == '"' and msg[-1] == '"' else "snort2"
    return alert_from_parts(body, msg, engine, "syslog", origin, _header_time(envelope.group("head"), clock))
