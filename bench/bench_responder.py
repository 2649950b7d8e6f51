"""Benchmark the responder: from a block decision to the entry present on every router.

Simulated routers (responder.sim, real SSH over loopback) run in a separate process, so the
routers do not share the measuring process's interpreter lock. For each router count, blocks
are issued one after another; each latency runs from ``Responder.block()`` to the moment every
router has acknowledged the ``add`` (the simulator holds the entry when it answers) and the
ledger has recorded it. A burst of blocks issued at once is then timed for throughput. At the
end the routers' own address lists are checked to hold every address. "calls/router" counts
the worker's add calls during the burst: execs over SSH, ``add_blocks`` batches over the API.

Each router count is run once per transport: over SSH the worker sends one exec per block;
over the RouterOS API (plain, or api-ssl with a pinned certificate) it sends the blocks that
are pending at each pass as one pipelined ``add_blocks`` batch.

    python bench/bench_responder.py [--routers 3,10] [--transports ssh,api,api-ssl] [--blocks 200] [--burst 200]
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

from bridge.config.load import parse_config  # noqa: E402
from responder.events import BlockRequest  # noqa: E402
from responder.responder import Responder, default_session_factory  # noqa: E402
from responder.transport import known_hosts  # noqa: E402

LIST = "blacklist"
PASSWORD = "bench-password"


def serve_routers(count: int, public_key: str, conn) -> None:
    """Child process: ``count`` simulated routers; replies with ports and host keys, then answers counts."""
    from responder.sim import SimRouter

    sims = []
    for _ in range(count):
        sim = SimRouter()
        sim.add_user("ips", password=PASSWORD, authorized_keys=(public_key,), policies=("ssh", "api", "read", "write"))
        sim.start("127.0.0.1", 0)
        sim.start_api("127.0.0.1", 0)
        sim.start_api("127.0.0.1", 0, tls=True)
        sims.append(sim)
    conn.send(
        [
            (
                sim.port,
                sim.host_key.get_name(),
                sim.host_key.asbytes(),
                sim.api_port(),
                sim.api_port(tls=True),
                sim.api_certificate.sha256,
            )
            for sim in sims
        ]
    )
    while True:
        message = conn.recv()
        if message == "stop":
            break
        conn.send([len(sim.address_list(LIST, 4)) for sim in sims])
    for sim in sims:
        sim.stop()


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


class CountingFactory:
    """The default session factory, counting the worker's add calls (each one exec or one batch)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, cfg):
        session = default_session_factory(cfg)
        name = "add_blocks" if hasattr(session, "add_blocks") else "add_block"
        send = getattr(session, name)

        def counted(*args):
            self.calls += 1
            return send(*args)

        setattr(session, name, counted)
        return session


def router_tables(transport: str, routers, key_path: str, known: str, password_file: str) -> list:
    tables = []
    for index, (port, key_type, blob, api_port, ssl_port, cert_sha256) in enumerate(routers):
        table = dict(name=f"r{index}", host="127.0.0.1", user="ips", known_hosts=known, list=LIST)
        if transport == "ssh":
            known_hosts.record(known, known_hosts.host_name("127.0.0.1", port), key_type, blob)
            table.update(port=port, key_file=key_path)
        else:
            table.update(transport="api", password_file=password_file, port=api_port)
            if transport == "api-ssl":
                table.update(tls=True, port=ssl_port, fingerprint=f"sha256:{cert_sha256}")
        tables.append(table)
    return tables


def run(transport: str, count: int, blocks: int, burst: int, workdir: str) -> dict:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private = ed25519.Ed25519PrivateKey.generate()
    tag = f"{transport}_{count}"
    key_path = os.path.join(workdir, f"id_{tag}")
    with open(key_path, "wb") as handle:
        handle.write(
            private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
            )
        )
    os.chmod(key_path, 0o600)
    public = (
        private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    )

    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=serve_routers, args=(count, public, child), daemon=True)
    process.start()
    routers = parent.recv()
    password_file = os.path.join(workdir, "password")
    with open(password_file, "w") as handle:
        handle.write(PASSWORD + "\n")
    os.chmod(password_file, 0o600)
    tables = router_tables(transport, routers, key_path, os.path.join(workdir, f"known_hosts_{tag}"), password_file)
    config = parse_config({"state_dir": os.path.join(workdir, f"state_{tag}"), "routers": tables})
    factory = CountingFactory()
    responder = Responder(config, session_factory=factory)
    responder.start()
    try:
        # connected and synced everywhere before timing starts
        deadline = time.monotonic() + 60
        while any(s.last_seen is None for s in responder.status()) and time.monotonic() < deadline:
            time.sleep(0.05)
        latencies = []
        base = int(ipaddress.ip_address("10.64.0.0"))
        for i in range(blocks):
            address = ipaddress.ip_address(base + i)
            started = time.perf_counter()
            responder.block(BlockRequest(address, 600, "bench", "1:1", requested_at=time.time()))
            if not responder.wait_applied(address, timeout=30):
                raise SystemExit(f"block {address} not applied everywhere within 30 s")
            latencies.append((time.perf_counter() - started) * 1000)
        burst_base = base + 100_000
        factory.calls = 0
        started = time.perf_counter()
        for i in range(burst):
            responder.block(BlockRequest(ipaddress.ip_address(burst_base + i), 600, "bench", requested_at=time.time()))
        for i in range(burst):
            if not responder.wait_applied(ipaddress.ip_address(burst_base + i), timeout=120):
                raise SystemExit("burst not applied within 120 s")
        burst_s = time.perf_counter() - started
        burst_calls = factory.calls / count
        parent.send("count")
        present = parent.recv()
    finally:
        responder.stop()
        parent.send("stop")
        process.join(10)
    if any(n != blocks + burst for n in present):
        raise SystemExit(f"routers hold {present} entries, expected {blocks + burst} each")
    return {
        "transport": transport,
        "routers": count,
        "blocks": blocks,
        "p50_ms": statistics.median(latencies),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies),
        "burst": burst,
        "burst_s": burst_s,
        "burst_rate": burst / burst_s,
        "burst_calls": burst_calls,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routers", default="3,10", help="comma-separated router counts")
    parser.add_argument("--transports", default="ssh,api,api-ssl", help="comma-separated: ssh, api, api-ssl")
    parser.add_argument("--blocks", type=int, default=200, help="sequential blocks per router count")
    parser.add_argument("--burst", type=int, default=200, help="blocks issued at once per router count")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-responder-") as workdir:
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average "
            f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}, Python {platform.python_version()}, loopback"
        )
        print(
            f"{'transport':>9} {'routers':>7} {'blocks':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'burst':>6} "
            f"{'burst s':>8} {'blocks/s':>9} {'calls/router':>12}"
        )
        for count in (int(c) for c in args.routers.split(",")):
            for transport in args.transports.split(","):
                r = run(transport, count, args.blocks, args.burst, workdir)
                print(
                    f"{r['transport']:>9} {r['routers']:>7} {r['blocks']:>6} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
                    f"{r['max_ms']:>8.1f} {r['burst']:>6} {r['burst_s']:>8.2f} {r['burst_rate']:>9.0f} "
                    f"{r['burst_calls']:>12.0f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
