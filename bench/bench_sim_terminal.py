#!/usr/bin/env python3
"""Benchmark routeros-sim's terminal and scripting: what a person, netmiko or a pasted script costs.

    python bench/bench_sim_terminal.py [--entries 200] [--commands 30] [--scripts 50] [--json]

Measures, on loopback: one terminal entry round trip (an ``address-list add`` typed into a
paramiko shell, read back to the next prompt), one netmiko ``send_command`` (``print count-only``),
and the interpreter alone running the ``snort-bridge provision`` script as one console entry.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import paramiko  # noqa: E402
from bench_sim import summary  # noqa: E402  (the same p50/p99 summary as the SSH exec bench)
from netmiko import ConnectHandler  # noqa: E402

from responder.provision import ProvisionPlan, render_provision  # noqa: E402
from responder.sim import SimRouter  # noqa: E402
from responder.sim.script.interpreter import Console  # noqa: E402


def read_prompt(channel: paramiko.Channel) -> bytes:
    data = b""
    while not data.endswith(b"> "):
        chunk = channel.recv(65536)
        if not chunk:
            raise RuntimeError("the terminal closed")
        data += chunk
    return data


def terminal_entries(port: int, count: int) -> list[float]:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect("127.0.0.1", port=port, username="admin+ct", password="pw", look_for_keys=False, allow_agent=False)
    with client:
        channel = client.invoke_shell()
        channel.settimeout(10)
        read_prompt(channel)
        samples = []
        for n in range(count):
            start = time.perf_counter()
            channel.sendall(
                f"/ip firewall address-list add list=bench address=10.9.{n // 250}.{n % 250 + 1}\r".encode()
            )
            read_prompt(channel)
            samples.append(time.perf_counter() - start)
        return samples


def netmiko_commands(port: int, count: int) -> list[float]:
    connection = ConnectHandler(
        device_type="mikrotik_routeros", host="127.0.0.1", port=port, username="admin", password="pw",
        use_keys=False, allow_agent=False, fast_cli=True,
    )  # fmt: skip
    samples = []
    try:
        for _ in range(count):
            start = time.perf_counter()
            connection.send_command("/ip firewall address-list print count-only")
            samples.append(time.perf_counter() - start)
    finally:
        connection.disconnect()
    return samples


def provision_runs(count: int) -> float:
    plan = ProvisionPlan(
        router="core1", router_host="192.0.2.1", this_host=ipaddress.ip_address("192.0.2.5"), user="ipsbot",
        syslog_port=5514,
    )  # fmt: skip
    script = render_provision(plan)
    start = time.perf_counter()
    for _ in range(count):
        sim = SimRouter(host_key=HOST_KEY)
        sim.add_user("admin", password="pw", policies=("ssh", "read", "write", "policy"))
        result = sim.interpreter.run_line("admin", script, console=Console())
        if result.lines:
            raise RuntimeError(f"the provision script failed: {result.lines}")
    return count / (time.perf_counter() - start)


HOST_KEY = paramiko.RSAKey.generate(2048)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200)
    parser.add_argument("--commands", type=int, default=30)
    parser.add_argument("--scripts", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with SimRouter(host_key=HOST_KEY) as sim:
        sim.add_user("admin", password="pw", policies=("ssh", "read", "write", "policy"))
        port = sim.start()
        results = {
            "machine": f"{platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}, "
            f"paramiko {paramiko.__version__}, load {os.getloadavg()[0]:.1f}",
            "terminal_entry": summary(terminal_entries(port, args.entries)),
            "netmiko_send_command": summary(netmiko_commands(port, args.commands)),
            "provision_script_runs_per_s": round(provision_runs(args.scripts), 1),
        }
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for key, value in results.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
