"""Benchmark a storm: N distinct attackers' alert lines written at once, through `snort-bridge run`.

A real `snort-bridge run` process follows an alert_fast file; simulated routers (responder.sim,
SSH and API on loopback) run in other processes, one per router. After a warm-up block (routers connected),
this process writes ``--attackers`` alert lines (one new attacker each) into the file as fast as
it can, rotating it logrotate-style every ``--rotate-every`` lines, and then measures

* ledger: until every attacker is in the ledger (the line -> ledger path: follower, parser,
  policy, one ledger transaction per pass), polled from its SQLite file;
* routers: until every attacker is in the address list of every router.

SSH and API run one after the other in the same run, and the last line gives SSH's time to
every router as a multiple of the API's. Transport ``down`` configures routers that never answer: the ledger figure is then the line ->
ledger path alone, without the router workers taking turns with it for the CPU.

    python bench/bench_storm.py [--attackers 10000] [--routers 3] [--transports ssh,api] [--rotate-every 0]
"""

from __future__ import annotations

import argparse
import ipaddress
import multiprocessing
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench.bench_responder import PASSWORD, router_tables, serve_routers  # noqa: E402
from bench.sim_routers import write_client_key  # noqa: E402

LIST = "blacklist"


def alert_line(address: str) -> str:
    return (
        f'12/04-05:13:20.123456 [**] [1:1000001:1] "STORM attack" [**] [Priority: 1] '
        f"{{TCP}} {address}:4444 -> 192.0.2.1:80\n"
    )


def attacker(index: int) -> str:
    return str(ipaddress.ip_address("198.18.0.0") + index + 1)


