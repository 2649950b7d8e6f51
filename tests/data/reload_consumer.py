"""A stand-in for snort in tzspd reload tests (written for this project).

Sleeps DELAY seconds before its first read (Snort loading its rules), then reads a pcap stream on
stdin with raw reads until end of input and saves everything it read as OUTDIR/pid-PID.pcap, with
the time of its first read in OUTDIR/pid-PID.started. Usage: reload_consumer.py OUTDIR DELAY
"""

import os
import struct
import sys
import time


def read_exact(size):
    data = b""
    while len(data) < size:
        chunk = os.read(0, size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def main():
    outdir, delay = sys.argv[1], float(sys.argv[2])
    time.sleep(delay)
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
    temporary = os.path.join(outdir, f".partial-{os.getpid()}")
    with open(temporary, "wb") as out:
        out.write(header + b"".join(records))
    os.rename(temporary, os.path.join(outdir, f"pid-{os.getpid()}.pcap"))


main()
