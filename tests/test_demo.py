"""The demo (`./run demo`) as a test: the whole pipeline on loopback, and its verdict checked independently."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from bridge import demo


def test_the_demo_blocks_the_scanner_on_both_routers_and_nobody_else(tmp_path):
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONUNBUFFERED="1")
    result = subprocess.run([sys.executable, "-m", "bridge.demo"], capture_output=True, text=True, timeout=120, env=env)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "== OK" in out
    # the routers' own listings, as printed: the scanner in each, nobody else
    listings = out.split("== 7.", 1)[1].split("\n== OK", 1)[0]
    for router in demo.ROUTERS:
        assert f"[{router}]" in listings
    assert len(re.findall(rf"\b{re.escape(demo.SCANNER)}\b", listings)) >= 2 * len(
        demo.ROUTERS
    )  # comment + entry per router
    for innocent in (*demo.BENIGN, demo.INSIDER):
        assert not re.search(rf"\b{re.escape(innocent)}\b", listings), innocent
    # what was decided: the insider was seen and deliberately not blocked
    assert f"BLOCK {demo.SCANNER} on 2 router(s)" in out
    assert f"{demo.INSIDER} is protected" in out
    assert re.search(r"tzspd: (\d+) TZSP datagrams received, \1 frames passed", out)
    # nothing left behind
    assert list(tmp_path.iterdir()) == []


def test_the_capture_mixes_benign_traffic_with_both_attackers():
    from scapy.layers.inet import IP, TCP

    packets = demo.office_packets()
    sources = {p[IP].src for p in packets}
    assert {demo.SCANNER, demo.INSIDER} <= sources and set(demo.BENIGN) & sources
    syn_ports = {p[TCP].dport for p in packets if TCP in p and p[IP].src == demo.SCANNER and p[TCP].flags == "S"}
    assert len(syn_ports) == 100
    assert any(b"../" in bytes(p[TCP].payload) for p in packets if TCP in p and p[IP].src == demo.INSIDER)
    times = [float(p.time) for p in packets]
    assert times == sorted(times)
