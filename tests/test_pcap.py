"""pcap records read back by dpkt, scapy and tcpdump; capture files read by read_capture."""

from __future__ import annotations

import struct
import subprocess
from decimal import Decimal
from pathlib import Path

import dpkt
import pytest
from conftest import DATA, require_tool
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import PcapNgWriter, PcapReader, PcapWriter, wrpcap

from tzsp import pcap
from tzsp.capture_files import CaptureError, read_capture
from tzsp.codec import Frame

T0 = 1_700_000_000_123_456_789

FRAMES = [
    Frame(1, bytes(Ether(dst="02:00:00:00:00:01") / IP(dst="10.0.0.1") / UDP(dport=53) / Raw(b"q" * 20)), T0, 62),
    Frame(1, bytes(Ether() / IP(dst="10.0.0.2") / Raw(b"x" * 100)), T0 + 1_000_000_001, 1514),  # sliced by sender
    Frame(1, b"\xff" * 14, T0 + 2_999_999_999, 0),  # orig_len below incl_len is raised to it
]


def write_stream(path: Path, frames, nanosecond: bool, linktype: int = 1) -> None:
    path.write_bytes(pcap.global_header(linktype, nanosecond) + b"".join(pcap.record(f, nanosecond) for f in frames))


def test_global_header_layout():
    header = pcap.global_header(101)
    assert len(header) == 24
    assert struct.unpack("<IHHiIII", header) == (0xA1B2C3D4, 2, 4, 0, 0, 262144, 101)
    assert struct.unpack("<I", pcap.global_header(1, nanosecond=True)[:4])[0] == 0xA1B23C4D
    assert struct.unpack("<I", pcap.global_header(1, snaplen=65535)[16:20])[0] == 65535


def test_record_header_fields():
    frame = Frame(1, b"abc", T0, 1514)
    us = pcap.record(frame)
    assert pcap.RECORD_HEADER.unpack(us[:16]) == (1_700_000_000, 123_456, 3, 1514)
    assert us[16:] == b"abc"
    ns = pcap.record(frame, nanosecond=True)
    assert pcap.RECORD_HEADER.unpack(ns[:16]) == (1_700_000_000, 123_456_789, 3, 1514)


def test_timestamps_outside_the_format_are_clamped():
    assert pcap.timestamp_fields(-5) == (0, 0)
    assert pcap.timestamp_fields(2**40 * 10**9, nanosecond=True) == (0xFFFFFFFF, 999_999_999)


