"""`snort-bridge scan --pcap FILE|-`: the pcap stream reader, and the command on pipes, files and under tzspd."""

from __future__ import annotations

import os
import select
import struct
import subprocess
import sys
import time

import pytest
from conftest import console_script, free_port
from hypothesis import given, settings
from hypothesis import strategies as st
from responder_rig import Lab, wait_until
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import PcapWriter, rdpcap

from bridge.scan.packet_source import PcapStream, PcapStreamError

SCANNER, TARGET, CLIENT = "203.0.113.66", "192.0.2.80", "192.0.2.21"
DEADLINE = 20.0


def scan_packets(ports=range(20, 60), src=SCANNER, start=1_700_000_000.0):
    ether = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    packets = []
    for index, port in enumerate(ports):
        packet = ether / IP(src=src, dst=TARGET) / TCP(sport=50000, dport=port, flags="S")
        packet.time = start + index * 0.01
        packets.append(packet)
    return packets


def benign_packets(start=1_700_000_000.0):
    ether = Ether(src="02:00:00:00:00:03", dst="02:00:00:00:00:02")
    packets = [
        ether / IP(src=CLIENT, dst=TARGET) / TCP(sport=40000, dport=80, flags="S"),
        ether / IP(src=TARGET, dst=CLIENT) / TCP(sport=80, dport=40000, flags="SA"),
        ether / IP(src=CLIENT, dst=TARGET) / UDP(sport=40001, dport=53),
        ether / IP(src=CLIENT, dst=TARGET) / ICMP(type=8),
    ]
    for index, packet in enumerate(packets):
        packet.time = start + index * 0.01
    return packets


def pcap_bytes(tmp_path, packets, nano=False, name="cap.pcap") -> bytes:
    path = tmp_path / name
    writer = PcapWriter(str(path), nano=nano, sync=True)
    writer.write(packets)
    writer.close()
    return path.read_bytes()


def big_endian(data: bytes) -> bytes:
    """The same capture written by a big-endian machine."""
    out = bytearray(struct.pack(">IHHiIII", *struct.unpack_from("<IHHiIII", data, 0)))
    position = 24
    while position < len(data):
        seconds, fraction, stored, original = struct.unpack_from("<IIII", data, position)
        out += struct.pack(">IIII", seconds, fraction, stored, original)
        out += data[position + 16 : position + 16 + stored]
        position += 16 + stored
    return bytes(out)


# -- the pure reader ------------------------------------------------------------------------------


@pytest.mark.parametrize("nano", [False, True])
@pytest.mark.parametrize("order", ["little", "big"])
def test_stream_reader_gives_what_scapy_reads(tmp_path, nano, order):
    data = pcap_bytes(tmp_path, scan_packets(range(1, 6)) + benign_packets(), nano=nano)
    if order == "big":
        data = big_endian(data)
    expected = rdpcap(str(tmp_path / "cap.pcap"))
    stream = PcapStream()
    records = stream.feed(data)
    assert stream.linktype == 1 and stream.pending == 0
    assert [frame for _, frame in records] == [bytes(p) for p in expected]
    assert [round(t, 6) for t, _ in records] == [round(float(p.time), 6) for p in expected]


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=30))
def test_stream_reader_any_chunking_gives_the_same_records(cuts):
    data = _SAMPLE
    points = sorted({c % (len(data) + 1) for c in cuts})
    stream, records, previous = PcapStream(), [], 0
    for point in points + [len(data)]:
        records += stream.feed(data[previous:point])
        previous = point
    assert records == PcapStream().feed(data)
    assert stream.pending == 0


def _sample() -> bytes:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        return pcap_bytes(Path(tmp), scan_packets(range(1, 12)) + benign_packets())


_SAMPLE = _sample()


def test_stream_reader_refuses_what_is_not_pcap():
    with pytest.raises(PcapStreamError, match="pcapng: bad pcapng byte-order magic"):
        PcapStream().feed(b"\x0a\x0d\x0d\x0a" + bytes(40))
    with pytest.raises(PcapStreamError, match="not a pcap stream"):
        PcapStream().feed(b"GET / HTTP/1.1\r\n")
    corrupt = _SAMPLE[:24] + struct.pack("<IIII", 0, 0, 50_000_000, 50_000_000)
    with pytest.raises(PcapStreamError, match="at byte 24"):
        PcapStream().feed(corrupt)


def test_stream_reader_holds_a_cut_off_record():
    stream = PcapStream()
    records = stream.feed(_SAMPLE[:-5])
    assert len(records) == len(PcapStream().feed(_SAMPLE)) - 1
    assert stream.pending > 0


# -- the command ------------------------------------------------------------------------------------