def ledger_count(path: str) -> int:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute("SELECT COUNT(*) FROM blocks").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def write_config(workdir: str, transport: str, routers, key_path: str) -> str:
    password_file = os.path.join(workdir, "password")
    with open(password_file, "w") as handle:
        handle.write(PASSWORD + "\n")
    os.chmod(password_file, 0o600)
    known = os.path.join(workdir, f"known_hosts_{transport}")
    if transport == "down":  # routers that never answer: the line -> ledger path alone
        tables = [
            dict(
                name=f"r{i}",
                host="127.0.0.1",
                port=9,
                user="ips",
                transport="api",
                password_file=password_file,
                list=LIST,
            )
            for i in range(len(routers))
        ]
    else:
        tables = router_tables(transport, routers, key_path, known, password_file)
    lines = [
        f'state_dir = "{workdir}/state_{transport}"',
        "[policy]",
        "protected = []",
        'block_for = "1h"',
        "max_new_blocks_per_minute = 1000000",
        "[[alerts]]",
        f'path = "{workdir}/alert_fast.txt"',
        'format = "fast"',
    ]
    for table in tables:
        lines.append("[[routers]]")
        lines += [f"{k} = {v}" if isinstance(v, int) else f'{k} = "{v}"' for k, v in table.items()]
    config = os.path.join(workdir, f"config_{transport}.toml")
    with open(config, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.chmod(config, 0o600)
    return config


class RouterProcesses:
    """``count`` simulated routers, each in a process of its own, as real routers are machines of
    their own: one router's parsing never waits for another's interpreter lock."""

    def __init__(self, count: int, public_key: str) -> None:
        self._pipes, self._processes = [], []
        for _ in range(count):
            parent, child = multiprocessing.Pipe()
            process = multiprocessing.Process(target=serve_routers, args=(1, public_key, child), daemon=True)
            process.start()
            self._pipes.append(parent)
            self._processes.append(process)
        self.identities = [identity for pipe in self._pipes for identity in pipe.recv()]

    def send(self, message: str) -> None:
        for pipe in self._pipes:
            pipe.send(message)
        if message == "stop":
            for process in self._processes:
                process.join(10)

    def recv(self) -> list:
        return [count for pipe in self._pipes for count in pipe.recv()]


def run(transport: str, count: int, attackers: int, rotate_every: int, workdir: str) -> dict:
    key_path = os.path.join(workdir, f"id_{transport}")
    public = write_client_key(key_path)
    parent = RouterProcesses(count, public)
    routers = parent.identities
    config = write_config(workdir, transport, routers, key_path)
    alert_file = os.path.join(workdir, "alert_fast.txt")
    for name in os.listdir(workdir):
        if name.startswith("alert_fast.txt"):
            os.unlink(os.path.join(workdir, name))
    open(alert_file, "w").close()
    ledger = os.path.join(workdir, f"state_{transport}", "responder.sqlite3")
    log = open(os.path.join(workdir, f"run_{transport}.log"), "wb")
    service = subprocess.Popen([sys.executable, "-m", "bridge.cli", "run", "--config", config], stderr=log)
    try:
        with open(alert_file, "a") as handle:
            handle.write(alert_line("198.19.255.1"))
        deadline = time.monotonic() + 60
        while transport != "down":
            parent.send("count")
            if all(n >= 1 for n in parent.recv()):
                break
            if time.monotonic() > deadline:
                raise SystemExit("warm-up block never reached every router")
            time.sleep(0.05)
        want = attackers + 1
        while ledger_count(ledger) < 1:
            time.sleep(0.05)
        started = time.monotonic()
        handle = open(alert_file, "a")
        for index in range(attackers):
            if rotate_every and index and index % rotate_every == 0:
                handle.close()
                rotated = sorted(
                    (int(n.rsplit(".", 1)[1]) for n in os.listdir(workdir) if n.startswith("alert_fast.txt.")),
                    reverse=True,
                )
                for number in rotated:
                    os.rename(f"{alert_file}.{number}", f"{alert_file}.{number + 1}")
                os.rename(alert_file, f"{alert_file}.1")
                handle = open(alert_file, "a")
            handle.write(alert_line(attacker(index)))
        handle.close()
        written = time.monotonic() - started
        in_ledger = on_routers = None
        deadline = time.monotonic() + float(os.environ.get("BENCH_STORM_DEADLINE", "600"))
        while on_routers is None and time.monotonic() < deadline:
            now = time.monotonic()
            if in_ledger is None and ledger_count(ledger) >= want:
                in_ledger = now - started
            if in_ledger is not None and transport == "down":
                on_routers = float("nan")
            elif in_ledger is not None:
                parent.send("count")
                if all(n >= want for n in parent.recv()):
                    on_routers = now - started
            time.sleep(0.01 if in_ledger is None else 0.1)
        parent.send("count")
        present = parent.recv()
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(60)
        log.close()
        parent.send("stop")
    if on_routers is None:
        raise SystemExit(
            f"{transport}: not every attacker reached every router: {present}; "
            f"ledger {ledger_count(ledger)} of {attackers + 1}"
        )
    return {
        "transport": transport,
        "routers": count,
        "attackers": attackers,
        "written_s": written,
        "ledger_s": in_ledger,
        "routers_s": on_routers,
        "present": present,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attackers", type=int, default=10_000)
    parser.add_argument("--routers", type=int, default=3)
    parser.add_argument(
        "--transports",
        default="down,api,ssh",
        help="ssh, api, or down (routers that never answer: the line -> ledger path alone)",
    )
    parser.add_argument("--rotate-every", type=int, default=0, help="rotate the file every N lines (0: never)")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    print(
        f"{args.attackers} distinct attackers written at once"
        + (f", rotated every {args.rotate_every} lines" if args.rotate_every else "")
    )
    print(
        f"{'transport':>9} {'routers':>7} {'write s':>8} {'ledger s':>9} {'blocks/s':>9} {'routers s':>10} "
        f"{'blocks/s':>9}"
    )
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-storm-") as workdir:
        for transport in args.transports.split(","):
            r = results[transport] = run(transport, args.routers, args.attackers, args.rotate_every, workdir)
            print(
                f"{r['transport']:>9} {r['routers']:>7} {r['written_s']:>8.2f} {r['ledger_s']:>9.2f} "
                f"{r['attackers'] / r['ledger_s']:>9.0f} {r['routers_s']:>10.2f} "
                f"{r['attackers'] / r['routers_s']:>9.0f}",
                flush=True,
            )
    if "ssh" in results and "api" in results:
        ratio = results["ssh"]["routers_s"] / results["api"]["routers_s"]
        print(f"SSH takes {ratio:.2f}x the API's time to every router (goal: at most 2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
