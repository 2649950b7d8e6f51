#!/usr/bin/env python3
"""Benchmark tzspd against other TZSP -> pcap receivers on loopback, in the same run.

    python bench/bench_tzspd.py                                        # tzspd alone
    python bench/bench_tzspd.py --compare "tzsp2pcap=tzsp2pcap -p {PORT} -f" \\
        --compare "limit-recv=/path/limit-recv -r 16777216 {PORT}" --nice -20
    python bench/bench_tzspd.py --soak 600 --soak-rate 100000          # memory over 10 minutes
    python bench/bench_tzspd.py --modes stdout,exec,fanout2 --no-search   # --exec and --fanout vs stdout
    python bench/bench_tzspd.py --scrape --sizes 64 --no-search        # CPU with /metrics scraped every second

For each frame size (64 and 1400 bytes by default) it measures, for every receiver in turn:

- CPU per packet at fixed rates (``--cpu-rates``): receiver user+sys time over the sending
  and draining window, from /proc, divided by the packets it delivered;
- the highest offered rate with less than ``--loss`` percent loss: doubling from
  ``--start`` until a rate fails, then bisecting to ``--resolution``; each probe is the
  median of ``--reps`` runs of ``--seconds`` of load;

and prints medians and tzspd's ratio to each other receiver. ``{PORT}`` in a command is
replaced by the port, and ``{COUNTER}`` by a pcap counter command (for tzspd --fanout N
--exec '{COUNTER}': each consumer counts its share and the shares are added). Loss = sent - distinct sequence numbers that came out of the receiver's
pcap stream (kernel drops and the receiver's own losses alike). ``{METRICS}`` is replaced by a
free TCP port, and /metrics on it is fetched every ``--scrape-every`` seconds during the run
(``--scrape`` adds tzspd with ``--metrics 127.0.0.1:{METRICS}`` as a receiver of its own, so the
CPU per packet with and without scrapes comes from the same runs).

Load: ``bench/tzsp_load.c`` (sendmmsg batches, paced, bounded in count and time, loopback
only; it also counts the pcap stream), built on demand with the machine's ``cc`` into a cache
directory; without a compiler a Python sender and counter stand in (slower: they may not find
tzspd's limit; the output says "sender-bound" then). ``bg_cpu_s`` is CPU used by other
processes on the machine during each window: large values mean a noisy point.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shlex
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOAD_SOURCE = HERE / "tzsp_load.c"
TZSP_HEADER = b"\x01\x00\x00\x01\x01"
SEQ_OFFSET = 54  # frame offset of the sequence number: after Ethernet(14) + IPv4(20) + TCP(20)
MAGIC = b"TZSB"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MP = multiprocessing.get_context("fork")
DRAIN_IDLE = 0.3


# ---------------------------------------------------------------- the load tool


def load_tool() -> str | None:
    """Path of the compiled tzsp_load (built when missing or older than its source), or None."""
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path(tempfile.gettempdir()) / f"tzsp-ips-{os.getuid()}")) / "bench"
    binary = cache / "tzsp_load"
    if binary.exists() and binary.stat().st_mtime >= LOAD_SOURCE.stat().st_mtime:
        return str(binary)
    if compiler is None:
        return None
    cache.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([compiler, "-O2", "-o", str(binary), str(LOAD_SOURCE)], capture_output=True, text=True)
    if result.returncode != 0:
        print(f"bench: cannot build {LOAD_SOURCE.name}: {result.stderr.strip()[:500]}", file=sys.stderr)
        return None
    return str(binary)


# ---------------------------------------------------------------- Python stand-ins (no compiler)


def build_frame(size: int) -> bytearray:
    """The datagram tzsp_load sends: TZSP header + Ethernet/IPv4/TCP frame of ``size`` bytes."""
    size = max(size, 62)
    eth = bytes.fromhex("0200000000020200000000010800")
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        size - 14,
        1,
        0x4000,
        64,
        6,
        0,
        socket.inet_aton("192.0.2.1"),
        socket.inet_aton("198.51.100.1"),
    )
    tcp = struct.pack("!HHIIBBHHH", 40000, 80, 1, 0, 5 << 4, 0x18, 65535, 0, 0)
    payload = MAGIC + b"\0\0\0\0" + bytes(i & 0xFF for i in range(size - 62))
    return bytearray(TZSP_HEADER + eth + ip + tcp + payload)


def python_sender(port: int, size: int, rate: int, count: int, seconds: float, result) -> None:
    datagram = build_frame(size)
    seq_at = len(TZSP_HEADER) + SEQ_OFFSET + len(MAGIC)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    send, pack_into = sock.send, struct.pack_into
    started = time.perf_counter()
    sent = 0
    while sent < count and time.perf_counter() - started < seconds:
        for seq in range(sent, min(sent + 64, count)):
            pack_into("!I", datagram, seq_at, seq)
            try:
                send(datagram)
            except (BlockingIOError, ConnectionRefusedError):
                pass  # counted as loss, as on a real link
        sent = min(sent + 64, count)
        if rate:
            ahead = started + sent / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
    elapsed = time.perf_counter() - started
    result.put({"sent": sent, "seconds": elapsed, "pps": sent / elapsed if elapsed else 0.0})


def python_counter(stream, result) -> None:
    read = stream.read
    header = read(24)
    ok = len(header) == 24 and header[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1")
    linktype = struct.unpack_from("<I", header, 20)[0] if ok else -1
    seen = bytearray(1 << 24)
    records = distinct = foreign = 0
    buffer = b""
    while ok:
        chunk = read(1 << 20)
        if not chunk:
            break
        buffer += chunk
        offset, end = 0, len(buffer)
        while end - offset >= 16:
            incl = struct.unpack_from("<I", buffer, offset + 8)[0]
            if end - offset < 16 + incl:
                break
            frame_at = offset + 16
            if buffer[frame_at + SEQ_OFFSET : frame_at + SEQ_OFFSET + 4] == MAGIC:
                seq = struct.unpack_from("!I", buffer, frame_at + SEQ_OFFSET + 4)[0] & 0xFFFFFF
                if not seen[seq]:
                    seen[seq] = 1
                    distinct += 1
            else:
                foreign += 1
            records += 1
            offset = frame_at + incl
        buffer = buffer[offset:]
    result.put({"header_ok": ok, "linktype": linktype, "records": records, "delivered": distinct, "foreign": foreign})


# ---------------------------------------------------------------- /proc readings


def cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def busy_seconds() -> float:
    """CPU time all processes and interrupts used, machine-wide (from /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def memory_kb(pid: int) -> dict:
    values = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    except OSError:
        pass
    return values


def udp_socket(port: int) -> tuple[bool, int, int]:
    """(bound, receive queue bytes, drops) of the UDP socket on ``port``."""
    hexport = f":{port:04X}"
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[1].endswith(hexport):
                return True, int(parts[4].split(":")[1], 16), int(parts[-1])
    return False, 0, 0


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def niceness(level: int | None):
    if level is None:
        return None

    def apply():
        try:
            os.setpriority(os.PRIO_PROCESS, 0, level)
        except OSError:
            pass  # not permitted: run at the inherited priority

    return apply


# ---------------------------------------------------------------- one run


class Receiver:
    """A receiver command with its stdout read by a counter."""

    def __init__(self, command: str, tool: str | None, count: int, nice: int | None):
        self.port = free_port()
        self.metrics_port = free_tcp_port() if "{METRICS}" in command else None
        argv = [
            part.replace("{PORT}", str(self.port)).replace("{METRICS}", str(self.metrics_port))
            for part in shlex.split(command)
        ]
        env = dict(os.environ, PYTHONUNBUFFERED="1")  # the worst case for a Python receiver's stdout
        self.stderr = tempfile.TemporaryFile()
        self.fanout = "{COUNTER}" in command  # consumers count themselves and print JSON lines
        if self.fanout:
            if not tool:
                raise RuntimeError("a {COUNTER} command needs the compiled tzsp_load")
            argv = [part.replace("{COUNTER}", f"{tool} count -n {count}") for part in argv]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=self.stderr, env=env, preexec_fn=niceness(nice)
        )
        if self.fanout:
            self.counter, self.counter_pid, self.queue = None, None, None
            return
        if tool:
            self.counter = subprocess.Popen(
                [tool, "count", "-n", str(count)],
                stdin=self.proc.stdout,
                stdout=subprocess.PIPE,
                preexec_fn=niceness(nice),
            )
            self.counter_pid = self.counter.pid
            self.queue = None
        else:
            self.queue = MP.Queue()
            self.counter = MP.Process(
                target=python_counter, args=(os.fdopen(os.dup(self.proc.stdout.fileno()), "rb", 0), self.queue)
            )
            self.counter.start()
            self.counter_pid = self.counter.pid
        self.proc.stdout.close()

    def wait_bound(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if udp_socket(self.port)[0]:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"receiver did not bind port {self.port}: {self.error_text()}")

    def wait_drained(self, timeout: float = 30.0) -> None:
        """Until the socket queue has stayed empty for DRAIN_IDLE seconds."""
        deadline = time.monotonic() + timeout
        empty_since = None
        while time.monotonic() < deadline:
            if udp_socket(self.port)[1] == 0:
                empty_since = empty_since or time.monotonic()
                if time.monotonic() - empty_since >= DRAIN_IDLE:
                    return
            else:
                empty_since = None
            time.sleep(0.02)

    def stop(self) -> dict:
        for sig, grace in ((signal.SIGINT, 10), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            if self.proc.poll() is not None:
                break
            self.proc.send_signal(sig)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                continue
        if self.fanout:  # one JSON line per consumer process: add them up
            lines = [json.loads(line) for line in self.proc.stdout.read().decode().splitlines() if line.startswith("{")]
            counted = {key: sum(line[key] for line in lines) for key in ("records", "delivered")}
            counted["header_ok"] = bool(lines) and all(line["header_ok"] for line in lines)
            counted["consumers"] = len(lines)
        elif self.queue is None:
            out, _ = self.counter.communicate(timeout=30)
            counted = json.loads(out)
        else:
            counted = self.queue.get(timeout=30)
            self.counter.join(10)
        return counted

    def error_text(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-400:]


def send(tool: str | None, port: int, size: int, rate: int, count: int, seconds: float, nice: int | None) -> dict:
    if tool:
        proc = subprocess.Popen(
            [tool, "send", "-p", str(port), "-s", str(size), "-r", str(rate), "-n", str(count), "-t", str(seconds)],
            stdout=subprocess.PIPE,
            preexec_fn=niceness(nice),
        )
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        result = json.loads(out)
        result["send_cpu_s"] = round(usage.ru_utime + usage.ru_stime, 3)
        return result
    queue = MP.Queue()
    sender = MP.Process(target=python_sender, args=(port, size, rate, count, seconds, queue))
    sender.start()
    result = queue.get(timeout=seconds + 60)
    sender.join(10)
    result["send_cpu_s"] = None
    return result


class Scraper:
    """Fetches http://127.0.0.1:PORT/metrics every ``interval`` seconds on a thread, as Prometheus would."""

    def __init__(self, port: int, interval: float):
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.interval = interval
        self.done = threading.Event()
        self.scrapes = self.failures = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.done.wait(self.interval):
            try:
                with urllib.request.urlopen(self.url, timeout=5) as answer:
                    answer.read()
                self.scrapes += 1
            except OSError:
                self.failures += 1

    def __enter__(self) -> Scraper:
        deadline = time.monotonic() + 30  # the server is up (and prometheus_client imported) before measuring
        while True:
            try:
                with urllib.request.urlopen(self.url, timeout=5) as answer:
                    answer.read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.url} never answered") from None
                time.sleep(0.05)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join(10)