def _without_config() -> dict:
    """No configuration file: the built-in defaults (no routers)."""
    env = {k: v for k, v in os.environ.items() if k != "TZSP_IPS_CONFIG"}
    assert not os.path.exists("/etc/tzsp-ips/config.toml")
    return env


def _read_until(process, word: str, timeout: float) -> str:
    """stdout of ``process`` until a line holds ``word`` (without waiting for the end)."""
    seen = b""
    deadline = time.monotonic() + timeout
    fd = process.stdout.fileno()
    while time.monotonic() < deadline and word.encode() not in seen:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            seen += chunk
    return seen.decode(errors="replace")


def test_a_scan_on_a_pipe_is_reported_as_it_arrives_not_at_the_end(tmp_path):
    data = pcap_bytes(tmp_path, benign_packets() + scan_packets(range(20, 40)))
    process = subprocess.Popen(
        [*console_script("snort-bridge"), "scan", "--pcap", "-", "--dry-run"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_without_config(),
    )
    try:
        process.stdin.write(data)
        process.stdin.flush()  # the pipe stays open: the capture has not ended
        output = _read_until(process, "SCAN", DEADLINE)
        assert f"SCAN {SCANNER} -> {TARGET}" in output
        assert f"would block {SCANNER}" in output
        assert process.poll() is None
        process.stdin.close()
        process.wait(DEADLINE)
        rest, errors = process.stdout.read(), process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, errors
    assert CLIENT not in output + rest.decode()
    assert b"24 packets" in errors


def test_scan_refuses_a_stream_that_is_not_pcap(tmp_path):
    result = subprocess.run(
        [*console_script("snort-bridge"), "scan", "--pcap", "-", "--dry-run"],
        input=b"hello, this is text\n",
        capture_output=True,
        timeout=DEADLINE,
        env=_without_config(),
    )
    assert result.returncode == 1
    assert b"not a pcap stream" in result.stderr


def _config(lab: Lab, tmp_path, scan: str = 'ports = 15\nwindow = "10s"') -> str:
    lines = [f'state_dir = "{tmp_path / "state"}"', "[policy]", 'protected = ["10.0.0.0/8"]', "[scan]", scan]
    for name, port in lab.ports.items():
        lines.append("[[routers]]")
        lines += [
            f"{k} = {v}" if isinstance(v, int) else f'{k} = "{v}"' for k, v in lab.router_table(name, port).items()
        ]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return str(path)


def test_scan_of_a_file_blocks_the_scanner_on_the_routers(tmp_path):
    lab = Lab(tmp_path)
    try:
        lab.add("r1")
        lab.add("r2")
        config = _config(lab, tmp_path)
        pcap = tmp_path / "scan.pcap"
        pcap.write_bytes(pcap_bytes(tmp_path, benign_packets() + scan_packets()))
        result = subprocess.run(
            [*console_script("snort-bridge"), "scan", "--pcap", str(pcap), "--config", config],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert f"BLOCK {SCANNER} on 2 router(s)" in result.stderr
        for name in lab.sims:
            assert set(lab.entries(name)) == {SCANNER}
    finally:
        lab.close()


def test_scan_under_tzspd_exec_blocks_while_the_stream_runs(tmp_path):
    lab = Lab(tmp_path)
    tzspd = None
    try:
        lab.add("r1")
        config = _config(lab, tmp_path)
        capture = tmp_path / "replay.pcap"
        capture.write_bytes(pcap_bytes(tmp_path, benign_packets() + scan_packets(), name="replay.pcap"))
        port = free_port()
        consumer = f"{sys.executable} -m bridge.cli scan --pcap - --config {config}"
        log = open(tmp_path / "tzspd.log", "wb")
        tzspd = subprocess.Popen(
            [
                *console_script("tzspd"),
                "--listen",
                "127.0.0.1",
                "--port",
                str(port),
                "--allow",
                "127.0.0.1/32",
                "--exec",
                consumer,
            ],
            stderr=log,
        )
        assert wait_until(lambda: b"listening" in (tmp_path / "tzspd.log").read_bytes(), DEADLINE)
        subprocess.run(
            [*console_script("tzsp-replay"), str(capture), "--to", f"127.0.0.1:{port}", "-q"],
            check=True,
            timeout=DEADLINE,
        )
        # blocked while tzspd (and so the scan process) keeps running
        assert wait_until(lambda: SCANNER in lab.entries("r1"), DEADLINE), (tmp_path / "tzspd.log").read_text()
        assert tzspd.poll() is None
        assert set(lab.entries("r1")) == {SCANNER}
    finally:
        if tzspd is not None and tzspd.poll() is None:
            tzspd.terminate()
            tzspd.wait(DEADLINE)
        lab.close()
