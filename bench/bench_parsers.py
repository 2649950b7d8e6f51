#!/usr/bin/env python3
"""Benchmark the alert parsers: lines parsed per second, per format.

    python bench/bench_parsers.py [--lines 50000] [--json]

Corpora are real Snort output from tests/data/snort (the calibration runs and the sample
runs) and the eve.json sample; "distinct" corpora rewrite every line with its own source
address, port and second, so the parsers' address and timestamp caches do not help. Each
figure is the best of 5 passes over the corpus, through ``parse_line`` with the format
named (``fmt``) and with ``auto`` detection.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.events import Origin  # noqa: E402
from bridge.parsers import UnparsableLine, parse_line  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
CAL = DATA / "snort" / "calibration" / "alerts"


def lines_of(path: Path) -> list:
    return [line for line in path.read_text().splitlines() if line.strip()]


def repeat_to(lines: list, count: int) -> list:
    return (lines * (count // len(lines) + 1))[:count]


def distinct(template: str, old_src: str, old_time: str, count: int) -> list:
    """``count`` copies of a line, each with its own source address/port and timestamp second."""
    out = []
    for i in range(count):
        src = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        stamp = old_time.replace(old_time[6:14], f"{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}")
        out.append(template.replace(old_src, src, 1).replace(old_time, stamp, 1))
    return out


def corpora(count: int) -> dict:
    s3_fast = lines_of(DATA / "snort/snort3/alert_fast/alert_fast.txt")
    s3_syslog = lines_of(DATA / "snort/snort3/alert_syslog_auth_info/syslog_rsyslog_file.log")
    eve = [line for line in lines_of(DATA / "suricata/eve.json") if '"event_type":"alert"' in line]
    return {
        "fast (Snort 3, calibration XMAS file)": (
            "fast",
            repeat_to(lines_of(CAL / "snort3/XMAS_TREE_SCAN.pcap/alert_fast.txt"), count),
        ),
        "fast (Snort 2, calibration FIN file)": (
            "fast",
            repeat_to(lines_of(CAL / "snort2/FIN_SCAN.pcap/alert.fast"), count),
        ),
        "fast (Snort 3, distinct src/second)": (
            "fast",
            distinct(s3_fast[2], "192.0.2.77", "11/14-22:13:23.105015", count),
        ),
        "syslog (rsyslog file, Snort 3)": ("syslog", repeat_to(s3_syslog, count)),
        "syslog (raw <PRI>, Snort 2)": (
            "syslog",
            repeat_to(lines_of(DATA / "snort/snort2/conf_outputs/syslog_raw_wire.log"), count),
        ),
        "json (Snort 3, calibration XMAS file)": (
            "json",
            repeat_to(lines_of(CAL / "snort3/XMAS_TREE_SCAN.pcap/alert_json.txt"), count),
        ),
        "json (Snort 3, all 53 fields)": (
            "json",
            repeat_to(lines_of(DATA / "snort/snort3/alert_json_all/alert_json.txt"), count),
        ),
        "csv (Snort 3 default)": (
            "csv",
            repeat_to(lines_of(DATA / "snort/snort3/alert_csv_default/alert_csv.txt"), count),
        ),
        "csv (Snort 3 all fields)": (
            "csv",
            repeat_to(lines_of(DATA / "snort/snort3/alert_csv_all/alert_csv.txt"), count),
        ),
        "csv (Snort 2 default)": ("csv", repeat_to(lines_of(DATA / "snort/snort2/conf_outputs/alert.csv"), count)),
        "eve (Suricata alerts)": ("eve", repeat_to(eve, count)),
        "not alerts (packet dump lines)": (
            "fast",
            repeat_to(
                [
                    line
                    for line in lines_of(DATA / "snort/snort3/alert_fast_packet/alert_fast.txt")
                    if "[**] [" not in line
                ],
                count,
            ),
        ),
    }


def rate(lines: list, fmt: str) -> float:
    origin = Origin("bench", 0, 0)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for line in lines:
            try:
                parse_line(line, origin, fmt)
            except UnparsableLine:
                pass
        best = min(best, time.perf_counter() - start)
    return len(lines) / best


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                cpu = row.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, load {load:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=50000, help="lines per corpus (default 50000)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    results = []
    for name, (fmt, lines) in corpora(args.lines).items():
        results.append({"corpus": name, "lines": len(lines), "fmt": rate(lines, fmt), "auto": rate(lines, "auto")})
    if args.json:
        print(json.dumps({"machine": machine(), "results": results}, indent=2))
        return
    print(f"machine: {machine()}")
    print(f"{'corpus':42} {'lines/s (fmt)':>14} {'lines/s (auto)':>15}")
    for row in results:
        print(f"{row['corpus']:42} {row['fmt']:14,.0f} {row['auto']:15,.0f}")


if __name__ == "__main__":
    main()
