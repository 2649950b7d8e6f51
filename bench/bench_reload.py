#!/usr/bin/env python3
"""Packets lost across a rule reload: `tzspd --exec snort` under a steady TZSP load, SIGHUP in the
middle (what `systemctl reload tzspd` sends), every packet counted by the Snort processes.

    python bench/bench_reload.py --snort /usr/local/bin/snort3 --snort-config snort/snort3/tzsp-ips.lua \\
        --captures tests/data/captures [--rules snort3-community.rules] [--rate 20000] [--seconds 12]

tzspd starts a fresh Snort beside the running one on SIGHUP (tzsp/consumer.py); the fresh one takes
over once it has loaded its rules and reads its pipe, the old one finishes its pipe and exits. Loss =
packets sent - packets analysed by all Snort processes together (each prints its count at exit);
the UDP socket's drop counter says whether any were lost before tzspd. The mix and the Snort
command are bench_snort_pipeline.py's. Builds nothing and downloads nothing but bench/tzsp_load.c.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_snort_pipeline import Pipeline, build_mix, peak_rss_mb, snort_command  # noqa: E402
from bench_tzspd import free_port, load_tool, machine, udp_socket  # noqa: E402


def run(args, tool: str, workdir: Path, mix: Path) -> dict:
    port = free_port()
    name = "tzspd --exec snort" if args.fanout == 1 else f"tzspd --fanout {args.fanout} --exec snort"
    pipeline = Pipeline(name, str(args.fanout), args, port, workdir)
    count = int(args.rate * args.seconds)
    try:
        pipeline.wait_ready(timeout=300)
        first = pipeline.snorts()
        sender = subprocess.Popen(
            [
                tool,
                "send",
                "-f",
                str(mix),
                "-p",
                str(port),
                "-r",
                str(args.rate),
                "-n",
                str(count),
                "-t",
                str(args.seconds + 5),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(args.reload_after)
        reload_at = time.monotonic()
        os.kill(pipeline.proc.pid, signal.SIGHUP)

        def replaced() -> bool:  # only the fresh Snort left: it took over and the old one finished
            snorts = pipeline.snorts()
            return bool(snorts) and not set(snorts) & set(first)

        deadline = time.monotonic() + 300  # the fresh Snort must have taken over before we stop
        while time.monotonic() < deadline and not replaced():
            time.sleep(0.05)
        took_over = time.monotonic() - reload_at
        out, _ = sender.communicate(timeout=args.seconds + 300)
        sent = json.loads(out)
        pipeline.wait_drained()
        drops = udp_socket(port)[2]
        memory = peak_rss_mb(pipeline.snorts())
        was_replaced = replaced()
    finally:
        seen = pipeline.stop()
    return {
        "rate": args.rate,
        "offered_pps": round(sent["pps"]),
        "sent": sent["sent"],
        "analysed": seen,
        "lost": sent["sent"] - seen,
        "sock_drops": drops,
        "replaced": was_replaced,
        "old_gone_after_s": round(took_over, 1),
        "new_snort_peak_rss_mb": memory,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--snort", required=True)
    parser.add_argument("--snort-config", required=True)
    parser.add_argument("--snort-args", default="--daq-batch-size 1", help="more Snort options (Snort 2: '')")
    parser.add_argument("--rules", help="a public rule set to load (Snort 3: -R FILE; Snort 2: an include line)")
    parser.add_argument("--captures", required=True, type=Path)
    parser.add_argument("--scan-share", type=float, default=0.05)
    parser.add_argument("--rate", type=int, default=20000, help="packets per second")
    parser.add_argument("--seconds", type=float, default=12.0, help="length of the load")
    parser.add_argument("--reload-after", type=float, default=3.0, help="SIGHUP this long into the load")
    parser.add_argument("--fanout", type=int, default=1, help="Snort processes (tzspd --fanout N)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--nice", type=int)
    args = parser.parse_args(argv)
    args.tzsp2pcap = None
    tool = load_tool()
    if tool is None:
        raise SystemExit("bench/tzsp_load.c could not be built (needs cc)")
    workdir = Path(tempfile.mkdtemp(prefix="snort-reload-"))
    try:
        mix = workdir / "mix.pcap"
        described = build_mix(args.captures, args.scan_share, mix)
        args.snort_command = snort_command(args, workdir)
        print(json.dumps({"machine": machine(), "mix": described, "snort": args.snort_command}), file=sys.stderr)
        results = []
        for _ in range(args.runs):
            result = run(args, tool, workdir, mix)
            print(json.dumps(result), file=sys.stderr, flush=True)
            results.append(result)
        print(
            "\n| run | rate | sent | analysed | lost | socket drops | old Snort gone after |\n|---|---|---|---|---|---|---|"
        )
        for number, r in enumerate(results, 1):
            print(
                f"| {number} | {r['offered_pps']:,}/s | {r['sent']:,} | {r['analysed']:,} | {r['lost']:,} | "
                f"{r['sock_drops']} | {r['old_gone_after_s']} s{'' if r['replaced'] else ' (NOT replaced)'} |"
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
