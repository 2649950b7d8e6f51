#!/usr/bin/env python3
"""Benchmark a TZSP -> pcap receiver on loopback: highest lossless rate and CPU per packet.

    python bench/bench_tzspd.py                       # tzspd, 64 and 1400-byte frames
    python bench/bench_tzspd.py --receiver "tzsp2pcap -p {PORT} -f" --name tzsp2pcap

For each point a sender process offers COUNT datagrams at RATE packets/s to 127.0.0.1:PORT
(TZSP v1 / RX / Ethernet / END + an Ethernet/IPv4/TCP frame carrying a sequence number), the
receiver's stdout goes to a counter process that checks the pcap stream and counts distinct
sequence numbers, and the receiver's CPU time is read from /proc for the sending-and-draining
window. Loss = offered - delivered. Everything goes to loopback and every wait is bounded.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shlex
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

TZSP_HEADER = b"\x01\x00\x00\x01\x01"
SEQ_OFFSET = 54  # frame offset of the sequence number: after Ethernet(14) + IPv4(20) + TCP(20)
MAGIC = b"TZSB"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MP = multiprocessing.get_context("fork")  # the counter inherits the pipe's read end


def build_frame(size: int) -> bytearray:
    """An Ethernet/IPv4/TCP frame of ``size`` bytes with room for MAGIC + a 32-bit sequence number."""
    size = max(size, 62)
    eth = bytes.fromhex("020000000002" "020000000001" "0800")
    total = size - 14
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0x4000, 64, 6, 0,
                     socket.inet_aton("192.0.2.1"), socket.inet_aton("198.51.100.1"))
    tcp = struct.pack("!HHIIBBHHH", 40000, 80, 1, 0, 5 << 4, 0x18, 65535, 0, 0)
    payload = MAGIC + b"\0\0\0\0" + bytes(i & 0xFF for i in range(size - 62))
    return bytearray(TZSP_HEADER + eth + ip + tcp + payload)


def send_load(port: int, size: int, rate: int, count: int, result) -> None:
    """Sender process: ``count`` datagrams at ``rate`` pps (0 = as fast as possible), paced in bursts."""
    datagram = build_frame(size)
    seq_at = len(TZSP_HEADER) + SEQ_OFFSET + len(MAGIC)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    send, pack_into = sock.send, struct.pack_into
    burst = 64
    started = time.perf_counter()
    sent = 0
    while sent < count:
        for seq in range(sent, min(sent + burst, count)):
            pack_into("!I", datagram, seq_at, seq)
            try:
                send(datagram)
            except (BlockingIOError, ConnectionRefusedError):
                pass  # counted as loss, as on a real link
        sent = min(sent + burst, count)
        if rate:
            ahead = started + sent / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
    elapsed = time.perf_counter() - started
    result.put((sent, sent / elapsed if elapsed else 0.0))


def count_pcap(stream, result) -> None:
    """Counter process: reads the pcap stream, counts records and distinct sequence numbers."""
    read = stream.read
    header = read(24)
    ok = len(header) == 24 and header[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1")
    linktype = struct.unpack_from("<I", header, 20)[0] if ok else -1
    seen = bytearray(1 << 24)
    records = distinct = bad = 0
    buffer = b""
    while True:
        chunk = read(1 << 20)
        if not chunk:
            break
        buffer += chunk
        offset = 0
        end = len(buffer)
        while end - offset >= 16:
            incl = struct.unpack_from("<I", buffer, offset + 8)[0]
            if end - offset < 16 + incl:
                break
            frame_at = offset + 16
            if buffer[frame_at + SEQ_OFFSET:frame_at + SEQ_OFFSET + 4] == MAGIC:
                seq = struct.unpack_from("!I", buffer, frame_at + SEQ_OFFSET + 4)[0] & 0xFFFFFF
                if not seen[seq]:
                    seen[seq] = 1
                    distinct += 1
            else:
                bad += 1
            records += 1
            offset = frame_at + incl
        buffer = buffer[offset:]
    result.put({"header_ok": ok, "linktype": linktype, "records": records, "delivered": distinct, "bad": bad})


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def socket_queue_empty(port: int) -> bool:
    hexport = f":{port:04X}"
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if parts[1].endswith(hexport) and int(parts[4].split(":")[1], 16) != 0:
                    return False
        except OSError:
            continue
    return True


def wait_bound(port: int, deadline: float) -> bool:
    hexport = f":{port:04X}"
    while time.monotonic() < deadline:
        for table in ("/proc/net/udp", "/proc/net/udp6"):
            try:
                if any(line.split()[1].endswith(hexport) for line in Path(table).read_text().splitlines()[1:]):
                    return True
            except OSError:
                pass
        time.sleep(0.05)
    return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_point(receiver: str, size: int, rate: int, count: int) -> dict:
    port = free_port()
    argv = [part.replace("{PORT}", str(port)) for part in shlex.split(receiver)]
    env = dict(os.environ, PYTHONUNBUFFERED="1")  # the worst case for a Python receiver's stdout
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    counted = MP.Queue()
    counter = MP.Process(target=count_pcap, args=(os.fdopen(os.dup(proc.stdout.fileno()), "rb", 0), counted))
    counter.start()
    proc.stdout.close()
    try:
        if not wait_bound(port, time.monotonic() + 15):
            raise RuntimeError(f"receiver did not bind port {port}: {proc.stderr.read(2000)!r}")
        time.sleep(0.2)
        cpu_before = cpu_seconds(proc.pid)
        sent_queue = MP.Queue()
        sender = MP.Process(target=send_load, args=(port, size, rate, count, sent_queue))
        sender.start()
        sent, offered = sent_queue.get(timeout=max(60.0, count / max(rate, 1) * 3))
        sender.join(10)
        drain_deadline = time.monotonic() + 30
        while time.monotonic() < drain_deadline and not socket_queue_empty(port):
            time.sleep(0.05)
        time.sleep(0.3)
        cpu = cpu_seconds(proc.pid) - cpu_before
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    stats = counted.get(timeout=30)
    counter.join(10)
    stderr = proc.stderr.read().decode(errors="replace")
    delivered = stats["delivered"]
    return {
        "size": size, "rate": rate, "offered_pps": round(offered), "sent": sent, **stats,
        "lost": sent - delivered, "loss_pct": round(100.0 * (sent - delivered) / sent, 4) if sent else 0.0,
        "cpu_s": round(cpu, 3), "us_per_pkt": round(cpu * 1e6 / delivered, 3) if delivered else None,
        "exit": proc.returncode, "stderr_tail": stderr[-300:],
    }


def max_lossless(receiver: str, size: int, reps: int, loss_limit: float, seconds: float, start: int, ceiling: int) -> dict:
    """Geometric search for the highest rate with median loss below loss_limit percent."""
    def passes(rate: int) -> tuple:
        runs = [run_point(receiver, size, rate, max(20000, int(rate * seconds))) for _ in range(reps)]
        loss = statistics.median(r["loss_pct"] for r in runs)
        achieved = statistics.median(r["offered_pps"] for r in runs)
        return loss < loss_limit, achieved, runs

    good, bad = 0, None
    rate = start
    history = []
    while rate <= ceiling:
        ok, achieved, runs = passes(rate)
        history.append({"rate": rate, "ok": ok, "achieved": achieved})
        if ok and achieved < rate * 0.9:
            return {"size": size, "max_lossless_pps": round(achieved), "sender_bound": True, "history": history}
        if not ok:
            bad = rate
            break
        good = rate
        rate *= 2
    while bad and good and bad / good > 1.1:
        mid = int((good * bad) ** 0.5)
        ok, _, _ = passes(mid)
        history.append({"rate": mid, "ok": ok})
        good, bad = (mid, bad) if ok else (good, mid)
    return {"size": size, "max_lossless_pps": good, "sender_bound": False, "history": history}


def main(argv=None) -> int:
    default_receiver = f"{shlex.quote(sys.executable)} -m tzsp.daemon --listen 127.0.0.1 --port {{PORT}} --allow 127.0.0.1/32 -q"
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--receiver", default=default_receiver, help="command; {PORT} is replaced (default: tzspd)")
    parser.add_argument("--name", default="tzspd")
    parser.add_argument("--sizes", default="64,1400")
    parser.add_argument("--cpu-rate", type=int, default=100000, help="fixed rate for the CPU-per-packet figure")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="load duration per search probe")
    parser.add_argument("--loss", type=float, default=0.1, help="loss limit in percent")
    parser.add_argument("--ceiling", type=int, default=2_000_000)
    parser.add_argument("--out", help="append JSON lines here")
    args = parser.parse_args(argv)

    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        cpu_runs = [run_point(args.receiver, size, args.cpu_rate, int(args.cpu_rate * args.seconds)) for _ in range(args.reps)]
        search = max_lossless(args.receiver, size, args.reps, args.loss, args.seconds, 50000, args.ceiling)
        row = {
            "name": args.name, "size": size,
            "cpu_rate": args.cpu_rate,
            "us_per_pkt": statistics.median(r["us_per_pkt"] for r in cpu_runs if r["us_per_pkt"] is not None),
            "loss_pct_at_cpu_rate": statistics.median(r["loss_pct"] for r in cpu_runs),
            "max_lossless_pps": search["max_lossless_pps"], "sender_bound": search["sender_bound"],
            "search": search["history"],
        }
        results.append(row)
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a") as out:
                out.write(json.dumps(row) + "\n")
    print(f"\n| receiver | frame | lossless pps (<{args.loss}% loss) | CPU/packet at {args.cpu_rate} pps | loss there |")
    print("|---|---|---|---|---|")
    for row in results:
        bound = " (sender-bound)" if row["sender_bound"] else ""
        print(f"| {row['name']} | {row['size']} B | {row['max_lossless_pps']:,}{bound} | {row['us_per_pkt']:.2f} µs | {row['loss_pct_at_cpu_rate']}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
