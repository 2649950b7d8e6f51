"""The sensor on its own, on loopback: ``python -m tzsp.demo`` (what ``./run demo`` runs).

Writes a small capture (TCP handshake, an HTTP GET for /etc/passwd, ICMP echo, DNS query,
all between documentation addresses), starts tzspd on 127.0.0.1, replays the capture into
it with tzsp-replay as a MikroTik router would stream it, shows what tcpdump reads from
tzspd's standard output, sends one spoofed and one malformed datagram, and prints tzspd's
counters. Bounded in time; leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from plumbing.loopback import free_port, wait_until

DEADLINE = 30.0
CLIENT, SERVER, RESOLVER = "192.0.2.10", "198.51.100.20", "203.0.113.53"


def demo_packets() -> list:
    """scapy packets of a short, recognisable conversation; times from 2023-11-14 22:13:20 UTC."""
    from scapy.all import DNS, DNSQR, ICMP, IP, TCP, UDP, Ether, Raw

    ether = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    reverse = Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")
    get = f"GET /cgi-bin/view.cgi?file=../../etc/passwd HTTP/1.1\r\nHost: {SERVER}\r\n\r\n".encode()
    packets = [
        ether / IP(src=CLIENT, dst=RESOLVER) / UDP(sport=5353, dport=53) / DNS(rd=1, qd=DNSQR(qname="example.org")),
        ether / IP(src=CLIENT, dst=SERVER) / TCP(sport=40000, dport=80, flags="S", seq=100),
        reverse / IP(src=SERVER, dst=CLIENT) / TCP(sport=80, dport=40000, flags="SA", seq=500, ack=101),
        ether / IP(src=CLIENT, dst=SERVER) / TCP(sport=40000, dport=80, flags="A", seq=101, ack=501),
        ether / IP(src=CLIENT, dst=SERVER) / TCP(sport=40000, dport=80, flags="PA", seq=101, ack=501) / Raw(get),
        ether / IP(src=CLIENT, dst=SERVER) / ICMP(type=8, id=7, seq=1) / Raw(b"abcdefgh" * 4),
        reverse / IP(src=SERVER, dst=CLIENT) / ICMP(type=0, id=7, seq=1) / Raw(b"abcdefgh" * 4),
    ]
    for index, packet in enumerate(packets):
        packet.time = 1_700_000_000 + index / 10
    return packets


def _say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def _stats_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(errors="replace").splitlines() if line.startswith("{")]


def run(workdir: Path) -> int:
    from scapy.all import wrpcap

    capture = workdir / "demo.pcap"
    packets = demo_packets()
    wrpcap(str(capture), packets)
    port = free_port()
    tzspd_log = workdir / "tzspd.stderr"
    tzspd_argv = [
        sys.executable,
        "-m",
        "tzsp.daemon",
        "--listen",
        "127.0.0.1",
        "--port",
        str(port),
        "--allow",
        "127.0.0.1/32",
        "--stats-json",
    ]
    tcpdump = shutil.which("tcpdump")
    _say(f"wrote {len(packets)} frames to a capture; starting the sensor:")
    print(f"   tzspd --listen 127.0.0.1 --port {port} --allow 127.0.0.1/32 | tcpdump -n -r -", flush=True)
    processes: list[subprocess.Popen] = []
    with open(tzspd_log, "wb") as log_file:
        tzspd = subprocess.Popen(tzspd_argv, stdout=subprocess.PIPE, stderr=log_file)
        processes.append(tzspd)
        try:
            if tcpdump:
                reader = subprocess.Popen([tcpdump, "-n", "-l", "-r", "-"], stdin=tzspd.stdout)
            else:
                print("   (tcpdump is not installed: showing the pcap stream's size instead)")
                reader = subprocess.Popen(
                    [sys.executable, "-c", "import sys; print(len(sys.stdin.buffer.read()), 'bytes of pcap')"],
                    stdin=tzspd.stdout,
                )
            processes.append(reader)
            tzspd.stdout.close()
            if not wait_until(lambda: b"listening on" in tzspd_log.read_bytes() or tzspd.poll() is not None, 10, 0.05):
                raise RuntimeError("tzspd did not start")
            if tzspd.poll() is not None:
                raise RuntimeError("tzspd stopped: " + tzspd_log.read_text(errors="replace"))

            _say(f"replaying it as TZSP: tzsp-replay demo.pcap --to 127.0.0.1:{port} --rate 10")
            subprocess.run(
                [sys.executable, "-m", "tzsp.replay", str(capture), "--to", f"127.0.0.1:{port}", "--rate", "10", "-q"],
                check=True,
                timeout=DEADLINE,
            )
            _say("a datagram from 127.0.0.2 (not in --allow) and one that is not TZSP")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as spoofer:
                spoofer.bind(("127.0.0.2", 0))
                spoofer.sendto(b"\x01\x00\x00\x01\x01" + bytes(packets[4]), ("127.0.0.1", port))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
                sender.sendto(b"\x07garbage", ("127.0.0.1", port))

            def all_counted() -> bool:
                tzspd.send_signal(signal.SIGUSR1)
                time.sleep(0.1)
                lines = _stats_lines(tzspd_log)
                return bool(lines) and lines[-1]["received"] >= len(packets) + 2

            wait_until(all_counted, 10, 0.05)
            tzspd.send_signal(signal.SIGTERM)
            tzspd.wait(DEADLINE)
            reader.wait(DEADLINE)
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
    final = _stats_lines(tzspd_log)[-1]
    _say("tzspd's counters (also on SIGUSR1 and every --stats-interval):")
    for key, value in final.items():
        if key != "malformed_by_reason":
            print(f"   {key:18} {value}")
    if final["malformed_by_reason"]:
        print("   malformed by reason: " + ", ".join(f"{r}={n}" for r, n in final["malformed_by_reason"].items()))
    notes = [
        line
        for line in tzspd_log.read_text(errors="replace").splitlines()
        if line.startswith("tzspd:") and "stats" not in line
    ]
    _say("tzspd said:")
    for line in notes:
        print("   " + line)
    ok = final["written"] == len(packets) and final["not_allowed"] == 1 and final["malformed"] == 1
    _say(
        "done: every frame arrived, the spoofed and the malformed datagram were counted and dropped"
        if ok
        else "something was lost: see the counters above"
    )
    return 0 if ok else 1


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="tzsp-demo-"))
    try:
        return run(workdir)
    except (RuntimeError, subprocess.SubprocessError, OSError) as error:
        print(f"demo failed: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
