#!/usr/bin/env python3
"""Benchmark routeros-sim: what the simulator itself costs, so responder numbers can be read against it.

    python bench/bench_sim.py [--connects 30] [--execs 300] [--json]

Measures, on loopback with a paramiko client: SSH connect + login (DH group exchange, as
paramiko negotiates against a real router), one exec round trip (``address-list add``) on
a persistent connection, and the interpreter alone (lines per second, no SSH).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import paramiko  # noqa: E402

from responder.sim import SimRouter  # noqa: E402


def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def summary(samples):
    return {
        "n": len(samples),
        "p50_ms": round(statistics.median(samples) * 1000, 2),
        "p99_ms": round(percentile(samples, 0.99) * 1000, 2),
    }


def connect(port):
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        "127.0.0.1", port=port, username="ips+ct80w", password="pw", look_for_keys=False, allow_agent=False, timeout=10
    )
    return client


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connects", type=int, default=30)
    parser.add_argument("--execs", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    results = {
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}, "
        f"paramiko {paramiko.__version__}"
    }
    with SimRouter() as sim:
        sim.add_user("ips", password="pw")
        port = sim.start()
        samples = []
        for _ in range(args.connects):
            start = time.perf_counter()
            client = connect(port)
            samples.append(time.perf_counter() - start)
            client.close()
        results["ssh_connect_login"] = summary(samples)

        # paramiko leaves Nagle on: each exec then waits ~40 ms for a delayed ACK; with TCP_NODELAY it does not
        for label, nodelay, base in (("ssh_exec_add", False, 0), ("ssh_exec_add_client_nodelay", True, 1)):
            client = connect(port)
            if nodelay:
                client.get_transport().sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            samples = []
            for n in range(args.execs):
                command = (
                    f"/ip firewall address-list add list=blk address=10.{base}.{n >> 8 & 255}.{n & 255} timeout=1h"
                )
                start = time.perf_counter()
                _, stdout, _ = client.exec_command(command)
                stdout.read()
                stdout.channel.recv_exit_status()
                samples.append(time.perf_counter() - start)
            client.close()
            results[label] = summary(samples)

        lines = 5000
        start = time.perf_counter()
        for n in range(lines):
            sim.execute(
                "ips", f"/ip firewall address-list add list=x address=172.16.{n >> 8 & 255}.{n & 255} timeout=1h"
            )
        elapsed = time.perf_counter() - start
        results["interpreter_add_lines_per_s"] = round(lines / elapsed)
        start = time.perf_counter()
        out = sim.execute("ips", "/ip firewall address-list print terse where list=x").output
        results["print_terse_5000_entries_ms"] = round((time.perf_counter() - start) * 1000, 1)
        assert out.count("\r\n") == lines

    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for key, value in results.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
