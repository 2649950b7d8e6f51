"""Benchmark the sensor -> central relay: the shipped rsyslog configurations, two real rsyslogd.

Two rsyslog daemons on this machine (loopback, as root or not): a "sensor" with
snort/rsyslog/40-tzsp-ips-sensor.conf (imfile -> omrelp, disk-assisted queue) and a "central"
with 40-tzsp-ips-central.conf (imrelp -> one file per sensor), only the values marked SET replaced.

Latency: lines of Snort 3 alert_json (~480 bytes) are appended to the sensor's alert file at a
steady pace, each carrying CLOCK_MONOTONIC; the central file is watched and the delay measured per
line (write -> the line complete in the central file).
Throughput: a burst of lines is appended at once; time until the last is in the central file.

    python bench/bench_rsyslog_relay.py [--lines 2000] [--rate 200] [--burst 100000]

Needs rsyslogd with the RELP modules (Debian: apt-get install rsyslog rsyslog-relp).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RSYSLOG = ROOT / "snort" / "rsyslog"
SAMPLE = (
    '"proto" : "TCP", "dir" : "C2S", "src_ap" : "203.0.113.7:51234", "dst_ap" : "192.0.2.10:3390", '
    '"rule" : "1:2023753:3", "action" : "allow", "msg" : "ET SCAN MS Terminal Server Traffic on Non-standard Port", '
    '"class" : "Attempted Information Leak", "priority" : 2, "pkt_num" : 123456, "pkt_len" : 60, '
    '"tcp_flags" : "******S*", "b64_data" : "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="'
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(work: Path, include: str, extra_global: str = "") -> subprocess.Popen:
    work.mkdir(parents=True, exist_ok=True)
    (work / "rsyslog.conf").write_text(f'global(workDirectory="{work}"{extra_global})\ninclude(file="{include}")\n')
    return subprocess.Popen(
        ["rsyslogd", "-n", "-i", str(work / "pid"), "-f", str(work / "rsyslog.conf")],
        stdout=open(work / "log", "wb"),
        stderr=subprocess.STDOUT,
    )


def lines_in(path: Path, offset: int):
    """Complete lines appended to ``path`` since ``offset``: (lines, new offset)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    return data[:end].splitlines(), offset + end


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=2000, help="lines for the latency run")
    parser.add_argument("--rate", type=float, default=200.0, help="lines per second in the latency run")
    parser.add_argument("--burst", type=int, default=100000, help="lines for the throughput run")
    args = parser.parse_args()
    if shutil.which("rsyslogd") is None:
        print("rsyslogd is not installed (apt-get install rsyslog rsyslog-relp)", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="bench-relay-"))
    port = free_port()
    alerts = tmp / "sensor" / "alert_json.txt"
    out_dir = tmp / "central" / "sensors"
    sensor_conf = (RSYSLOG / "40-tzsp-ips-sensor.conf").read_text()
    sensor_conf = sensor_conf.replace('file="/var/log/snort/alert_json.txt"', f'file="{alerts}"')
    sensor_conf = sensor_conf.replace('target="central.example.net"', 'target="127.0.0.1"').replace(
        'port="2514"', f'port="{port}"'
    )
    central_conf = (RSYSLOG / "40-tzsp-ips-central.conf").read_text()
    central_conf = central_conf.replace("/var/log/tzsp-ips/sensors/", f"{out_dir}/").replace(
        'port="2514"', f'port="{port}"'
    )
    (tmp / "sensor").mkdir(parents=True)
    (tmp / "central").mkdir(parents=True)
    (tmp / "sensor" / "sensor.conf").write_text(sensor_conf)
    (tmp / "central" / "central.conf").write_text(central_conf)
    alerts.touch()
    central = start(tmp / "central" / "work", str(tmp / "central" / "central.conf"))
    sensor = start(tmp / "sensor" / "work", str(tmp / "sensor" / "sensor.conf"), ' localHostname="bench-sensor"')
    target = out_dir / "bench-sensor" / "alert_json.txt"
    fd = os.open(alerts, os.O_WRONLY | os.O_APPEND)
    try:
        # warm up: the connection, the directory, the file
        os.write(fd, b'{"warm" : 1}\n')
        deadline = time.monotonic() + 20
        while not target.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not target.exists():
            print("nothing arrived; logs in", tmp, file=sys.stderr)
            return 1
        offset = target.stat().st_size

        delays = []
        for i in range(args.lines):
            due = time.monotonic()
            os.write(fd, f'{{"seq" : {i}, "t" : {time.monotonic_ns()}, {SAMPLE}}}\n'.encode())
            until = due + 1.0 / args.rate
            while True:
                got, offset = lines_in(target, offset)
                now = time.monotonic_ns()
                for line in got:
                    sent = int(line.split(b'"t" : ', 1)[1].split(b",", 1)[0])
                    delays.append((now - sent) / 1e6)
                if time.monotonic() >= until:
                    break
                time.sleep(0.0005)
        deadline = time.monotonic() + 30
        while len(delays) < args.lines and time.monotonic() < deadline:
            got, offset = lines_in(target, offset)
            now = time.monotonic_ns()
            delays += [(now - int(ln.split(b'"t" : ', 1)[1].split(b",", 1)[0])) / 1e6 for ln in got]
            time.sleep(0.0005)
        delays.sort()
        q = statistics.quantiles(delays, n=100)
        print(
            f"latency, {len(delays)} of {args.lines} lines at {args.rate:g}/s (write -> line in the central file): "
            f"p50 {q[49]:.2f} ms, p99 {q[98]:.2f} ms, max {delays[-1]:.2f} ms"
        )

        line = (f'{{"seq" : 0, {SAMPLE}}}\n').encode()
        size_before = target.stat().st_size
        expected = size_before + len(line) * args.burst
        started = time.monotonic()
        chunk = line * 1000
        for _ in range(args.burst // 1000):
            os.write(fd, chunk)
        written = time.monotonic() - started
        deadline = time.monotonic() + 300
        while target.stat().st_size < expected and time.monotonic() < deadline:
            time.sleep(0.005)
        took = time.monotonic() - started
        arrived = (target.stat().st_size - size_before) // len(line)
        print(
            f"burst: {arrived} of {args.burst} lines ({len(line)} bytes each) in the central file after {took:.2f} s "
            f"({arrived / took:,.0f} lines/s; writing them took {written:.2f} s)"
        )
    finally:
        os.close(fd)
        for process in (sensor, central):
            process.send_signal(signal.SIGTERM)
            process.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
