"""Decisions per second of bridge.decide.policy.Policy on the real calibration alerts.

Run: python bench/bench_policy.py  (from the repository root). The alerts are parsed first (not
timed); then every alert is decided four times over, the last three passes with random public
sources so that threshold counting, no-repeat and the flow memory see many addresses.
"""

from __future__ import annotations

import ipaddress
import random
import time
from dataclasses import replace
from pathlib import Path

from bridge.config import PolicyConfig
from bridge.decide.policy import Policy
from bridge.events import Origin
from bridge.parsers import parse_line

ALERTS = Path(__file__).resolve().parent.parent / "tests" / "data" / "snort" / "calibration" / "alerts"


def load():
    files = sorted(ALERTS.glob("snort3/*/alert_json.txt")) + sorted(ALERTS.glob("snort3/*/alert_fast.txt"))
    files += sorted(ALERTS.glob("snort2/*/alert.fast"))
    alerts = []
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if line.strip():
                alerts.append(parse_line(line, Origin(str(path), 0, number)))
    rng = random.Random(1)
    stream = list(alerts)
    for _ in range(3):
        stream += [replace(a, src=ipaddress.IPv4Address(rng.getrandbits(32) | 0x01000000)) for a in alerts]
    return stream


def main() -> None:
    stream = load()
    unguarded = replace(PolicyConfig(), protected=(), max_new_blocks_per_minute=10**9)
    for name, config in (("default policy", unguarded), ("threshold = 5", replace(unguarded, threshold=5))):
        best = 0.0
        for _ in range(3):
            policy = Policy(config)
            start = time.perf_counter()
            for index, alert in enumerate(stream):
                policy.decide(alert, 1.8e9 + index * 1e-4)
            best = max(best, len(stream) / (time.perf_counter() - start))
        print(f"{name}: {len(stream)} alerts, {best:,.0f} decisions/s (best of 3)")


if __name__ == "__main__":
    main()
