"""tzspd's counters and how they are printed."""

from __future__ import annotations

import json

from tzsp.stats import Counters, format_json, format_text, parse_text


def test_tag40_gaps_count_missing_ids_across_the_wrap():
    stats = Counters()
    for packet_id in (1, 2, 5, 6):
        stats.note_packet_id(packet_id)
    assert stats.tag40_gaps == 2  # 3 and 4
    wrapping = Counters()
    for packet_id in (0xFFFFFFFD, 0xFFFFFFFE, 1, 2):
        wrapping.note_packet_id(packet_id)
    assert wrapping.tag40_gaps == 2  # 0xFFFFFFFF and 0


def test_duplicates_and_late_ids_are_not_loss():
    stats = Counters()
    for packet_id in (10, 10, 12, 11, 13):
        stats.note_packet_id(packet_id)
    assert stats.tag40_gaps == 0
    stats.note_packet_id(16)  # 14, 15 missing
    assert stats.tag40_gaps == 2


def test_a_sender_restart_is_not_loss():
    stats = Counters()
    for packet_id in (5_000_000, 5_000_001, 0, 1, 2):
        stats.note_packet_id(packet_id)
    assert stats.tag40_gaps == 0


def test_kernel_drop_counter_is_a_running_total():
    stats = Counters()
    for total in (3, 7, 5):
        stats.note_kernel_drops(total)
    assert stats.kernel_drops == 7


def test_text_form_names_each_malformed_reason_and_reads_back():
    stats = Counters(received=12, written=8, not_allowed=1)
    stats.count_malformed("short")
    stats.count_malformed("no-end")
    stats.count_malformed("short")
    line = format_text(stats.snapshot())
    assert "malformed=3 (no-end=1 short=2)" in line
    parsed = parse_text("tzspd: stats: " + line)
    assert parsed["received"] == 12 and parsed["written"] == 8 and parsed["malformed"] == 3
    assert "short" not in parsed and parsed["not_allowed"] == 1


def test_json_form_is_one_object_per_line():
    stats = Counters(received=2)
    stats.count_malformed("bad-version")
    line = format_json(stats.snapshot())
    assert "\n" not in line
    data = json.loads(line)
    assert data["received"] == 2 and data["malformed_by_reason"] == {"bad-version": 1}
