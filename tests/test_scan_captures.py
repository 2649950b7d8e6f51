"""The built-in scan detector on real nmap captures (tests/data/captures, see SOURCES.md): every
scan's scanner is found with its scan type named, nobody on benign traffic; pcapng is read from
a stream as well as classic pcap."""

from __future__ import annotations

import os
import subprocess

import pytest
from conftest import DATA, console_script

from bridge.scan.detector import ScanDetector, scan_type, tcp_probe_kind
from bridge.scan.packet_source import PcapStream, PcapStreamError
from bridge.scan.probes import probe_from_frame
from tzsp.capture_files import read_capture

CAPTURES = DATA / "captures"

# capture -> (scanner, the scan type the detection names)
SCANS = {
    "FIN_SCAN.pcap": ("192.168.1.10", "TCP FIN scan"),
    "NULL_SCAN.pcap": ("192.168.1.10", "TCP NULL scan"),
    "XMAS_TREE_SCAN.pcap": ("192.168.1.10", "TCP XMAS scan"),
    "TCP_SYN_SCAN.pcap": ("192.168.1.10", "TCP SYN scan"),
    "UDP_SCAN.pcap": ("192.168.1.10", "UDP scan"),
    "synscan.pcapng": ("172.16.0.8", "TCP SYN scan"),
    "test12-icmp-portscan.pcap": ("192.168.1.109", "ICMP sweep"),
}
BENIGN = ("android.pcap", "dns_lab.pcapng", "http_google.pcapng", "icmp_echo.pcapng")


def detections(name: str, chunk: int = 4096):
    """Detections over the capture fed to PcapStream in ``chunk``-byte pieces, as from a pipe."""
    data = (CAPTURES / name).read_bytes()
    stream, detector, alerts = PcapStream(), ScanDetector(ports=15, window=10), []
    for start in range(0, len(data), chunk):
        for stamp, frame in stream.feed(data[start : start + chunk]):
            probe = probe_from_frame(stream.linktype, frame, stamp)
            alert = detector.feed(probe) if probe is not None else None
            if alert is not None:
                alerts.append(alert)
    assert stream.pending == 0
    return alerts


@pytest.mark.parametrize("name", sorted(SCANS))
def test_every_scan_capture_names_its_scanner_and_scan_type(name):
    scanner, kind = SCANS[name]
    alerts = detections(name)
    assert alerts, f"{name}: no detection"
    assert {str(alert.src) for alert in alerts} == {scanner}
    assert all(f"(tzsp-ips scan) {kind}, " in alert.msg for alert in alerts), [a.msg for a in alerts]
    unit = "hosts" if kind.endswith("sweep") else "ports"
    assert f"15 {unit} in 10 s" in alerts[0].msg  # reported the moment it crosses the threshold


@pytest.mark.parametrize("name", BENIGN)
def test_nobody_is_a_scanner_in_benign_traffic(name):
    assert detections(name) == []


def test_a_pcapng_stream_gives_the_same_packets_as_the_file_reader():
    path = CAPTURES / "synscan.pcapng"
    linktype, records = read_capture(path)
    expected = [(stamp / 1e9, frame) for stamp, frame in records]
    data = path.read_bytes()
    for chunk in (1, 7, 100, len(data)):  # block boundaries fall anywhere
        stream, got = PcapStream(), []
        for start in range(0, len(data), chunk):
            got += stream.feed(data[start : start + chunk])
        assert stream.linktype == linktype == 1
        assert got == expected and stream.pending == 0


def test_a_damaged_pcapng_stream_is_refused_with_where():
    data = bytearray((CAPTURES / "synscan.pcapng").read_bytes())
    with pytest.raises(PcapStreamError, match="byte-order"):
        PcapStream().feed(bytes(data[:8]) + b"\x00\x00\x00\x00" + bytes(data[12:]))
    first = int.from_bytes(data[4:8], "little")  # the section header's length: the next block starts there
    data[first + 4 : first + 8] = (13).to_bytes(4, "little")  # a block length that is no multiple of 4
    with pytest.raises(PcapStreamError, match=f"block length 13 at offset {first}"):
        PcapStream().feed(bytes(data))


def test_tcp_probe_kinds_are_the_nmap_shapes():
    assert [tcp_probe_kind(f) for f in (0x02, 0x01, 0x00, 0x29, 0x03, 0x2B, 0xC2, 0xE9)] == [
        "SYN",
        "FIN",
        "NULL",
        "XMAS",
        "SYN+FIN",
        "SYN+FIN+PSH+URG",
        "SYN",
        "XMAS",
    ]
    for answer in (0x12, 0x10, 0x04, 0x14, 0x11, 0x18):  # SYN/ACK, ACK, RST, RST/ACK, FIN/ACK, PSH/ACK
        assert tcp_probe_kind(answer) is None
    assert tcp_probe_kind(0x40) == "ECE"
    assert scan_type("TCP", "FIN") == "TCP FIN scan" and scan_type("ICMPV6", "") == "ICMPv6 sweep"


def test_scan_command_reads_a_pcapng_stream_on_stdin():
    data = (CAPTURES / "synscan.pcapng").read_bytes()
    result = subprocess.run(
        [*console_script("snort-bridge"), "scan", "--pcap", "-", "--dry-run"],
        input=data,
        capture_output=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "TZSP_IPS_CONFIG"},
    )
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    assert "SCAN 172.16.0.8 -> 64.13.134.52: (tzsp-ips scan) TCP SYN scan, 15 ports in 10 s" in out
    assert "100 packets" in result.stderr.decode()
