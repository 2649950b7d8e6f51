#!/usr/bin/env python3
"""Benchmark the pure TZSP codec / pcap record path and tzsp-replay's unpaced send rate.

    python bench/bench_codec_replay.py [--frames 20000] [--json]

Codec: best of 5 timeit runs per operation (µs per call). Replay: tzsp-replay main() sends a
generated capture (Ethernet/IPv4/TCP frames of 64 and 1400 bytes) as fast as it can to a UDP
socket on 127.0.0.1 that is drained by a separate process; reported are the replay's own
datagrams/s and how many the sink saw. Only loopback traffic, bounded in count.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import os
import platform
import re
import socket
import struct
import sys
import tempfile
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tzsp import codec, pcap, replay  # noqa: E402

REAL_ROUTEROS = bytes.fromhex(
    "0100000101d4ca6d1d36fff4f5d8a67e04080045000034fa0c400040069b890a000025d83ac2ce8e2501bb"
    "82b2c18d59f3785e801001ef6ccd00000101080a00577b51ac319486"
)
WIRELESS = bytes.fromhex("010000120a01d60b01280c016c1201061101010166778899aabb0011223344550800")


def frame(size: int) -> bytes:
    eth = bytes.fromhex("0200000000020200000000010800")
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, size - 14, 1, 0x4000, 64, 6, 0, bytes(4), bytes(4))
    tcp = struct.pack("!HHIIBBHHH", 40000, 80, 1, 0, 5 << 4, 0x18, 65535, 0, 0)
    return (eth + ip + tcp).ljust(size, b"p")


def per_call_us(stmt, number: int = 100_000) -> float:
    return min(timeit.repeat(stmt, number=number, repeat=5)) / number * 1e6


def codec_numbers() -> dict:
    decoded = codec.decode(REAL_ROUTEROS)
    fr = codec.frame_from_datagram(decoded, 1_700_000_000_000_000_000)
    big = frame(1400)
    return {
        "decode_routeros_66B_us": per_call_us(lambda: codec.decode(REAL_ROUTEROS)),
        "decode_80211_5tags_us": per_call_us(lambda: codec.decode(WIRELESS)),
        "frame_from_datagram_us": per_call_us(lambda: codec.frame_from_datagram(decoded, 1)),
        "pcap_record_us": per_call_us(lambda: pcap.record(fr)),
        "encode_frame_1400B_us": per_call_us(lambda: codec.encode_frame(big)),
        "encode_frame_tagged_us": per_call_us(lambda: codec.encode_frame(big, 18, (codec.Tag(40, b"\0\0\0\1"),))),
    }


def drain(sock: socket.socket, result) -> None:
    sock.settimeout(1.0)
    seen = 0
    with contextlib.suppress(socket.timeout):
        while True:
            sock.recv(65535)
            seen += 1
    result.value = seen


def replay_numbers(frames: int) -> dict:
    out = {}
    ctx = multiprocessing.get_context("fork")
    for size in (64, 1400):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.pcap"
            data = frame(size)
            with path.open("wb") as f:
                f.write(pcap.global_header(1))
                for i in range(frames):
                    f.write(pcap.record(codec.Frame(1, data, i * 1000, size)))
            sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
            sink.bind(("127.0.0.1", 0))
            seen = ctx.Value("l", 0)
            drainer = ctx.Process(target=drain, args=(sink, seen))
            drainer.start()
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                status = replay.main([str(path), "--to", f"127.0.0.1:{sink.getsockname()[1]}"])
            drainer.join(30)
            sink.close()
            pps = float(re.search(r" ([0-9]+) pps", err.getvalue()).group(1))
            out[f"replay_{size}B"] = {"status": status, "pps": pps, "sent": frames, "sink_received": seen.value}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        **codec_numbers(),
        **replay_numbers(args.frames),
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for key, value in results.items():
        print(f"{key:28} {value:.2f}" if isinstance(value, float) else f"{key:28} {value}")


if __name__ == "__main__":
    main()
