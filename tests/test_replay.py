"""tzsp-replay: pure planning/pacing, and the real thing over UDP sockets on loopback."""

from __future__ import annotations

import socket
import struct
import subprocess
import time
from collections import Counter
from contextlib import contextmanager
from decimal import Decimal

import pytest
from conftest import DATA, console_script
from scapy.layers.inet import IP, TCP, UDP, fragment
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import CookedLinux, Ether
from scapy.packet import Raw
from scapy.utils import PcapReader, wrpcap

from tzsp import codec, replay
from tzsp.replay import Outgoing, Pacer

TZSP_CAPTURE = DATA / "simple_http_tzsp.pcapng"


def ethernet_packets(n: int, start: float = 1_700_000_000.0, gap: float = 0.001):
    packets = []
    for i in range(n):
        packet = (
            Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
            / IP(src="10.0.0.1", dst=f"10.0.1.{i % 250}")
            / TCP(sport=40000 + i, dport=80)
            / Raw(b"p" * i)
        )
        packet.time = Decimal(repr(start)) + Decimal(repr(gap)) * i
        packets.append(packet)
    return packets


@contextmanager
def receiver(host: str = "127.0.0.1"):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((host, 0))
    try:
        yield sock
    finally:
        sock.close()


def receive(sock: socket.socket, expected: int, deadline: float = 10.0) -> list:
    """Everything that arrives until `expected` datagrams are in, then anything stray for a moment."""
    got = []
    end = time.monotonic() + deadline
    while len(got) < expected and time.monotonic() < end:
        sock.settimeout(max(end - time.monotonic(), 0.01))
        try:
            got.append(sock.recv(70000))
        except TimeoutError:
            break
    sock.settimeout(0.05)
    try:
        while True:
            got.append(sock.recv(70000))
    except (TimeoutError, BlockingIOError):
        pass
    return got


def to(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if sock.family == socket.AF_INET6 else f"{host}:{port}"


# ---- pure parts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("127.0.0.1:37008", ("127.0.0.1", 37008)),
        ("[::1]:9", ("::1", 9)),
        ("sensor.example:1", ("sensor.example", 1)),
        (" 10.0.0.1:65535 ", ("10.0.0.1", 65535)),
    ],
)
def test_parse_destination(text, expected):
    assert replay.parse_destination(text) == expected


@pytest.mark.parametrize(
    "text, words",
    [
        ("127.0.0.1", "HOST:PORT"),
        (":37008", "HOST:PORT"),
        ("::1:37008", "brackets"),
        ("[::1]37008", r"\[ADDRESS\]:PORT"),
        ("[nothost]:1", "not an IPv6"),
        ("h:0", "1-65535"),
        ("h:70000", "1-65535"),
        ("h:x", "1-65535"),
    ],
)
def test_parse_destination_errors(text, words):
    with pytest.raises(ValueError, match=words):
        replay.parse_destination(text)


def test_rate_schedule_is_fixed_not_cumulative():
    pacer = Pacer(rate=4)
    assert [pacer.due(ts) for ts in (10, 5, 999, 0, 0)] == [0, 0.25, 0.5, 0.75, 1.0]
    pacer.new_pass()  # loops continue the same schedule
    assert pacer.due(0) == 1.25


