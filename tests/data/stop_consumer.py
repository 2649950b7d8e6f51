"""A stand-in for snort in tzspd --exec tests (written for this project).

Reads a pcap stream on stdin with raw reads (no read-ahead), stops after a record whose frame
starts with b"STOP" or at end of input, closes stdin, then saves everything it read as
OUTDIR/run-NNN.pcap (NNN counts the runs). Usage: stop_consumer.py OUTDIR
"""

import os
import struct
import sys


def read_exact(size):
    data = b""
    while len(data) < size:
        chunk = os.read(0, size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def main():
    outdir = sys.argv[1]
    header = read_exact(24) or b""
    records = []
    while header:
        head = read_exact(16)
        if head is None:
            break
        body = read_exact(struct.unpack("<IIII", head)[2])
        if body is None:
            break
        records.append(head + body)
        if body.startswith(b"STOP"):
            break
    os.close(0)  # before saving, so the writer's next write fails (EPIPE) instead of being lost
    index = len([name for name in os.listdir(outdir) if name.startswith("run-")])
    temporary = os.path.join(outdir, f".partial-{os.getpid()}")
    with open(temporary, "wb") as out:
        out.write(header + b"".join(records))
    os.rename(temporary, os.path.join(outdir, f"run-{index:03d}.pcap"))


main()
