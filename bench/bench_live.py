"""Live detection latency: from the last packet of an attack to its attacker on every router.

The whole chain, real: tzsp-replay streams a real capture to tzspd, which feeds the real Snort
(`tzspd --exec "snort ... -r <stdin>"`, the shipped configuration); snort-bridge run follows the
alert file and blocks on two routeros-sim routers over SSH. The clock starts when tzsp-replay has
sent the capture's last datagram and stops when the attacker is on both routers' address lists
(read in-process every 20 ms). One Snort run per group of captures with distinct attackers (a
router list blocks an address once); --rounds repeats the whole thing.

    python bench/bench_live.py [--engines 3,2] [--rounds 3] [--captures DIR] [--rate 4000]

Captures default to tests/data/captures; --captures /path/to/more adds any of the 14 attack captures
named below that the directory holds. Snort is found like the live tests do (bridge.snort_engines).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

import live_rig  # noqa: E402
from live_rig import Capture, LiveIPS  # noqa: E402

from bridge import snort_engines  # noqa: E402

NMAP = ("192.168.1.10", ("192.168.1.25",))
ATTACKS = [
    Capture("http_dvwa_directorytraversal.pcapng", "10.2.2.101", ("10.2.2.104",)),
    Capture("http_dvwa_sqlinjection.pcapng", "10.2.2.101", ("10.2.2.104",)),
    Capture("http_dvwa_sqlinjection_passwords.pcapng", "10.2.2.101", ("10.2.2.104",)),
    Capture("malicious-ssh-bruteforce.pcap", "147.32.80.40", ("147.32.80.37",)),
    Capture("test12-icmp-portscan.pcap", "192.168.1.109"),
    Capture("activeosfingerprinting.pcapng", "172.16.16.128", ("172.16.16.150",)),
    Capture("synscan.pcapng", "172.16.0.8", ("64.13.134.52",)),
    *(
        Capture(name, *NMAP)
        for name in (
            "TCP_SYN_SCAN.pcap",
            "TCP_CONNECT_SCAN.pcap",
            "UDP_SCAN.pcap",
            "version_scan.pcap",
            "FIN_SCAN.pcap",
            "NULL_SCAN.pcap",
            "XMAS_TREE_SCAN.pcap",
        )
    ),
]


def groups(captures):
    """Runs of captures whose attackers differ (each address can be blocked once per run)."""
    left = list(captures)
    while left:
        group, attackers = [], set()
        for capture in list(left):
            if capture.attacker not in attackers:
                group.append(capture)
                attackers.add(capture.attacker)
                left.remove(capture)
        yield group


def available(directories):
    found = []
    for capture in ATTACKS:
        for directory in directories:
            path = Path(directory) / capture.name
            if path.is_file():
                found.append((replace(capture, directory=Path(directory)), path))
                break
    return found


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0]
    return (
        f"{os.cpu_count()} vCPU {cpu}, Python {platform.python_version()}, {platform.system()} {platform.release()}, "
        f"load average {load:.1f} at start"
    )


class Watcher(threading.Thread):
    """Polls the routers every 10 ms and notes when ``address`` is on all of them (the attack may
    still be streaming then: Snort alerts on the probe or session that crosses its threshold)."""

    def __init__(self, ips: LiveIPS, address: str):
        super().__init__(daemon=True)
        self.ips, self.address = ips, address
        self.seen = None
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set() and self.seen is None:
            if self.ips.blocked_everywhere(self.address):
                self.seen = time.monotonic()
            else:
                time.sleep(0.01)


def run_engine(snort, located, rounds: int, rate: int, realtime: bool):
    """{capture: [(seconds from the last packet, seconds from the first) or None]}"""
    results = {capture.name: [] for capture, _ in located}
    for _ in range(rounds):
        for group in groups([capture for capture, _ in located]):
            with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
                ips = LiveIPS(Path(tmp), snort, mode="exec").start()
                try:
                    for capture in group:
                        watcher = Watcher(ips, capture.attacker)
                        watcher.start()
                        first = time.monotonic()
                        ips.replay(capture, rate=None if realtime else rate)
                        last = time.monotonic()
                        watcher.join(30.0)
                        watcher.done.set()
                        seen = watcher.seen
                        results[capture.name].append(None if seen is None else (seen - last, seen - first))
                finally:
                    ips.close()
    return results


def cell(values) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "missed"
    after = statistics.median(v[0] for v in got)
    since = statistics.median(v[1] for v in got)
    text = f"{after:+.2f} ({since:.2f})"
    if len(got) < len(values):
        text += f", {len(values) - len(got)} of {len(values)} missed"
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="3,2", help="Snort major versions to measure (default 3,2)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=int, default=live_rig.RATE, help="tzsp-replay datagrams per second")
    parser.add_argument("--realtime", action="store_true", help="replay with the captures' own timing instead")
    parser.add_argument("--captures", action="append", default=[], help="another directory of captures")
    args = parser.parse_args()
    located = available([*args.captures, str(live_rig.CAPTURES)])
    engines = snort_engines.find_snorts()
    print(f"machine: {machine()}")
    pace = "the captures' own timing" if args.realtime else f"{args.rate} datagrams/s"
    print(
        f"replay at {pace}, {args.rounds} round(s); median seconds from the capture's last packet sent to the "
        f"attacker on both routers (negative: blocked while the attack was still streaming), and in brackets "
        f"from its first packet"
    )
    table = {}
    for major in [int(m) for m in args.engines.split(",")]:
        snort = engines.get(major)
        if snort is None:
            print(f"Snort {major}: not found, skipped")
            continue
        print(f"Snort {snort.version}: {snort.path}")
        table[major] = run_engine(snort, located, args.rounds, args.rate, args.realtime)
    majors = sorted(table, reverse=True)
    print()
    print("| capture | attacker | " + " | ".join(f"Snort {m}" for m in majors) + " |")
    print("|---|---|" + "---|" * len(majors))
    for capture, _ in located:
        cells = [cell(table[major][capture.name]) for major in majors]
        print(f"| {capture.name} | {capture.attacker} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