def scrape_cost(command: str, tool: str | None, scrapes: int) -> dict:
    """CPU the receiver spends per scrape of its /metrics, with no traffic: the cost a scrape every
    second adds to each second of packets, measured without the noise of the packet path."""
    receiver = Receiver(command, tool, 10000, None)
    try:
        receiver.wait_bound()
        with Scraper(receiver.metrics_port, 3600):  # waits until /metrics answers, then stays idle
            pass
        time.sleep(0.3)
        before = cpu_seconds(receiver.proc.pid)
        started = time.monotonic()
        for _ in range(scrapes):
            with urllib.request.urlopen(f"http://127.0.0.1:{receiver.metrics_port}/metrics", timeout=5) as answer:
                answer.read()
        wall = time.monotonic() - started
        cpu = cpu_seconds(receiver.proc.pid) - before
    finally:
        receiver.stop()
    return {
        "scrapes": scrapes,
        "cpu_s": round(cpu, 3),
        "us_per_scrape": round(cpu * 1e6 / scrapes, 1),
        "wall_ms_per_scrape": round(wall * 1e3 / scrapes, 2),
    }


def run_point(
    command: str, tool: str | None, size: int, rate: int, seconds: float, nice: int | None, scrape_every: float = 1.0
) -> dict:
    count = max(10000, int(rate * seconds)) if rate else 4_000_000
    receiver = Receiver(command, tool, count, nice)
    scraper = None
    try:
        receiver.wait_bound()
        time.sleep(0.2)
        if receiver.metrics_port is not None:
            scraper = Scraper(receiver.metrics_port, scrape_every).__enter__()
        before = (cpu_seconds(receiver.proc.pid), cpu_seconds(receiver.counter_pid), busy_seconds(), time.monotonic())
        sent = send(tool, receiver.port, size, rate, count, seconds + 2 if rate else seconds, nice)
        receiver.wait_drained()
        _, _, drops = udp_socket(receiver.port)
        after = (cpu_seconds(receiver.proc.pid), cpu_seconds(receiver.counter_pid), busy_seconds(), time.monotonic())
    finally:
        if scraper is not None:
            scraper.__exit__()
        counted = receiver.stop()
    recv_cpu = after[0] - before[0]
    counter_cpu = after[1] - before[1]
    bg_cpu = (after[2] - before[2]) - recv_cpu - counter_cpu - (sent["send_cpu_s"] or 0.0)
    delivered = counted["delivered"]
    total = sent["sent"]
    return {
        "size": size,
        "rate": rate,
        "offered_pps": round(sent["pps"]),
        "sent": total,
        "delivered": delivered,
        "records": counted["records"],
        "header_ok": counted["header_ok"],
        "lost": total - delivered,
        "loss_pct": round(100.0 * (total - delivered) / total, 4) if total else 0.0,
        "sock_drops": drops,
        "recv_cpu_s": round(recv_cpu, 3),
        "us_per_pkt": round(recv_cpu * 1e6 / delivered, 3) if delivered else None,
        "send_cpu_s": sent["send_cpu_s"],
        "count_cpu_s": round(counter_cpu, 3),
        "bg_cpu_s": round(max(0.0, bg_cpu), 2),
        "window_s": round(after[3] - before[3], 2),
        "exit": receiver.proc.returncode,
        "scrapes": None if scraper is None else scraper.scrapes,
        "scrape_failures": None if scraper is None else scraper.failures,
    }


