#!/usr/bin/env python3
"""/health under hostile HTTP clients: slow clients and a request flood at once, on loopback.

    python bench/bench_http_hostile.py                       # tzspd --metrics and snort-bridge's [http]
    python bench/bench_http_hostile.py --target plain --impl /tmp/old_httpserver.py   # another server, in-process
    python bench/bench_http_hostile.py --slow 200 --rate 2000 --seconds 10 --flood-path /

Load, all at once for ``--seconds``:
- ``--slow`` slow clients: each sends half a request head, then one byte a second; a client the
  server closes connects again (so there are always that many);
- a flood of ``--rate`` requests per second for ``--flood-path`` (whole requests, answers read),
  shared by ``--loaders`` processes, each with up to 256 connections at a time;
- a probe: GET /health every 50 ms on a fresh connection, its latency measured.

Printed per target: /health answers by status, latency p50 / p99 / max, the share within 100 ms,
the flood's achieved rate and statuses, and the server process's RSS before and after.
Targets: ``tzspd`` (a real ``tzspd --metrics`` process), ``bridge`` (a real ``snort-bridge run``
with [http], no routers), ``plain`` (``HttpServer`` in this process with /health and a 5 ms "/";
``--impl FILE`` loads the HttpServer class from another file, e.g. the one before the selector
server: ``git show d736ef4:plumbing/httpserver.py > /tmp/old_httpserver.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def wait_health(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
            return
        except urllib.error.HTTPError:
            return  # a 503 answers too
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing answers on 127.0.0.1:{port}")


# -- targets ---------------------------------------------------------------------------------------


class ProcessTarget:
    def __init__(self, name: str, argv: list[str], port: int, workdir: str):
        self.name, self.argv, self.port, self.workdir = name, argv, port, workdir
        self.process: subprocess.Popen | None = None

    def __enter__(self):
        self.log = open(os.path.join(self.workdir, "server.log"), "wb")
        self.process = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=self.log, cwd=self.workdir)
        wait_health(self.port)
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def __exit__(self, *exc):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def load_server_module(impl: str | None):
    if not impl:
        from plumbing import httpserver

        return httpserver
    spec = importlib.util.spec_from_file_location("other_httpserver", impl)
    module = importlib.util.module_from_spec(spec)
    sys.modules["other_httpserver"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def serve_plain(port: int, impl: str | None) -> None:
    """The ``plain`` target's process: /health and a status page that costs 5 ms."""
    module = load_server_module(impl)
    Response = module.Response

    def page(request):
        time.sleep(0.005)
        return Response(200, b"page\n" * 200)

    routes = {"/health": lambda request: Response(200, b"ok\n"), "/": page}
    module.HttpServer("127.0.0.1", port, routes).start()
    while True:
        time.sleep(3600)


def plain_target(workdir: str, impl: str | None) -> ProcessTarget:
    port = free_port()
    argv = [sys.executable, os.path.abspath(__file__), "--serve-plain", str(port)]
    if impl:
        argv += ["--impl", os.path.abspath(impl)]
    return ProcessTarget(f"plain ({impl or 'plumbing/httpserver.py'})", argv, port, workdir)


def tzspd_target(workdir: str) -> ProcessTarget:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "tzsp.daemon",
        "--listen",
        "127.0.0.1",
        "--port",
        str(free_port(socket.SOCK_DGRAM)),
        "-o",
        os.devnull,
        "--metrics",
        f"127.0.0.1:{port}",
        "-q",
    ]
    return ProcessTarget("tzspd", argv, port, workdir)


def bridge_target(workdir: str) -> ProcessTarget:
    port = free_port()
    alerts = os.path.join(workdir, "alert_fast.txt")
    Path(alerts).touch()
    config = os.path.join(workdir, "config.toml")
    Path(config).write_text(
        f'state_dir = "{workdir}/state"\n\n[[alerts]]\npath = "{alerts}"\nformat = "fast"\n\n'
        f'[http]\nlisten = "127.0.0.1:{port}"\n'
    )
    os.chmod(config, 0o600)
    argv = [sys.executable, "-m", "bridge.cli", "run", "--config", config]
    return ProcessTarget("snort-bridge", argv, port, workdir)


# -- load ------------------------------------------------------------------------------------------


async def slow_client(port: int, stop: float, counts: Counter) -> None:
    while time.monotonic() < stop:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            counts["connect failed"] += 1
            await asyncio.sleep(0.2)
            continue
        counts["connections"] += 1
        try:
            writer.write(b"GET / HTTP/1.0\r\nX-Slow: ")
            await writer.drain()
            while time.monotonic() < stop:
                await asyncio.sleep(1.0)
                if reader.at_eof():
                    break
                writer.write(b"a")
                await writer.drain()
                try:
                    data = await asyncio.wait_for(reader.read(100), 0.001)
                    if not data:
                        break
                except asyncio.TimeoutError:
                    pass
        except OSError:
            pass
        finally:
            counts["cut"] += 1
            writer.close()


async def one_request(port: int, path: str, timeout: float = 10.0) -> tuple[int, float]:
    started = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        try:
            writer.write(f"GET {path} HTTP/1.0\r\n\r\n".encode())
            await writer.drain()
            data = await asyncio.wait_for(reader.read(), timeout)
        finally:
            writer.close()
    except (OSError, asyncio.TimeoutError):
        return 0, time.monotonic() - started
    status = int(data.split()[1]) if data.startswith(b"HTTP/") else 0
    return status, time.monotonic() - started


