"""A stand-in for Snort under tzspd --fanout: saves its standard input to
OUTDIR/<TZSPD_CONSUMER>-<pid>.pcap, byte for byte, flushed as it arrives."""

import os
import sys

out_dir = sys.argv[1]
name = os.path.join(out_dir, f"{os.environ.get('TZSPD_CONSUMER', '0')}-{os.getpid()}.pcap")
with open(name, "wb", buffering=0) as out:
    while True:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            break
        out.write(chunk)