# ---------------------------------------------------------------- measurements


def median_point(receivers, tool, size, rate, args, log) -> dict:
    """Each receiver at (size, rate), ``reps`` times, interleaved; name -> medians."""
    runs = {name: [] for name, _ in receivers}
    for _ in range(args.reps):
        for name, command in receivers:
            point = run_point(command, tool, size, rate, args.seconds, args.nice, args.scrape_every)
            point["name"] = name
            log(point)
            runs[name].append(point)
    summary = {}
    for name, points in runs.items():
        per_packet = [p["us_per_pkt"] for p in points if p["us_per_pkt"] is not None]
        summary[name] = {
            "us_per_pkt": statistics.median(per_packet) if per_packet else None,
            "loss_pct": statistics.median(p["loss_pct"] for p in points),
            "offered_pps": statistics.median(p["offered_pps"] for p in points),
            "bg_cpu_s": statistics.median(p["bg_cpu_s"] for p in points),
        }
    return summary


def max_lossless(name, command, tool, size, args, log) -> dict:
    """Highest offered rate whose median loss over ``reps`` runs is below ``--loss``."""

    def probe(rate):
        points = []
        for _ in range(args.reps):
            point = run_point(command, tool, size, rate, args.seconds, args.nice, args.scrape_every)
            point["name"] = name
            log(point)
            points.append(point)
        loss = statistics.median(p["loss_pct"] for p in points)
        offered = statistics.median(p["offered_pps"] for p in points)
        return loss < args.loss, offered, statistics.median(p["bg_cpu_s"] for p in points)

    good, bad, rate = 0, None, args.start
    history = []
    while rate <= args.ceiling:
        ok, offered, bg = probe(rate)
        history.append({"rate": rate, "ok": ok, "offered": round(offered), "bg_cpu_s": bg})
        if ok and offered < rate * 0.9:  # the sender cannot go faster: a lower bound
            return {"max_lossless_pps": round(offered), "sender_bound": True, "history": history}
        if not ok:
            bad = rate
            break
        good = rate
        rate *= 2
    while bad and good and bad / good > 1 + args.resolution:
        mid = int((good * bad) ** 0.5)
        ok, offered, bg = probe(mid)
        history.append({"rate": mid, "ok": ok, "offered": round(offered), "bg_cpu_s": bg})
        good, bad = (mid, bad) if ok else (good, mid)
    return {"max_lossless_pps": good, "sender_bound": False, "history": history}


