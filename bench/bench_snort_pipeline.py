#!/usr/bin/env python3
"""The sensor with real Snort behind it: highest rate without loss and CPU per packet of the
whole pipeline (receiver + every Snort process), for `tzsp2pcap -f | snort`, `tzspd --exec
snort` and `tzspd --fanout N --exec snort`, on a realistic mix, side by side in one run.

    python bench/bench_snort_pipeline.py --snort /usr/local/bin/snort3 --snort-config tzsp-ips.lua \\
        --captures DIR [--tzsp2pcap "env LD_PRELOAD=… tzsp2pcap -p {PORT} -f"] [--fanout 1,2]

It builds nothing and downloads nothing: Snort, its configuration and tzsp2pcap are given.
The mix: every Ethernet capture in --captures (pcap or pcapng) whose name does not look like a
scan or an attack is benign traffic, concatenated; frames of the scan and attack captures
(``scan``, ``fingerprint``, ``dvwa``, ``malicious`` or ``attack`` in the name) are spread
evenly through it (``--scan-share`` of the frames).
``tzsp_load send -f`` (bench/tzsp_load.c, built on demand) sends it as TZSP in a loop; each
pass moves every address (checksums stay valid), so a pass is new flows for Snort and for
the fan-out hash.

Per run: the pipeline starts and Snort settles (CPU idle), the load runs ``--seconds``, the
pipeline drains; CPU per packet = CPU of the receiver and all Snort processes over that
window / packets Snort analysed; loss = sent - analysed (Snort's own "daq analyzed" count at
exit, summed over the Snort processes). The search doubles from --start until loss exceeds
--loss percent, then bisects to --resolution.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_tzspd import busy_seconds, cpu_seconds, free_port, load_tool, machine, niceness, udp_socket  # noqa: E402

from tzsp.capture_files import CaptureError, read_capture  # noqa: E402

SCAN_NAME = re.compile(r"scan|fingerprint|dvwa|malicious|attack", re.IGNORECASE)  # mixed in, not looped whole
SNAPLEN = 9000  # larger frames (offload captures) are left out of the mix


def build_mix(captures: Path, scan_share: float, out: Path) -> dict:
    benign, scans, used = [], [], []
    for path in sorted(captures.iterdir()):
        if path.suffix not in (".pcap", ".pcapng", ".cap"):
            continue
        try:
            linktype, records = read_capture(path)
            frames = [bytes(frame) for _, frame in records if len(frame) <= SNAPLEN]
        except CaptureError:
            continue
        if linktype != 1 or not frames:
            continue
        (scans if SCAN_NAME.search(path.name) else benign).append(frames)
        used.append(path.name)
    mix = [frame for frames in benign for frame in frames]
    scan_frames = [frame for frames in scans for frame in frames]
    if not mix:
        raise SystemExit(f"no Ethernet capture without 'scan' in its name under {captures}")
    wanted = int(len(mix) * scan_share / (1 - scan_share)) if scan_share else 0
    scan_frames = scan_frames[:wanted]
    if scan_frames:  # spread evenly
        step = len(mix) / len(scan_frames)
        for i, frame in enumerate(scan_frames):
            mix.insert(int(i * step) + i, frame)
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, frame in enumerate(mix):
            f.write(struct.pack("<IIII", 1_700_000_000 + i // 1_000_000, i % 1_000_000, len(frame), len(frame)))
            f.write(frame)
    sizes = [len(frame) for frame in mix]
    return {
        "frames": len(mix),
        "scan_frames": len(scan_frames),
        "mean_bytes": round(statistics.mean(sizes)),
        "captures": used,
    }


# ---------------------------------------------------------------- processes


def children(pid: int) -> list[int]:
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return found


def tree_cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


class Pipeline:
    """One pipeline: a receiver whose stream reaches Snort (piped, or started by tzspd)."""

    def __init__(self, name: str, kind: str, args, port: int, workdir: Path):
        self.name, self.port = name, port
        slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")
        self.out = open(workdir / f"{slug}.out", "w+")
        snort = f"{shlex.quote(args.snort)} -c {shlex.quote(args.snort_config)} -r /dev/stdin {args.snort_args}"
        tzspd = [
            sys.executable,
            "-m",
            "tzsp.daemon",
            "--listen",
            "127.0.0.1",
            "--port",
            str(port),
            "--allow",
            "127.0.0.1/32",
            "-q",
        ]
        self.piped = None
        logs = workdir / slug
        logs.mkdir(exist_ok=True)
        if kind == "pipe":
            argv = shlex.split(args.tzsp2pcap.replace("{PORT}", str(port)))
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.out, preexec_fn=niceness(args.nice))
            self.piped = subprocess.Popen(
                shlex.split(snort) + ["-l", str(logs)],
                stdin=self.proc.stdout,
                stdout=self.out,
                stderr=subprocess.STDOUT,
                preexec_fn=niceness(args.nice),
            )
            self.proc.stdout.close()
        else:
            fanout = int(kind)
            if fanout > 1:
                for number in range(1, fanout + 1):
                    (logs / str(number)).mkdir(exist_ok=True)
                command = f"{snort} -l {logs}/{{consumer}}"
            else:
                command = f"{snort} -l {logs}"
            self.proc = subprocess.Popen(
                tzspd + ["--fanout", str(fanout), "--exec", command],
                stdout=self.out,
                stderr=subprocess.STDOUT,
                cwd=HERE.parent,
                preexec_fn=niceness(args.nice),
            )  # its Snorts inherit it
        self.snort_count = 1 if kind == "pipe" else int(kind)

    def snorts(self) -> list[int]:
        if self.piped is not None:
            return [self.piped.pid]
        return children(self.proc.pid)

    def pids(self) -> list[int]:
        return [self.proc.pid] + self.snorts()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Bound, all Snort processes started, and their CPU still (initialised, waiting)."""
        deadline = time.monotonic() + timeout
        last, still_since = -1.0, None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.text()[-600:]}")
            if udp_socket(self.port)[0] and len(self.snorts()) >= self.snort_count:
                cpu = tree_cpu(self.pids())
                if cpu == last:
                    still_since = still_since or time.monotonic()
                    if time.monotonic() - still_since >= 0.5:
                        return
                else:
                    last, still_since = cpu, None
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not get ready: {self.text()[-600:]}")

    def wait_drained(self, timeout: float = 60.0) -> None:
        """Socket queue empty and no process using CPU any more for 0.5 s."""
        deadline = time.monotonic() + timeout
        last, still_since = -1.0, None
        while time.monotonic() < deadline:
            cpu = tree_cpu(self.pids())
            if udp_socket(self.port)[1] == 0 and cpu == last:
                still_since = still_since or time.monotonic()
                if time.monotonic() - still_since >= 0.5:
                    return
            else:
                still_since = None
            last = cpu
            time.sleep(0.05)

    def stop(self) -> int:
        """Stop the receiver (end of input reaches Snort, which prints its counts); returns the
        packets Snort analysed, summed over its processes."""
        self.proc.send_signal(signal.SIGINT)
        for proc in (self.proc, self.piped):
            if proc is None:
                continue
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return analysed(self.text())

    def text(self) -> str:
        self.out.flush()
        self.out.seek(0)
        return self.out.read()