def test_realtime_schedule_keeps_gaps_clamps_backwards_time_and_chains_passes():
    pacer = Pacer(realtime=True)
    s = 1_000_000_000
    assert [pacer.due(t) for t in (100 * s, 100 * s + s // 2, 100 * s + s // 4, 102 * s)] == [0.0, 0.5, 0.5, 2.0]
    pacer.new_pass()
    assert [pacer.due(t) for t in (100 * s, 101 * s)] == [2.0, 3.0]


def test_unpaced_and_invalid_pacers():
    assert Pacer().due(123) is None
    with pytest.raises(ValueError):
        Pacer(rate=0)
    with pytest.raises(ValueError):
        Pacer(rate=5, realtime=True)


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_send_all_sleeps_only_until_each_due_time():
    fake = FakeClock()
    sent = []

    def send(payload):
        sent.append(payload)
        fake.now += 0.1  # each send is slow: the schedule absorbs it instead of drifting

    summary = replay.Summary()
    items = [Outgoing(0, bytes([i])) for i in range(5)]
    replay.send_all(send, items, Pacer(rate=4), summary, max_payload=100, clock=fake.clock, sleep=fake.sleep)
    assert sent == [bytes([i]) for i in range(5)]
    assert fake.sleeps == pytest.approx([0.15, 0.15, 0.15, 0.15])  # due 0.25 n, send took 0.1
    assert summary.sent == 5 and summary.bytes == 5
    assert summary.seconds == pytest.approx(1.1)


def test_send_all_counts_errors_and_respects_count():
    def send(payload):
        if payload == b"refused":
            raise ConnectionRefusedError(111, "refused")

    summary = replay.Summary()
    items = [
        Outgoing(0, b"ok"),
        Outgoing(0, b"x" * 101),
        Outgoing(0, b"refused"),
        Outgoing(0, b"ok"),
        Outgoing(0, b"never"),
    ]
    pacer = Pacer()
    replay.send_all(send, items, pacer, summary, max_payload=100, count=4)
    assert (summary.sent, summary.bytes) == (2, 4)
    assert summary.errors == Counter({"too-big": 1, "econnrefused": 1})
    text = summary.text("127.0.0.1:9")
    assert "sent 2 datagrams (4 bytes) to 127.0.0.1:9" in text and "too-big 1" in text


def test_tzsp_datagrams_wrap_each_frame():
    records = [(5, b"frame-a"), (1_700_000_000_000_000_009, b"frame-b")]
    assert [o.payload for o in replay.tzsp_datagrams(records, 1)] == [
        codec.FAST_HEADER + b"frame-a",
        codec.FAST_HEADER + b"frame-b",
    ]
    tagged = [
        codec.decode(o.payload)
        for o in replay.tzsp_datagrams(records, 18, packet_ids=True, time_tags=True, first_sequence=7)
    ]
    assert [d.packet_id for d in tagged] == [7, 8]
    assert [d.capture_time_ns for d in tagged] == [5, 1_700_000_000_000_000_009]
    assert {d.encapsulation for d in tagged} == {18}


def scapy_udp_payloads(path) -> list:
    # Raw.load, not bytes(p[UDP].payload): the last frame has a 2-byte Ethernet trailer (0xeeee)
    # after the UDP datagram, which scapy keeps as a Padding layer.
    with PcapReader(str(path)) as reader:
        return [p[Raw].load for p in reader if UDP in p]


def test_raw_tzsp_datagrams_from_the_real_capture_match_scapy():
    from tzsp.capture_files import read_capture

    linktype, records = read_capture(TZSP_CAPTURE)
    skipped = Counter()
    payloads = [o.payload for o in replay.raw_tzsp_datagrams(linktype, records, skipped)]
    assert payloads == scapy_udp_payloads(TZSP_CAPTURE)
    assert len(payloads) == 5 and all(p.startswith(codec.FAST_HEADER) for p in payloads)
    assert not skipped


def test_raw_tzsp_skips_what_is_not_tzsp_and_trims_ethernet_padding():
    tzsp_small = codec.FAST_HEADER + b"\x02" * 6
    frames = [
        Ether() / IP(dst="10.0.0.9") / UDP(sport=5555, dport=31337) / Raw(tzsp_small),  # padded to 60 bytes below
        Ether() / IPv6(dst="::1") / UDP(dport=37008) / Raw(codec.FAST_HEADER + b"v6"),
        Ether() / IP() / UDP(dport=53) / Raw(b"\x12\x34\x01\x00"),  # DNS, not TZSP
        Ether() / IP() / TCP(),
        Ether(type=0x0806) / Raw(b"\x00" * 28),
    ]
    frames += fragment(Ether() / IP() / UDP(dport=37008) / Raw(codec.FAST_HEADER + b"F" * 3000), 1400)
    records = [(i, bytes(f)) for i, f in enumerate(frames)]
    records[0] = (0, records[0][1].ljust(60, b"\x00"))
    skipped = Counter()
    payloads = [o.payload for o in replay.raw_tzsp_datagrams(1, records, skipped)]
    assert payloads == [tzsp_small, codec.FAST_HEADER + b"v6"]
    assert skipped == Counter({"ip-fragment": 3, "not-tzsp (bad-version)": 1, "not-udp": 1, "not-ip": 1})


def test_raw_tzsp_from_raw_ip_and_linux_cooked_captures():
    inner = IP(dst="10.0.0.2") / UDP(dport=37008) / Raw(codec.FAST_HEADER + b"raw")
    assert replay.udp_payload(101, bytes(inner)) == (codec.FAST_HEADER + b"raw", "")
    assert replay.udp_payload(229, bytes(IPv6() / UDP() / Raw(b"six"))) == (b"six", "")
    assert replay.udp_payload(113, bytes(CookedLinux(proto=0x0800) / inner)) == (codec.FAST_HEADER + b"raw", "")
    assert replay.udp_payload(105, b"\x80\x00") == (None, "link-type")
    assert replay.udp_payload(1, b"\x00\x01") == (None, "undecodable")


# ---- over real sockets ------------------------------------------------------------------------


def test_replay_sends_each_frame_as_tzsp(tmp_path, capsys):
    packets = ethernet_packets(20)
    path = tmp_path / "in.pcap"
    wrpcap(str(path), packets)
    with receiver() as sock:
        assert replay.main([str(path), "--to", to(sock)]) == 0
        got = receive(sock, 20)
    assert got == [codec.encode_frame(bytes(p)) for p in packets]
    assert "sent 20 datagrams" in capsys.readouterr().err


def test_replay_over_ipv6_with_loop_and_packet_ids(tmp_path):
    packets = ethernet_packets(4)
    path = tmp_path / "in.pcap"
    wrpcap(str(path), packets)
    try:
        rx = receiver("::1")
        sock = rx.__enter__()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        assert replay.main([str(path), "--to", to(sock), "--loop", "3", "--packet-id", "-q"]) == 0
        got = [codec.decode(d) for d in receive(sock, 12)]
    finally:
        rx.__exit__(None, None, None)
    assert [d.frame for d in got] == [bytes(p) for p in packets] * 3
    assert [d.packet_id for d in got] == list(range(12))


def test_replay_count_stops_inside_a_loop(tmp_path):
    path = tmp_path / "in.pcap"
    packets = ethernet_packets(3)
    wrpcap(str(path), packets)
    with receiver() as sock:
        assert replay.main([str(path), "--to", to(sock), "--loop", "0", "--count", "7", "-q"]) == 0
        got = receive(sock, 7)
    assert got == [codec.encode_frame(bytes(p)) for p in packets * 3][:7]


def test_raw_tzsp_replay_is_byte_identical(capsys):
    with receiver() as sock:
        assert replay.main([str(TZSP_CAPTURE), "--to", to(sock), "--raw-tzsp", "--loop", "2"]) == 0
        got = receive(sock, 10)
    assert got == scapy_udp_payloads(TZSP_CAPTURE) * 2
    assert "sent 10 datagrams" in capsys.readouterr().err


@pytest.mark.parametrize(
    "pacing, frames, gap, at_least",
    [
        (["--rate", "100"], 11, 0.0, 0.1),  # 10 intervals of 10 ms: never faster than asked
        (["--realtime"], 3, 0.1, 0.2),  # the capture's own 100 ms gaps
    ],
)
def test_pacing_is_never_faster_than_asked(tmp_path, capsys, pacing, frames, gap, at_least):
    path = tmp_path / "in.pcap"
    wrpcap(str(path), ethernet_packets(frames, gap=gap))
    with receiver() as sock:
        started = time.monotonic()
        assert replay.main([str(path), "--to", to(sock)] + pacing) == 0
        elapsed = time.monotonic() - started
        assert len(receive(sock, frames)) == frames
    assert elapsed >= at_least  # a lower bound only: no upper bound on a busy shared box
    assert f"sent {frames} datagrams" in capsys.readouterr().err


def test_too_big_frames_are_counted_not_fatal(tmp_path, capsys):
    path = tmp_path / "big.pcap"
    small = ethernet_packets(2)
    wrpcap(str(path), [small[0], Ether() / IP(len=65535) / Raw(b"B" * 66000), small[1]])
    with receiver() as sock:
        assert replay.main([str(path), "--to", to(sock)]) == 1
        got = receive(sock, 2)
    assert got == [codec.encode_frame(bytes(p)) for p in small]
    err = capsys.readouterr().err
    assert "sent 2 datagrams" in err and "too-big 1" in err


def test_link_type_without_encapsulation_needs_override(tmp_path, capsys):
    path = tmp_path / "sll.pcap"
    frame = CookedLinux(proto=0x0800) / IP(dst="10.0.0.3") / UDP()
    wrpcap(str(path), [frame])
    with receiver() as sock:
        assert replay.main([str(path), "--to", to(sock)]) == 1
        assert "has no TZSP encapsulation" in capsys.readouterr().err
        assert receive(sock, 0, deadline=0.1) == []
        assert replay.main([str(path), "--to", to(sock), "--encapsulation", "raw", "-q"]) == 0
        got = receive(sock, 1)
    assert got == [codec.encode_frame(bytes(frame), encapsulation=7)]


def test_raw_ip_capture_uses_encapsulation_7(tmp_path):
    path = tmp_path / "raw.pcap"
    packet = IP(dst="10.0.0.4") / UDP(dport=9)
    wrpcap(str(path), [packet], linktype=101)
    with receiver() as sock:
        assert replay.main([str(path), "--to", to(sock), "-q"]) == 0
        (got,) = receive(sock, 1)
    datagram = codec.decode(got)
    assert (datagram.encapsulation, datagram.frame) == (7, bytes(packet))


def test_bad_arguments_and_files(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        replay.main([str(TZSP_CAPTURE)])  # no default destination
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        replay.main([str(TZSP_CAPTURE), "--to", "::1:9"])
    with pytest.raises(SystemExit):
        replay.main([str(TZSP_CAPTURE), "--to", "127.0.0.1:9", "--rate", "5", "--realtime"])
    with pytest.raises(SystemExit):
        replay.main([str(TZSP_CAPTURE), "--to", "127.0.0.1:9", "--raw-tzsp", "--packet-id"])
    capsys.readouterr()
    assert replay.main([str(tmp_path / "missing.pcap"), "--to", "127.0.0.1:9"]) == 1
    assert "cannot open" in capsys.readouterr().err


def test_truncated_capture_reports_and_keeps_what_was_sent(tmp_path, capsys):
    path = tmp_path / "cut.pcap"
    packets = ethernet_packets(3)
    wrpcap(str(path), packets)
    path.write_bytes(path.read_bytes()[:-5])
    with receiver() as sock:
        assert replay.main([str(path), "--to", to(sock)]) == 1
        got = receive(sock, 2)
    assert got == [codec.encode_frame(bytes(p)) for p in packets[:2]]
    err = capsys.readouterr().err
    assert "truncated packet data" in err and "sent 2 datagrams" in err


def test_console_script_runs(tmp_path):
    path = tmp_path / "in.pcap"
    packets = ethernet_packets(2)
    wrpcap(str(path), packets)
    with receiver() as sock:
        done = subprocess.run(
            console_script("tzsp-replay") + [str(path), "--to", to(sock)], capture_output=True, text=True, timeout=60
        )
        got = receive(sock, 2)
    assert done.returncode == 0, done.stderr
    assert got == [codec.encode_frame(bytes(p)) for p in packets]
    assert "sent 2 datagrams" in done.stderr
    assert struct.unpack("!BBH", got[0][:4]) == (1, 0, 1)