def soak(command, tool, args, log) -> dict:
    """tzspd at a sustained rate for ``--soak`` seconds: memory at the start and the end."""
    count = int(args.soak_rate * args.soak)
    receiver = Receiver(command, tool, count, args.nice)
    samples = []
    try:
        receiver.wait_bound()
        time.sleep(0.5)
        sender = MP.Process(
            target=lambda: log(
                {
                    "soak_sender": send(
                        tool, receiver.port, args.soak_size, args.soak_rate, count, args.soak + 5, args.nice
                    )
                }
            )
        )
        started = time.monotonic()
        cpu_before = cpu_seconds(receiver.proc.pid)
        sender.start()
        while sender.is_alive() and time.monotonic() - started < args.soak + 60:
            sample = {
                "t": round(time.monotonic() - started, 1),
                **memory_kb(receiver.proc.pid),
                "cpu_s": round(cpu_seconds(receiver.proc.pid) - cpu_before, 2),
            }
            samples.append(sample)
            log({"soak_sample": sample})
            sender.join(min(10.0, max(1.0, args.soak / 60)))
        receiver.wait_drained()
        _, _, drops = udp_socket(receiver.port)
        samples.append(
            {
                "t": round(time.monotonic() - started, 1),
                **memory_kb(receiver.proc.pid),
                "cpu_s": round(cpu_seconds(receiver.proc.pid) - cpu_before, 2),
            }
        )
    finally:
        counted = receiver.stop()
    first = next((s for s in samples if s["t"] >= 10), samples[0])
    last = samples[-1]
    return {
        "soak_s": args.soak,
        "rate": args.soak_rate,
        "size": args.soak_size,
        "sent_target": count,
        "delivered": counted["delivered"],
        "loss_pct": round(100.0 * (count - counted["delivered"]) / count, 4),
        "sock_drops": drops,
        "rss_kb_at_10s": first.get("VmRSS"),
        "peak_rss_kb_at_10s": first.get("VmHWM"),
        "rss_kb_at_end": last.get("VmRSS"),
        "peak_rss_kb_at_end": last.get("VmHWM"),
        "cpu_s": last["cpu_s"],
        "samples": len(samples),
        "receiver_exit": receiver.proc.returncode,
        "receiver_alive_at_end": "VmRSS" in last,
    }


