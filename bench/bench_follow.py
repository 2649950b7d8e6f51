"""Benchmark the alert follower: write-to-delivery latency and throughput.

Latency: a separate writer process appends alert_fast-like lines at a steady pace, each
carrying CLOCK_MONOTONIC at the moment of writing; the follower (watchdog + inotify, or the
polling fallback) delivers them and the delay is measured per line.
Throughput: a file of many lines is read from the start, (a) without committing, (b) committing
every line with batched saves, (c) committing and saving (fsync) after every line.

    python bench/bench_follow.py [--lines 3000] [--rate 1000] [--bulk 200000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bridge.follow.follower import Follower  # noqa: E402

SAMPLE = (
    '[**] [1:2023753:3] "ET SCAN MS Terminal Server Traffic on Non-standard Port" [**] '
    "[Classification: Attempted Information Leak] [Priority: 2] {TCP} "
    "203.0.113.7:51234 -> 192.0.2.10:3390"
)

WRITER = r"""
import os, sys, time
path, count, rate, sample = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
start = time.monotonic()
for i in range(count):
    due = start + i / rate
    delay = due - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    os.write(fd, ("%d %d %s\n" % (time.monotonic_ns(), i, sample)).encode())
os.close(fd)
"""


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def latency(count: int, rate: float, use_inotify: bool, poll_interval: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "alert_fast.txt")
        open(path, "w").close()
        delays = []
        with Follower(
            [path], os.path.join(tmp, "state"), use_inotify=use_inotify, poll_interval=poll_interval, save_interval=0.2
        ) as follower:
            writer = subprocess.Popen([sys.executable, "-c", WRITER, path, str(count), str(rate), SAMPLE])
            deadline = time.monotonic() + count / rate + 30
            for line in follower.lines(timeout=5):
                delays.append((time.monotonic_ns() - int(line.text.split(" ", 1)[0])) / 1e6)
                follower.commit(line)
                if len(delays) == count or time.monotonic() > deadline:
                    break
            writer.wait(timeout=30)
    return {
        "mode": "inotify" if use_inotify else f"polling {poll_interval}s",
        "lines": len(delays),
        "expected": count,
        "rate": rate,
        "p50_ms": statistics.median(delays),
        "p99_ms": percentile(delays, 99),
        "max_ms": max(delays),
    }


def throughput(count: int, commit: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "alert_fast.txt")
        with open(path, "w") as f:
            for i in range(count):
                f.write(f"{i} {SAMPLE}\n")
        size = os.path.getsize(path)
        save_interval = 0.0 if commit == "every line, saved each time" else 0.2
        seen = 0
        with Follower([path], os.path.join(tmp, "state"), save_interval=save_interval) as follower:
            started = time.perf_counter()
            for line in follower.lines(timeout=2):
                if commit != "none":
                    follower.commit(line)
                seen += 1
                if seen == count:
                    break
            elapsed = time.perf_counter() - started
    return {
        "commit": commit,
        "lines": seen,
        "seconds": elapsed,
        "lines_per_s": seen / elapsed,
        "MB_per_s": size / elapsed / 1e6,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=3000, help="lines for the latency run")
    parser.add_argument("--rate", type=float, default=1000.0, help="lines per second written")
    parser.add_argument("--bulk", type=int, default=200000, help="lines for the throughput run")
    args = parser.parse_args(argv)

    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {os.uname().sysname} "
        f"{os.uname().release}, tmp on {tempfile.gettempdir()}"
    )
    for result in (
        latency(args.lines, args.rate, True, 1.0),
        latency(min(args.lines, 500), min(args.rate, 100.0), False, 0.1),
    ):
        print(
            "latency  {mode:<14} {lines}/{expected} lines at {rate:.0f}/s: p50 {p50_ms:.2f} ms, "
            "p99 {p99_ms:.2f} ms, max {max_ms:.2f} ms".format(**result)
        )
    for commit, count in (
        ("none", args.bulk),
        ("every line, saved every 0.2 s", args.bulk),
        ("every line, saved each time", max(1, args.bulk // 40)),
    ):
        r = throughput(count, commit)
        print(
            "throughput commit={commit:<30} {lines} lines in {seconds:.2f} s: "
            "{lines_per_s:,.0f} lines/s, {MB_per_s:.1f} MB/s".format(**r)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