async def flood(port: int, path: str, rate: float, stop: float, statuses: Counter) -> None:
    limit = asyncio.Semaphore(256)
    tasks = set()

    async def one():
        async with limit:
            status, _ = await one_request(port, path)
            statuses[status] += 1

    start = time.monotonic()
    sent = 0
    while time.monotonic() < stop:
        due = int((time.monotonic() - start) * rate)
        while sent < due and len(tasks) < 4096:
            task = asyncio.ensure_future(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
        await asyncio.sleep(0.005)
    if tasks:
        await asyncio.wait(tasks, timeout=15)


def flood_process(port: int, path: str, rate: float, seconds: float, out) -> None:
    statuses: Counter = Counter()
    asyncio.run(flood(port, path, rate, time.monotonic() + seconds, statuses))
    out.send(statuses)


def probe(port: int, seconds: float, out) -> None:
    """In a process of its own, so the load's event loop does not delay it: GET /health every 50 ms."""
    stop = time.monotonic() + seconds
    results = []
    while time.monotonic() < stop:
        started = time.monotonic()
        status = 0
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
                client.sendall(b"GET /health HTTP/1.0\r\n\r\n")
                data = b""
                while chunk := client.recv(65536):
                    data += chunk
            status = int(data.split()[1]) if data.startswith(b"HTTP/") else 0
        except OSError:
            pass
        results.append((status, time.monotonic() - started))
        time.sleep(0.05)
    out.send(results)


async def attack(port: int, args) -> dict:
    stop = time.monotonic() + args.seconds
    slow_counts: Counter = Counter()
    statuses: Counter = Counter()
    slow = [asyncio.ensure_future(slow_client(port, stop, slow_counts)) for _ in range(args.slow)]
    await asyncio.sleep(1.0)  # the slow clients are in place first
    receive, send = multiprocessing.Pipe(duplex=False)
    prober = multiprocessing.Process(target=probe, args=(port, stop - time.monotonic(), send), daemon=True)
    prober.start()
    helpers = []  # more flooding processes: one Python event loop does not reach 2,000 requests/s here
    for _ in range(args.loaders - 1):
        back, out = multiprocessing.Pipe(duplex=False)
        helper = multiprocessing.Process(
            target=flood_process,
            args=(port, args.flood_path, args.rate / args.loaders, stop - time.monotonic(), out),
            daemon=True,
        )
        helper.start()
        helpers.append((helper, back))
    await flood(port, args.flood_path, args.rate / args.loaders, stop, statuses)
    loop = asyncio.get_running_loop()
    probes = await loop.run_in_executor(None, receive.recv)
    prober.join(10)
    for helper, back in helpers:
        statuses.update(await loop.run_in_executor(None, back.recv))
        helper.join(10)
    for task in slow:
        task.cancel()
    await asyncio.gather(*slow, return_exceptions=True)
    return {"slow": slow_counts, "flood": statuses, "probes": probes}


def report(name: str, result: dict, seconds: float, rss: tuple[int, int]) -> None:
    probes = result["probes"]
    latencies = sorted(latency for _, latency in probes)
    health = Counter(status for status, _ in probes)
    within = sum(1 for status, latency in probes if status == 200 and latency <= 0.1)
    flood_total = sum(result["flood"].values())
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else latencies * 99
    print(f"{name}:")
    print(
        f"  /health: {len(probes)} probes, statuses {dict(health)}, 200 within 100 ms: {within}/{len(probes)} "
        f"({100.0 * within / max(1, len(probes)):.1f}%)"
    )
    print(f"  /health latency: p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms")
    print(
        f"  flood: {flood_total} requests answered or failed, {flood_total / seconds:.0f}/s, statuses "
        f"{dict(result['flood'])}"
    )
    print(f"  slow clients: {dict(result['slow'])}")
    print(f"  server RSS: {rss[0]} KiB before, {rss[1]} KiB after")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", action="append", choices=("tzspd", "bridge", "plain"))
    parser.add_argument("--impl", help="for --target plain: a file with another HttpServer")
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--flood-path", default="/")
    parser.add_argument("--loaders", type=int, default=2, help="processes sending the flood (default 2)")
    parser.add_argument("--serve-plain", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_plain:
        serve_plain(args.serve_plain, args.impl)
        return 0
    targets = args.target or ["tzspd", "bridge"]
    print(
        f"{args.slow} slow clients, {args.rate:g} requests/s for {args.flood_path}, {args.seconds:g} s; "
        f"/health probed every 50 ms; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    for name in targets:
        with tempfile.TemporaryDirectory() as workdir:
            target = {
                "tzspd": lambda: tzspd_target(workdir),
                "bridge": lambda: bridge_target(workdir),
                "plain": lambda: plain_target(workdir, args.impl),
            }[name]()
            with target:
                before = rss_kib(target.pid)
                result = asyncio.run(attack(target.port, args))
                after = rss_kib(target.pid)
            report(target.name, result, args.seconds, (before, after))
    return 0


if __name__ == "__main__":
    sys.exit(main())