# ---------------------------------------------------------------- command line


def main(argv=None) -> int:
    default = f"{shlex.quote(sys.executable)} -m tzsp.daemon --listen 127.0.0.1 --port {{PORT}} --allow 127.0.0.1/32 -q"
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--receiver", default=default, help="the receiver under test; {PORT} is replaced (default: tzspd)"
    )
    parser.add_argument("--name", default="tzspd")
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="NAME=COMMAND",
        help="another receiver measured in the same run (repeatable)",
    )
    parser.add_argument(
        "--modes",
        metavar="LIST",
        help="measure the receiver in these output modes side by side, e.g. stdout,exec,fanout2: "
        "exec adds --exec {COUNTER}, fanoutN --fanout N --exec {COUNTER} (each consumer a pcap "
        "counter; only the receiver's own CPU is counted); ratios are then to the first mode",
    )
    parser.add_argument("--sizes", default="64,1400", help="Ethernet frame sizes")
    parser.add_argument("--cpu-rates", default="100000,200000", help="fixed rates for CPU per packet ('' for none)")
    parser.add_argument("--no-search", action="store_true", help="skip the highest-lossless-rate search")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="load duration of each run")
    parser.add_argument("--loss", type=float, default=0.1, help="loss limit in percent")
    parser.add_argument("--start", type=int, default=100000, help="first rate of the search")
    parser.add_argument("--ceiling", type=int, default=4_000_000)
    parser.add_argument("--resolution", type=float, default=0.1, help="search stops when bounds are this close")
    parser.add_argument("--nice", type=int, help="run receivers, sender and counter at this niceness (e.g. -20)")
    parser.add_argument("--python-load", action="store_true", help="use the Python sender/counter even with a compiler")
    parser.add_argument(
        "--soak", type=float, metavar="SECONDS", help="instead: run the receiver this long at --soak-rate"
    )
    parser.add_argument("--soak-rate", type=int, default=100000)
    parser.add_argument("--soak-size", type=int, default=64)
    parser.add_argument("--out", help="append every run as a JSON line here")
    parser.add_argument(
        "--scrape",
        action="store_true",
        help="also measure the receiver with --metrics 127.0.0.1:{METRICS}, its /metrics fetched "
        "every --scrape-every seconds",
    )
    parser.add_argument("--scrape-every", type=float, default=1.0, metavar="S")
    args = parser.parse_args(argv)

    receivers = [(args.name, args.receiver)]
    if args.modes:
        try:
            receivers = [mode_receiver(args.name, args.receiver, mode) for mode in args.modes.split(",") if mode]
        except ValueError as error:
            parser.error(str(error))
    for item in args.compare:
        name, sep, command = item.partition("=")
        if not sep or not name or not command.strip():
            parser.error(f"--compare {item!r}: give NAME=COMMAND")
        receivers.append((name, command))
    if args.scrape:
        receivers.append((f"{args.name}+scrape", args.receiver + " --metrics 127.0.0.1:{METRICS}"))
    tool = None if args.python_load else load_tool()
    load_kind = "tzsp_load (C)" if tool else "Python sender/counter"

    def log(record: dict) -> None:
        line = json.dumps(record)
        print(line, file=sys.stderr, flush=True)
        if args.out:
            with open(args.out, "a") as out:
                out.write(line + "\n")

    log({"machine": machine(), "load": load_kind, "receivers": dict(receivers), "nice": args.nice})
    if args.soak:
        result = soak(args.receiver, tool, args, log)
        log({"soak": result})
        print(
            f"\nsoak of {args.name}: {args.soak:.0f} s at {args.soak_rate} pps, {args.soak_size}-byte frames ({load_kind})"
        )
        print(
            f"RSS {result['rss_kb_at_10s']} kB at 10 s -> {result['rss_kb_at_end']} kB at the end; "
            f"peak RSS {result['peak_rss_kb_at_10s']} kB -> {result['peak_rss_kb_at_end']} kB; "
            f"loss {result['loss_pct']}%, CPU {result['cpu_s']} s"
        )
        return 0

    if args.scrape:
        cost = scrape_cost(receivers[-1][1], tool, 500)
        log({"scrape_cost": cost})
        print(
            f"\none scrape of {receivers[-1][0]}'s /metrics costs it {cost['us_per_scrape']} µs of CPU "
            f"({cost['wall_ms_per_scrape']} ms wall); at one scrape a second and 100k packets/s that is "
            f"{cost['us_per_scrape'] / 100000:.4f} µs per packet"
        )

    sizes = [int(s) for s in args.sizes.split(",") if s]
    rates = [int(r) for r in args.cpu_rates.split(",") if r]
    cpu_rows, search_rows = [], []
    for size in sizes:
        for rate in rates:
            summary = median_point(receivers, tool, size, rate, args, log)
            cpu_rows.append((size, rate, summary))
        if not args.no_search:
            found = {name: max_lossless(name, command, tool, size, args, log) for name, command in receivers}
            log({"size": size, "max_lossless": found})
            search_rows.append((size, found))
    report(receivers, cpu_rows, search_rows, args, load_kind)
    return 0


