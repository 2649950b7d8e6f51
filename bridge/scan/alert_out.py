"""Alerts written back out as Snort 3 alert_json lines, for a sensor whose detector is the built-in one.

A sensor without Snort runs ``tzspd --exec "snort-bridge scan --pcap - --alerts FILE"``: each
detection is appended to FILE as one alert_json line, the file rsyslog's imfile forwards to the
central host, where ``snort-bridge run`` reads it like any Snort 3 alert_json file.

alert_json rather than alert_fast because it carries the attribution evidence: ``"dir": "C2S"``
says the alert packet is the scanner's own probe, so the central bridge blocks the source (an
alert_fast port-scan line has no such evidence and would be left unblocked rather than risk the
victim). ``seconds`` gives the exact time, so thresholds and windows count in the sensor's time.

``alert_json_line`` is pure; ``AlertFileWriter`` is the thin shell (append, flush per line).
"""

from __future__ import annotations

import json
import os
from datetime import timezone

from bridge.events import Alert


def alert_json_line(alert: Alert) -> str:
    """One Snort 3 alert_json object (field names as Snort 3 writes them), without the newline."""
    fields: dict[str, str | int] = {}
    if alert.time is not None:
        stamp = alert.time.astimezone(timezone.utc)
        fields["seconds"] = int(stamp.timestamp())
        fields["timestamp"] = stamp.strftime("%m/%d-%H:%M:%S.%f")
    if alert.proto:
        fields["proto"] = alert.proto
    if alert.direction:
        fields["dir"] = alert.direction
    for side, address, port in (("src", alert.src, alert.sport), ("dst", alert.dst, alert.dport)):
        if address is not None:
            fields[f"{side}_addr"] = str(address)
        if port is not None:
            fields[f"{side}_port"] = port
    fields["rule"] = f"{alert.gid}:{alert.sid}:{alert.rev}"
    fields["action"] = "allow"  # what Snort 3 writes for an alert in IDS mode
    fields["msg"] = alert.msg
    if alert.priority is not None:
        fields["priority"] = alert.priority
    if alert.classification:
        fields["class"] = alert.classification
    if alert.tcp_flags:
        fields["tcp_flags"] = alert.tcp_flags
    if alert.icmp_type is not None:
        fields["icmp_type"] = alert.icmp_type
    return json.dumps(fields, ensure_ascii=True, separators=(", ", " : "))


class AlertFileWriter:
    """Appends alert_json lines to a file, one write and flush per line, so a reader (rsyslog imfile,
    the bridge's follower) never sees half a line from us and nothing waits in a buffer."""

    def __init__(self, path: str):
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.written = 0

    def write(self, alert: Alert) -> None:
        assert self._fd is not None, "writer closed"
        os.write(self._fd, (alert_json_line(alert) + "\n").encode("ascii"))
        self.written += 1

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
