"""Benchmark the whole bridge: from an alert line written to the address in every router's list.

A real `snort-bridge run` process follows an alert_fast file; simulated routers (responder.sim,
real SSH over loopback) run in another process, which looks up the awaited addresses in its
address lists every millisecond and notes when each first appears (CLOCK_MONOTONIC, shared by all processes).
This process appends one alert line at a time (a new attacker each), taking the time just before
the write, and waits until the address is on every router. Then a burst of lines written at once.

    python bench/bench_pipeline.py [--routers 3] [--alerts 200] [--burst 100]

The old approach for comparison (a cron job once a minute that greps the alert file and logs into
each router in turn, about a second per router) is computed: wait uniform in [0, 60) s, plus 1 s
per router.
"""

from __future__ import annotations

import argparse
import ipaddress
import multiprocessing
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench.bench_responder import percentile  # noqa: E402
from bench.sim_routers import USER, start_routers, trust_routers, write_client_key  # noqa: E402

LIST = "blacklist"
WATCH_INTERVAL = 0.001


def watch_routers(count: int, public_key: str, conn) -> None:
    """Child: ``count`` simulated routers; notes when each address first appears on each."""
    sims = start_routers(count, public_key, conn)
    first_seen = [dict() for _ in sims]
    awaited: set = set()
    while True:
        now = time.monotonic()
        for index, sim in enumerate(sims):
            for address in awaited:
                if address not in first_seen[index] and sim.holds(LIST, address):
                    first_seen[index][address] = now
        awaited = {a for a in awaited if not all(a in seen for seen in first_seen)}
        if conn.poll(WATCH_INTERVAL):
            kind, addresses = conn.recv()
            if kind == "stop":
                break
            if kind == "watch":
                awaited.update(addresses)
                continue
            # "times": for each address, when it was on every router (None: not yet everywhere)
            conn.send(
                [
                    max(seen[a] for seen in first_seen) if all(a in seen for seen in first_seen) else None
                    for a in addresses
                ]
            )
    for sim in sims:
        sim.stop()


def alert_line(address: str) -> str:
    return (
        f'11/14-22:13:20.123456 [**] [1:1000001:1] "BENCH attack" [**] [Priority: 1] '
        f"{{TCP}} {address}:4444 -> 192.0.2.1:80\n"
    )


def attacker(index: int) -> str:
    return str(ipaddress.ip_address("198.18.0.0") + index + 1)


def wait_all(conn, addresses, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        conn.send(("times", addresses))
        times = conn.recv()
        if all(t is not None for t in times) or time.monotonic() > deadline:
            return times
        time.sleep(0.002)


def run(routers: int, alerts: int, burst: int, workdir: str) -> dict:
    key_path = os.path.join(workdir, "id_ed25519")
    public = write_client_key(key_path)
    parent, child = multiprocessing.Pipe()
    sims = multiprocessing.Process(target=watch_routers, args=(routers, public, child), daemon=True)
    sims.start()
    alert_file = os.path.join(workdir, "alert_fast.txt")
    known = os.path.join(workdir, "known_hosts")
    lines = [
        f'state_dir = "{workdir}/state"',
        "[policy]",
        "protected = []",
        'block_for = "1h"',
        "max_new_blocks_per_minute = 100000",
        "[[alerts]]",
        f'path = "{alert_file}"',
        'format = "fast"',
    ]
    identities = parent.recv()
    trust_routers(known, identities)
    for index, (port, _, _) in enumerate(identities):
        lines += [
            "[[routers]]",
            f'name = "r{index}"',
            'host = "127.0.0.1"',
            f"port = {port}",
            f'user = "{USER}"',
            f'key_file = "{key_path}"',
            f'known_hosts = "{known}"',
            f'list = "{LIST}"',
        ]
    config = os.path.join(workdir, "config.toml")
    with open(config, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.chmod(config, 0o600)
    open(alert_file, "w").close()
    log = open(os.path.join(workdir, "run.log"), "wb")
    service = subprocess.Popen([sys.executable, "-m", "bridge.cli", "run", "--config", config], stderr=log)
    try:
        # warm up: the routers connected, the follower running
        parent.send(("watch", ["198.19.255.1"]))
        with open(alert_file, "a") as handle:
            handle.write(alert_line("198.19.255.1"))
        assert wait_all(parent, ["198.19.255.1"])[0] is not None, "warm-up block never arrived"
        latencies = []
        with open(alert_file, "a", buffering=1) as handle:
            for index in range(alerts):
                address = attacker(index)
                parent.send(("watch", [address]))
                written = time.monotonic()
                handle.write(alert_line(address))
                (arrived,) = wait_all(parent, [address])
                if arrived is None:
                    raise RuntimeError(f"{address} never reached every router")
                latencies.append((arrived - written) * 1000)
                time.sleep(0.02)
            addresses = [attacker(alerts + i) for i in range(burst)]
            parent.send(("watch", addresses))
            written = time.monotonic()
            handle.write("".join(alert_line(a) for a in addresses))
            handle.flush()
            times = wait_all(parent, addresses, timeout=120)
        if any(t is None for t in times):
            raise RuntimeError("part of the burst never reached every router")
        burst_s = max(times) - written
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(30)
        log.close()
        parent.send(("stop", []))
        sims.join(10)
    return {
        "routers": routers,
        "alerts": alerts,
        "p50_ms": statistics.median(latencies),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies),
        "burst": burst,
        "burst_s": burst_s,
    }


def old_approach(routers: int, per_router: float = 1.0, period: float = 60.0) -> dict:
    """cron every ``period`` s, then one login per router in turn: uniform wait plus the logins."""
    return {
        "p50_s": 0.50 * period + routers * per_router,
        "p99_s": 0.99 * period + routers * per_router,
        "max_s": period + routers * per_router,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routers", type=int, default=3)
    parser.add_argument("--alerts", type=int, default=200)
    parser.add_argument("--burst", type=int, default=100)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="bench-pipeline-")
    try:
        result = run(args.routers, args.alerts, args.burst, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    old = old_approach(args.routers)
    load = os.getloadavg()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    print(f"alert line written -> address on all {result['routers']} routers, {result['alerts']} alerts one at a time:")
    print(f"  p50 {result['p50_ms']:.1f} ms   p99 {result['p99_ms']:.1f} ms   max {result['max_ms']:.1f} ms")
    print(
        f"burst of {result['burst']} lines written at once: all on every router after {result['burst_s']:.2f} s "
        f"({result['burst'] / result['burst_s']:.0f} blocks/s)"
    )
    print(
        f"old approach (cron each minute, 1 s per router): p50 {old['p50_s']:.1f} s   p99 {old['p99_s']:.1f} s   "
        f"max {old['max_s']:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