def mode_receiver(name: str, command: str, mode: str) -> tuple[str, str]:
    """(name, command) of tzspd in an output mode: stdout, exec, or fanoutN."""
    if mode == "stdout":
        return name, command
    if mode == "exec":
        return f"{name} --exec", f"{command} --exec {{COUNTER}}"
    if mode.startswith("fanout") and mode[6:].isdigit() and int(mode[6:]) >= 1:
        return f"{name} --fanout {int(mode[6:])}", f"{command} --fanout {int(mode[6:])} --exec {{COUNTER}}"
    raise ValueError(f"--modes: {mode!r} is not stdout, exec or fanoutN")


def machine() -> dict:
    model = ""
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return {
        "cpus": os.cpu_count(),
        "model": model,
        "kernel": os.uname().release,
        "python": sys.version.split()[0],
        "loadavg": os.getloadavg(),
    }


def ratio(mine, theirs) -> str:
    if not mine or not theirs:
        return "-"
    return f"{mine / theirs:.2f}"


def report(receivers, cpu_rows, search_rows, args, load_kind) -> None:
    mine = receivers[0][0]
    others = [name for name, _ in receivers[1:]]
    modes = bool(args.modes)  # ratios of each mode to the first (how much more it costs)
    print(f"\nload: {load_kind}; median of {args.reps} runs of {args.seconds:g} s; niceness {args.nice}")
    if cpu_rows:
        print(
            "\n| frame | rate | "
            + " | ".join(f"{n} µs/pkt (loss)" for n, _ in receivers)
            + "".join(f" | {o}/{mine}" if modes else f" | {mine}/{o}" for o in others)
            + " | bg CPU s |"
        )
        print("|---" * (3 + len(receivers) + len(others)) + "|")
        for size, rate, summary in cpu_rows:
            cells = [
                f"{summary[n]['us_per_pkt']:.2f} ({summary[n]['loss_pct']}%)" if summary[n]["us_per_pkt"] else "-"
                for n, _ in receivers
            ]
            ratios = [
                ratio(summary[o]["us_per_pkt"], summary[mine]["us_per_pkt"])
                if modes
                else ratio(summary[mine]["us_per_pkt"], summary[o]["us_per_pkt"])
                for o in others
            ]
            bg = max(summary[n]["bg_cpu_s"] for n, _ in receivers)
            print(f"| {size} B | {rate:,} | " + " | ".join(cells) + "".join(f" | {r}" for r in ratios) + f" | {bg} |")
    if search_rows:
        print(
            "\n| frame | "
            + " | ".join(f"{n} lossless pps" for n, _ in receivers)
            + "".join(f" | {o}/{mine}" if modes else f" | {mine}/{o}" for o in others)
            + " |"
        )
        print("|---" * (1 + len(receivers) + len(others)) + "|")
        for size, found in search_rows:
            cells = [
                f"{found[n]['max_lossless_pps']:,}" + (" (sender-bound)" if found[n]["sender_bound"] else "")
                for n, _ in receivers
            ]
            ratios = [
                ratio(found[o]["max_lossless_pps"], found[mine]["max_lossless_pps"])
                if modes
                else ratio(found[mine]["max_lossless_pps"], found[o]["max_lossless_pps"])
                for o in others
            ]
            print(f"| {size} B | " + " | ".join(cells) + "".join(f" | {r}" for r in ratios) + " |")


if __name__ == "__main__":
    sys.exit(main())
