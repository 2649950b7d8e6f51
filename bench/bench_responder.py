"""Benchmark the responder: from a block decision to the entry present on every router.

Simulated routers (responder.sim, real SSH over loopback) run in a separate process, so the
routers do not share the measuring process's interpreter lock. For each router count, blocks
are issued one after another; each latency runs from ``Responder.block()`` to the moment every
router has acknowledged the ``add`` (the simulator holds the entry when it answers) and the
ledger has recorded it. A burst of blocks issued at once is then timed for throughput. At the
end the routers' own address lists are checked to hold every address.

    python bench/bench_responder.py [--routers 3,10] [--blocks 200] [--burst 200]
"""

from __future__ import annotations

import argparse
import ipaddress
import multiprocessing
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bridge.config import parse_config  # noqa: E402
from responder import known_hosts  # noqa: E402
from responder.events import BlockRequest  # noqa: E402
from responder.responder import Responder  # noqa: E402

LIST = "blacklist"


def serve_routers(count: int, public_key: str, conn) -> None:
    """Child process: ``count`` simulated routers; replies with ports and host keys, then answers counts."""
    from responder.sim import SimRouter

    sims = []
    for _ in range(count):
        sim = SimRouter()
        sim.add_user("ips", authorized_keys=(public_key,))
        sim.start("127.0.0.1", 0)
        sims.append(sim)
    conn.send([(sim.port, sim.host_key.get_name(), sim.host_key.asbytes()) for sim in sims])
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


def run(count: int, blocks: int, burst: int, workdir: str) -> dict:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private = ed25519.Ed25519PrivateKey.generate()
    key_path = os.path.join(workdir, f"id_{count}")
    with open(key_path, "wb") as handle:
        handle.write(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                           serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                               serialization.PublicFormat.OpenSSH).decode()

    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=serve_routers, args=(count, public, child), daemon=True)
    process.start()
    routers = parent.recv()
    known = os.path.join(workdir, f"known_hosts_{count}")
    tables = []
    for index, (port, key_type, blob) in enumerate(routers):
        known_hosts.record(known, known_hosts.host_name("127.0.0.1", port), key_type, blob)
        tables.append(dict(name=f"r{index}", host="127.0.0.1", port=port, user="ips", key_file=key_path,
                           known_hosts=known, list=LIST))
    config = parse_config({"state_dir": os.path.join(workdir, f"state_{count}"), "routers": tables})
    responder = Responder(config)
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
        started = time.perf_counter()
        for i in range(burst):
            responder.block(BlockRequest(ipaddress.ip_address(burst_base + i), 600, "bench", requested_at=time.time()))
        for i in range(burst):
            if not responder.wait_applied(ipaddress.ip_address(burst_base + i), timeout=120):
                raise SystemExit("burst not applied within 120 s")
        burst_s = time.perf_counter() - started
        parent.send("count")
        present = parent.recv()
    finally:
        responder.stop()
        parent.send("stop")
        process.join(10)
    if any(n != blocks + burst for n in present):
        raise SystemExit(f"routers hold {present} entries, expected {blocks + burst} each")
    return {
        "routers": count, "blocks": blocks,
        "p50_ms": statistics.median(latencies), "p99_ms": percentile(latencies, 0.99), "max_ms": max(latencies),
        "burst": burst, "burst_s": burst_s, "burst_rate": burst / burst_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routers", default="3,10", help="comma-separated router counts")
    parser.add_argument("--blocks", type=int, default=200, help="sequential blocks per router count")
    parser.add_argument("--burst", type=int, default=200, help="blocks issued at once per router count")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-responder-") as workdir:
        print(f"cpus={os.cpu_count()} python={sys.version.split()[0]}")
        print(f"{'routers':>7} {'blocks':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'burst':>6} {'burst s':>8} {'blocks/s':>9}")
        for count in (int(c) for c in args.routers.split(",")):
            r = run(count, args.blocks, args.burst, workdir)
            print(f"{r['routers']:>7} {r['blocks']:>6} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['max_ms']:>8.1f} "
                  f"{r['burst']:>6} {r['burst_s']:>8.2f} {r['burst_rate']:>9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