def analysed(text: str) -> int:
    """Sum of Snort's "daq ... analyzed: N" over every statistics block in text."""
    total, in_daq = 0, False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped == "daq":
            in_daq = True
        elif in_daq and stripped.startswith("analyzed:"):
            total += int(stripped.split(":", 1)[1])
            in_daq = False
    return total


def run_point(name, kind, args, tool, mix, rate, workdir) -> dict:
    port = free_port()
    pipeline = Pipeline(name, kind, args, port, workdir)
    count = int(rate * args.seconds)
    try:
        pipeline.wait_ready()
        before = (tree_cpu(pipeline.pids()), cpu_seconds(pipeline.proc.pid), busy_seconds(), time.monotonic())
        sender = subprocess.run(
            [
                tool,
                "send",
                "-f",
                str(mix),
                "-p",
                str(port),
                "-r",
                str(rate),
                "-n",
                str(count),
                "-t",
                str(args.seconds + 2),
            ],
            capture_output=True,
            text=True,
            check=True,
            preexec_fn=niceness(args.nice),
        )
        sent = json.loads(sender.stdout)
        pipeline.wait_drained()
        after = (tree_cpu(pipeline.pids()), cpu_seconds(pipeline.proc.pid), busy_seconds(), time.monotonic())
        drops = udp_socket(port)[2]
    finally:
        seen = pipeline.stop()
    total_cpu = after[0] - before[0]
    receiver_cpu = after[1] - before[1]
    return {
        "name": name,
        "rate": rate,
        "offered_pps": round(sent["pps"]),
        "sent": sent["sent"],
        "analysed": seen,
        "loss_pct": round(100.0 * (sent["sent"] - seen) / sent["sent"], 4) if sent["sent"] else 0.0,
        "sock_drops": drops,
        "cpu_s": round(total_cpu, 3),
        "receiver_cpu_s": round(receiver_cpu, 3),
        "us_per_pkt": round(total_cpu * 1e6 / seen, 2) if seen else None,
        "receiver_us_per_pkt": round(receiver_cpu * 1e6 / seen, 2) if seen else None,
        "bg_cpu_s": round(max(0.0, (after[2] - before[2]) - total_cpu), 2),
        "window_s": round(after[3] - before[3], 2),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--snort", required=True, help="the Snort 3 binary")
    parser.add_argument("--snort-config", required=True, help="its configuration (e.g. snort/snort3/tzsp-ips.lua)")
    parser.add_argument("--snort-args", default="--daq-batch-size 1", help="more Snort options")
    parser.add_argument("--captures", required=True, type=Path, help="directory of captures for the mix")
    parser.add_argument("--scan-share", type=float, default=0.05, help="share of scan frames in the mix")
    parser.add_argument(
        "--tzsp2pcap", help="command printing the pcap stream, {PORT} replaced, e.g. 'tzsp2pcap -p {PORT} -f'"
    )
    parser.add_argument("--fanout", default="1,2", help="tzspd --exec with these numbers of Snort processes")
    parser.add_argument("--cpu-rates", default="50000", help="fixed rates for CPU per packet")
    parser.add_argument("--no-search", action="store_true")
    parser.add_argument("--start", type=int, default=25000)
    parser.add_argument("--ceiling", type=int, default=1_000_000)
    parser.add_argument("--resolution", type=float, default=0.1)
    parser.add_argument("--loss", type=float, default=0.1, help="loss limit in percent")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--reps", type=int, default=1, help="runs per point (median)")
    parser.add_argument("--nice", type=int, help="run the pipelines and the sender at this niceness (e.g. -20)")
    parser.add_argument("--out", help="append every run as a JSON line here")
    parser.add_argument("--keep", action="store_true", help="keep the mix and Snort's logs (hundreds of MB)")
    args = parser.parse_args(argv)

    tool = load_tool()
    if tool is None:
        raise SystemExit("bench/tzsp_load.c could not be built (needs cc)")
    workdir = Path(tempfile.mkdtemp(prefix="snort-pipeline-"))
    mix = workdir / "mix.pcap"
    try:
        return measure(args, tool, workdir, mix)
    finally:
        if args.keep:
            print(f"mix and Snort logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def measure(args, tool, workdir: Path, mix: Path) -> int:
    def log(record):
        line = json.dumps(record)
        print(line, file=sys.stderr, flush=True)
        if args.out:
            with open(args.out, "a") as out:
                out.write(line + "\n")

    described = build_mix(args.captures, args.scan_share, mix)
    log({"machine": machine(), "mix": described, "snort": args.snort, "config": args.snort_config})
    pipelines = []
    if args.tzsp2pcap:
        pipelines.append(("tzsp2pcap -f | snort", "pipe"))
    for n in (int(x) for x in args.fanout.split(",") if x):
        pipelines.append(("tzspd --exec snort" if n == 1 else f"tzspd --fanout {n} --exec snort", str(n)))

    def point(name, kind, rate):
        runs = []
        for _ in range(args.reps):
            run = run_point(name, kind, args, tool, mix, rate, workdir)
            log(run)
            runs.append(run)
        return {
            key: statistics.median(r[key] for r in runs if r[key] is not None)
            for key in ("offered_pps", "loss_pct", "us_per_pkt", "receiver_us_per_pkt", "bg_cpu_s")
            if any(r[key] is not None for r in runs)
        }

    cpu_rows = []
    for rate in (int(r) for r in args.cpu_rates.split(",") if r):
        cpu_rows.append((rate, {name: point(name, kind, rate) for name, kind in pipelines}))
    search = {}
    if not args.no_search:
        for name, kind in pipelines:
            good, bad, rate, history = 0, None, args.start, []
            while 1000 <= rate <= args.ceiling:  # doubling while it holds, halving while it loses
                result = point(name, kind, rate)
                ok = result["loss_pct"] < args.loss
                history.append((rate, ok, result))
                if ok and result["offered_pps"] < rate * 0.9:  # the sender's limit
                    good = -result["offered_pps"]
                    break
                if ok:
                    good = rate
                    if bad:
                        break
                    rate *= 2
                else:
                    bad = rate
                    if good:
                        break
                    rate //= 2
            while bad and good > 0 and bad / good > 1 + args.resolution:
                mid = int((good * bad) ** 0.5)
                result = point(name, kind, mid)
                history.append((mid, result["loss_pct"] < args.loss, result))
                good, bad = (mid, bad) if result["loss_pct"] < args.loss else (good, mid)
            search[name] = (good, history)
            log({"max_lossless": name, "pps": good})

    print(
        f"\nmix: {described['frames']} frames ({described['scan_frames']} from scans), mean "
        f"{described['mean_bytes']} B; {args.seconds:g} s per run, median of {args.reps}"
    )
    if cpu_rows:
        print(
            "\n| rate | "
            + " | ".join(f"{name.replace('|', chr(92) + '|')}: µs/pkt all (receiver), loss" for name, _ in pipelines)
            + " |"
        )
        print("|---" * (1 + len(pipelines)) + "|")
        for rate, results in cpu_rows:
            cells = []
            for name, _ in pipelines:
                r = results[name]
                cells.append(f"{r.get('us_per_pkt', 0):.2f} ({r.get('receiver_us_per_pkt', 0):.2f}), {r['loss_pct']}%")
            print(f"| {rate:,} | " + " | ".join(cells) + " |")
    if search:
        print(f"\n| pipeline | highest rate with < {args.loss}% loss |\n|---|---|")
        for name, (good, _history) in search.items():
            shown = f"≥ {-good:,} (sender-bound)" if good < 0 else f"{good:,}"
            print(f"| {name.replace('|', chr(92) + '|')} | {shown} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