@pytest.mark.parametrize("nanosecond", [False, True])
def test_dpkt_reads_our_stream(tmp_path, nanosecond):
    path = tmp_path / "out.pcap"
    write_stream(path, FRAMES, nanosecond)
    with path.open("rb") as f:
        reader = dpkt.pcap.Reader(f)
        assert reader.datalink() == 1
        got = list(reader)
    assert [data for _, data in got] == [f.data for f in FRAMES]
    unit = 1 if nanosecond else 1000
    for (ts, _), frame in zip(got, FRAMES, strict=True):
        # dpkt returns a Decimal for ns files and a float for us files.
        expected = Decimal(frame.timestamp_ns // unit * unit) / Decimal(10**9)
        assert abs(Decimal(str(ts)) - expected) < Decimal("1e-6")


@pytest.mark.parametrize("nanosecond", [False, True])
def test_scapy_reads_our_stream(tmp_path, nanosecond):
    path = tmp_path / "out.pcap"
    write_stream(path, FRAMES, nanosecond)
    with PcapReader(str(path)) as reader:
        assert reader.linktype == 1
        packets = list(reader)
    assert [bytes(p) for p in packets] == [f.data for f in FRAMES]
    assert [p.wirelen for p in packets] == [62, 1514, 14]
    unit = 1 if nanosecond else 1000
    assert [int(p.time * 10**9) for p in packets] == [f.timestamp_ns // unit * unit for f in FRAMES]
    assert packets[0][UDP].dport == 53


def test_tcpdump_reads_our_stream(tmp_path):
    tcpdump = require_tool("tcpdump")
    path = tmp_path / "out.pcap"
    write_stream(path, FRAMES[:2], nanosecond=True)
    out = subprocess.run([tcpdump, "-nn", "--nano", "-tt", "-r", str(path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("1700000000.123456789 IP ") and "10.0.0.1.53" in lines[0]


def test_our_reader_round_trips_our_writer(tmp_path):
    for nanosecond in (False, True):
        path = tmp_path / f"rt{nanosecond}.pcap"
        write_stream(path, FRAMES, nanosecond, linktype=105)
        linktype, records = read_capture(path)
        unit = 1 if nanosecond else 1000
        assert linktype == 105
        assert list(records) == [(f.timestamp_ns // unit * unit, f.data) for f in FRAMES]


# ---- read_capture on files written by other tools --------------------------------------------

PACKETS = [Ether() / IP(dst=f"10.1.0.{i}") / UDP(dport=1000 + i) / Raw(bytes([i]) * i) for i in range(1, 6)]
for _i, _p in enumerate(PACKETS):
    _p.time = Decimal("1700000000.000001") + Decimal(_i) / 7


@pytest.mark.parametrize("nano", [False, True])
@pytest.mark.parametrize("endianness", ["<", ">"])
def test_reads_scapy_pcap_in_both_byte_orders(tmp_path, nano, endianness):
    path = tmp_path / "scapy.pcap"
    with PcapWriter(str(path), nano=nano, endianness=endianness) as writer:
        writer.write(PACKETS)
    linktype, records = read_capture(path)
    records = list(records)
    assert linktype == 1
    assert [data for _, data in records] == [bytes(p) for p in PACKETS]
    with PcapReader(str(path)) as reader:  # scapy rounds to µs when writing; compare with its reader
        expected = [int(p.time * 10**9) for p in reader]
    assert [ts for ts, _ in records] == expected
    assert (expected[1] % 1000 != 0) == nano  # ns files keep sub-µs digits


def test_reads_scapy_pcapng(tmp_path):
    path = tmp_path / "scapy.pcapng"
    with PcapNgWriter(str(path)) as writer:
        writer.write(PACKETS)
    linktype, records = read_capture(path)
    records = list(records)
    assert linktype == 1
    assert [data for _, data in records] == [bytes(p) for p in PACKETS]
    assert [ts for ts, _ in records] == [int(p.time * 10**6) * 1000 for p in PACKETS]


def test_real_tzsp_pcapng_matches_tshark(tmp_path):
    tshark = require_tool("tshark")
    path = DATA / "simple_http_tzsp.pcapng"
    out = subprocess.run(
        [tshark, "-r", str(path), "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.cap_len"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    expected = []
    for line in out.stdout.splitlines():
        epoch, length = line.split("\t")
        seconds, _, fraction = epoch.partition(".")
        expected.append((int(seconds) * 10**9 + int(fraction.ljust(9, "0")[:9]), int(length)))
    linktype, records = read_capture(path)
    assert linktype == 1
    assert [(ts, len(data)) for ts, data in records] == expected
    assert len(expected) == 5


def pcapng_bytes(interfaces, packets, little: bool = True) -> bytes:
    """A pcapng built block by block with dpkt, in either byte order.

    interfaces: [(linktype, if_tsresol byte or None, if_tsoffset seconds or None)];
    packets: [(interface index, timestamp in the interface's units, data)].
    """
    ng = dpkt.pcapng
    le = "LE" if little else ""
    option = getattr(ng, "PcapngOption" + le)
    blocks = [getattr(ng, "SectionHeaderBlock" + le)()]
    for linktype, tsresol, tsoffset in interfaces:
        opts = []
        if tsresol is not None:
            opts.append(option(code=dpkt.pcapng.PCAPNG_OPT_IF_TSRESOL, data=bytes([tsresol])))
        if tsoffset is not None:
            opts.append(
                option(code=dpkt.pcapng.PCAPNG_OPT_IF_TSOFFSET, data=struct.pack("<q" if little else ">q", tsoffset))
            )
        opts.append(option(code=dpkt.pcapng.PCAPNG_OPT_ENDOFOPT, data=b""))
        blocks.append(getattr(ng, "InterfaceDescriptionBlock" + le)(linktype=linktype, snaplen=65535, opts=opts))
    for index, units, data in packets:
        blocks.append(
            getattr(ng, "EnhancedPacketBlock" + le)(
                iface_id=index, ts_high=units >> 32, ts_low=units & 0xFFFFFFFF, pkt_data=data
            )
        )
    return b"".join(bytes(b) for b in blocks)


@pytest.mark.parametrize("little", [True, False])
def test_pcapng_timestamp_resolution_per_interface_is_exact(tmp_path, little):
    path = tmp_path / "resol.pcapng"
    interfaces = [(1, None, None), (1, 9, None), (1, 0x80 | 10, 1_700_000_000)]
    packets = [(0, 1_700_000_000_123_456, b"a"), (1, T0, b"b"), (2, 1024 * 3 + 512, b"c")]
    path.write_bytes(pcapng_bytes(interfaces, packets, little))
    assert path.read_bytes()[8:12] == (b"\x4d\x3c\x2b\x1a" if little else b"\x1a\x2b\x3c\x4d")
    linktype, records = read_capture(path)
    assert linktype == 1
    # µs default, ns (tsresol 9), 1/1024 s (tsresol 0x8a) plus a 1.7e9 s if_tsoffset
    assert list(records) == [(1_700_000_000_123_456_000, b"a"), (T0, b"b"), (1_700_000_003_500_000_000, b"c")]


def test_pcapng_with_two_link_types_is_refused_when_reached(tmp_path):
    path = tmp_path / "mixed.pcapng"
    packets = [(0, 5, bytes(PACKETS[0])), (1, 6, bytes(IP() / UDP()))]
    path.write_bytes(pcapng_bytes([(1, None, None), (101, None, None)], packets))
    with PcapReader(str(path)) as reader:  # scapy agrees on what the file holds
        assert [type(p).__name__ for p in reader] == ["Ether", "IP"]
    linktype, records = read_capture(path)
    assert linktype == 1
    records = iter(records)
    assert next(records) == (5000, bytes(PACKETS[0]))
    with pytest.raises(CaptureError, match="mixes link types 1 and 101"):
        next(records)


def test_pcapng_packet_on_an_undefined_interface(tmp_path):
    path = tmp_path / "bad.pcapng"
    path.write_bytes(pcapng_bytes([(1, None, None)], [(3, 5, b"x")]))
    _, records = read_capture(path)
    with pytest.raises(CaptureError, match="undefined interface 3"):
        list(records)


def test_missing_empty_and_foreign_files(tmp_path):
    with pytest.raises(CaptureError, match="cannot open"):
        read_capture(tmp_path / "nope.pcap")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(CaptureError, match="too short"):
        read_capture(tmp_path / "empty")
    (tmp_path / "text").write_bytes(b"hello, this is not a capture file at all")
    with pytest.raises(CaptureError, match="not a pcap or pcapng file"):
        read_capture(tmp_path / "text")


def test_truncated_files_fail_with_the_offset(tmp_path):
    whole = tmp_path / "whole.pcap"
    wrpcap(str(whole), PACKETS)
    data = whole.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:-3])
    _, records = read_capture(cut)
    with pytest.raises(CaptureError, match="truncated packet data at offset"):
        list(records)
    cut.write_bytes(data[:30])
    _, records = read_capture(cut)
    with pytest.raises(CaptureError, match="truncated record header"):
        list(records)

    ng = tmp_path / "whole.pcapng"
    with PcapNgWriter(str(ng)) as writer:
        writer.write(PACKETS)
    cut_ng = tmp_path / "cut.pcapng"
    cut_ng.write_bytes(ng.read_bytes()[:-10])
    _, records = read_capture(cut_ng)
    with pytest.raises(CaptureError, match="truncated pcapng block"):
        list(records)


def test_reads_kuznetzov_modified_pcap(tmp_path):
    # Big-endian "modified pcap" (magic a1b2cd34): 24-byte record headers with ifindex/protocol.
    path = tmp_path / "mod.pcap"
    header = struct.pack(">IHHiIII", 0xA1B2CD34, 2, 4, 0, 0, 65535, 1)
    record = struct.pack(">IIIIIHBB", 1_700_000_000, 250_000, 3, 60, 2, 0x0800, 0, 0) + b"abc"
    path.write_bytes(header + record)
    with path.open("rb") as f:  # dpkt agrees on the layout
        assert [(float(ts), data) for ts, data in dpkt.pcap.Reader(f)] == [(1_700_000_000.25, b"abc")]
    linktype, records = read_capture(path)
    assert (linktype, list(records)) == (1, [(1_700_000_000_250_000_000, b"abc")])
