"""tzspd's counters: what arrived, what was written, and why anything else was not.

A plain mutable object owned by the receive loop (single-threaded), so incrementing a
counter is one attribute update on the hot path. ``snapshot`` gives an immutable view for
printing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

PACKET_ID_MODULUS = 1 << 32
# A tag-40 jump larger than this is a sender restart or reordering, not loss.
MAX_COUNTED_GAP = 1 << 20


@dataclass
class Counters:
    received: int = 0  # datagrams read from the socket
    written: int = 0  # pcap records handed to the output
    not_allowed: int = 0  # sender outside --allow
    other_linktype: int = 0  # frame whose encapsulation is not the stream's link type
    non_frame: int = 0  # types 2-5: reserved, config, keepalive, port opener
    malformed: dict[str, int] = field(default_factory=dict)  # reason -> count
    kernel_drops: int = 0  # SO_RXQ_OVFL: datagrams the kernel dropped, socket buffer full
    consumer_restarts: int = 0  # --exec consumer started again after it ended
    buffer_overflow: int = 0  # records dropped because the --exec buffer was full
    unsent_at_exit: int = 0  # records held for a consumer that was not running at exit
    output_bytes: int = 0  # bytes of pcap records written (headers excluded)
    tag40_gaps: int = 0  # packet ids missing from the tag-40 sequence (sender-side loss)
    _last_packet_id: int | None = field(default=None, repr=False)

    def count_malformed(self, reason: str) -> None:
        self.malformed[reason] = self.malformed.get(reason, 0) + 1

    def note_packet_id(self, packet_id: int) -> None:
        """Follow the sender's tag-40 sequence (it wraps at 2**32): ids skipped are counted as
        gaps; a late id within the window fills one back in; a far jump either way is a
        sender restart and counts nothing."""
        last = self._last_packet_id
        if last is None:
            self._last_packet_id = packet_id
            return
        ahead = (packet_id - last) % PACKET_ID_MODULUS
        behind = (last - packet_id) % PACKET_ID_MODULUS
        if ahead == 0:
            return
        if ahead <= MAX_COUNTED_GAP:
            self.tag40_gaps += ahead - 1
        elif behind <= MAX_COUNTED_GAP:  # arrived late: it was counted missing
            if self.tag40_gaps:
                self.tag40_gaps -= 1
            return
        self._last_packet_id = packet_id

    def note_kernel_drops(self, total: int) -> None:
        """SO_RXQ_OVFL reports the socket's running total; keep the largest seen."""
        if total > self.kernel_drops:
            self.kernel_drops = total

    def snapshot(self) -> dict:
        return {
            "received": self.received,
            "written": self.written,
            "malformed": sum(self.malformed.values()),
            "malformed_by_reason": dict(sorted(self.malformed.items())),
            "not_allowed": self.not_allowed,
            "other_linktype": self.other_linktype,
            "non_frame": self.non_frame,
            "kernel_drops": self.kernel_drops,
            "consumer_restarts": self.consumer_restarts,
            "buffer_overflow": self.buffer_overflow,
            "unsent_at_exit": self.unsent_at_exit,
            "tag40_gaps": self.tag40_gaps,
            "output_bytes": self.output_bytes,
        }


def format_text(snapshot: dict) -> str:
    """One human line: ``received=10 written=8 malformed=1 (short=1) not_allowed=1 ...``."""
    parts = []
    for key, value in snapshot.items():
        if key == "malformed_by_reason":
            continue
        text = f"{key}={value}"
        if key == "malformed" and snapshot["malformed_by_reason"]:
            reasons = " ".join(f"{r}={n}" for r, n in snapshot["malformed_by_reason"].items())
            text += f" ({reasons})"
        parts.append(text)
    return " ".join(parts)


def format_json(snapshot: dict) -> str:
    return json.dumps(snapshot, sort_keys=False, separators=(",", ":"))


def parse_text(line: str) -> dict[str, int]:
    """Inverse of format_text for the flat counters (reasons in parentheses are skipped);
    used by the demo and tests to read tzspd's stderr."""
    result: dict[str, int] = {}
    depth = 0
    for word in line.split():
        opened = word.startswith("(")
        if opened:
            depth += 1
        if depth == 0 and "=" in word:
            key, _, value = word.partition("=")
            if value.isdigit():
                result[key] = int(value)
        if word.endswith(")"):
            depth = max(0, depth - 1)
    return result
