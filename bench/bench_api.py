"""Benchmark: blocks per second to one router, over SSH and over the RouterOS API (plain and TLS).

One simulated router (responder.sim, real sockets on loopback) runs in a child process with
SSH, api and api-ssl on the same state, so it does not share the measuring process's
interpreter lock. Each measurement adds ``--blocks`` fresh addresses on an open session:

- ssh single:  RouterSession.add_block, one exec channel per block (what the worker does);
- ssh line:    ``--per-line`` adds joined by ``;`` in one exec (not something RouterSession does;
               the closest SSH gets to a bulk);
- api single:  ApiSession.add_block, one round trip per block (what the worker does);
- api bulk:    ApiSession.add_blocks, pipelined with .tag (WINDOW commands in flight).

Connect time (TCP, TLS or SSH handshake, login) is measured separately. At the end the
router's list is checked to hold every address sent.

    python bench/bench_api.py [--blocks 1000] [--per-line 100] [--connects 20]
"""

from __future__ import annotations

import argparse
import ipaddress
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from responder.config import RouterConfig  # noqa: E402
from responder.routeros import commands  # noqa: E402
from responder.transport import known_hosts  # noqa: E402
from responder.transport.api import ApiSession  # noqa: E402
from responder.transport.ssh_session import RouterSession  # noqa: E402

LIST = "blacklist"
PASSWORD = "bench-password"


def serve_router(conn) -> None:
    """Child process: one simulated router on SSH, api and api-ssl; answers list sizes until "stop"."""
    from responder.sim import SimRouter

    sim = SimRouter()
    sim.add_user("ips", password=PASSWORD, policies=("ssh", "api", "read", "write"))
    ports = (sim.start("127.0.0.1", 0), sim.start_api("127.0.0.1", 0), sim.start_api("127.0.0.1", 0, tls=True))
    conn.send((ports, sim.host_key.get_name(), sim.host_key.asbytes(), sim.api_certificate.sha256))
    while conn.recv() != "stop":
        conn.send(len(sim.address_list(LIST, 4)))
    sim.stop()


def addresses(start: int, count: int):
    base = int(ipaddress.ip_address("10.0.0.0")) + start
    return [ipaddress.ip_address(base + i) for i in range(count)]


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} blocks/s ({seconds * 1000 / count:.2f} ms each)"


def timed(func) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def connect_times(factory, count: int) -> str:
    times = []
    for _ in range(count):
        session = factory()
        times.append(timed(session.connect))
        session.close()
    times.sort()
    return f"p50 {statistics.median(times) * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=1000, help="addresses per measurement (default 1000)")
    parser.add_argument("--per-line", type=int, default=100, help="adds per SSH exec line (default 100)")
    parser.add_argument("--connects", type=int, default=20, help="connects timed per transport (default 20)")
    args = parser.parse_args()

    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.Process(target=serve_router, args=(child,), daemon=True)
    proc.start()
    (ssh_port, api_port, ssl_port), key_type, key_blob, cert_sha256 = parent.recv()
    workdir = tempfile.mkdtemp(prefix="bench-api-")
    known = os.path.join(workdir, "known_hosts")
    known_hosts.record(known, known_hosts.host_name("127.0.0.1", ssh_port), key_type, key_blob)
    common = dict(
        host="127.0.0.1", user="ips", known_hosts=known, list=LIST, connect_timeout=10.0, command_timeout=10.0
    )
    ssh_cfg = RouterConfig(name="ssh", port=ssh_port, **common)
    api_cfg = RouterConfig(name="api", port=api_port, transport="api", **common)
    ssl_cfg = RouterConfig(name="api-ssl", port=ssl_port, transport="api", tls=True, fingerprint=cert_sha256, **common)

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}, Python {platform.python_version()}, loopback"
    )
    print(f"{args.blocks} fresh IPv4 addresses per row, on an open session\n")
    sent = 0
    results = []

    ssh = RouterSession(ssh_cfg, password=PASSWORD)
    ssh.connect()
    batch = addresses(sent, args.blocks)
    sent += args.blocks
    results.append(
        (
            "ssh single (one exec per block)",
            rate(args.blocks, timed(lambda: [ssh.add_block(a, 3600, "bench") for a in batch])),
        )
    )
    batch = addresses(sent, args.blocks)
    sent += args.blocks
    lines = [
        "; ".join(commands.render_add(None, LIST, a, 3600, "bench") for a in batch[i : i + args.per_line])
        for i in range(0, len(batch), args.per_line)
    ]
    results.append(
        (
            f"ssh line ({args.per_line} adds per exec)",
            rate(args.blocks, timed(lambda: [ssh.run(line) for line in lines])),
        )
    )
    ssh.close()

    for label, cfg in (("api", api_cfg), ("api-ssl", ssl_cfg)):
        session = ApiSession(cfg, password=PASSWORD)
        session.connect()
        batch = addresses(sent, args.blocks)
        sent += args.blocks
        results.append(
            (
                f"{label} single (one round trip per block)",
                rate(
                    args.blocks,
                    timed(lambda session=session, batch=batch: [session.add_block(a, 3600, "bench") for a in batch]),
                ),
            )
        )
        batch = addresses(sent, args.blocks)
        sent += args.blocks
        outcomes = []
        results.append(
            (
                f"{label} bulk (add_blocks, pipelined)",
                rate(
                    args.blocks,
                    timed(
                        lambda session=session, batch=batch, outcomes=outcomes: outcomes.extend(
                            session.add_blocks([(a, 3600, "bench") for a in batch])
                        )
                    ),
                ),
            )
        )
        assert outcomes == ["added"] * args.blocks, set(map(str, outcomes))
        session.close()

    for label, result in results:
        print(f"  {label:<42} {result}")
    print()
    print(
        f"  connect ssh (RSA host key, DH-GEX, password) {connect_times(lambda: RouterSession(ssh_cfg, password=PASSWORD), args.connects)}"
    )
    print(
        f"  connect api (TCP, login)                     {connect_times(lambda: ApiSession(api_cfg, password=PASSWORD), args.connects)}"
    )
    print(
        f"  connect api-ssl (TCP, TLS, pin, login)       {connect_times(lambda: ApiSession(ssl_cfg, password=PASSWORD), args.connects)}"
    )

    parent.send("count")
    held = parent.recv()
    parent.send("stop")
    proc.join(10)
    print(f"\nrouter list holds {held} entries; {sent} were sent")
    return 0 if held == sent else 1


if __name__ == "__main__":
    sys.exit(main())
