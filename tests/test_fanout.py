"""--fanout N: the flow hash (pure) and a real tzspd feeding N consumer processes."""

from __future__ import annotations

import collections
import errno
import ipaddress
import os
import signal
import struct
import sys
import time
from pathlib import Path

import pytest
from conftest import wait_for
from hypothesis import given, settings
from hypothesis import strategies as st
from test_recvmmsg import need_accelerator, records_of
from test_recvmmsg import send as send_to_both
from test_tzspd import Tzspd, send

from tzsp.capture_files import CaptureError, read_capture
from tzsp.codec import encode_frame
from tzsp.fanout import consumer_for, flow_key, network_offset, record_splitter, split_by_consumer
from tzsp.native import PURE_PYTHON_ENV
from tzsp.pcap import RECORD_HEADER
from tzsp.receiver import Policy, Receiver
from tzsp.stats import Counters

FANOUT_CONSUMER = Path(__file__).parent / "data" / "fanout_consumer.py"
MAC_A, MAC_B = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")


# ------------------------------------------------------------ frames, built by hand


def checksum_free_ipv4(source, destination, protocol, payload, ident=1, flags_fragment=0) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(payload),
        ident,
        flags_fragment,
        64,
        protocol,
        0,
        ipaddress.IPv4Address(source).packed,
        ipaddress.IPv4Address(destination).packed,
    )
    return header + payload


def ipv6(source, destination, next_header, payload) -> bytes:
    header = struct.pack(
        "!IHBB16s16s",
        6 << 28,
        len(payload),
        next_header,
        64,
        ipaddress.IPv6Address(source).packed,
        ipaddress.IPv6Address(destination).packed,
    )
    return header + payload


def ports(sport, dport, body=b"") -> bytes:
    return struct.pack("!HH", sport, dport) + bytes(16) + body  # enough of a TCP/UDP header


def ether(payload, ethertype=0x0800, vlans=()) -> bytes:
    tags = b"".join(struct.pack("!HH", 0x8100, vid) for vid in vlans)
    return MAC_B + MAC_A + tags + struct.pack("!H", ethertype) + payload


def pppoe(ip_packet, ppp_protocol=0x0021) -> bytes:
    return ether(
        struct.pack("!BBHH", 0x11, 0, 7, len(ip_packet) + 2) + struct.pack("!H", ppp_protocol) + ip_packet,
        ethertype=0x8864,
    )


def tcp4(a, b, sport, dport, body=b"", vlans=()):
    return ether(checksum_free_ipv4(a, b, 6, ports(sport, dport, body)), vlans=vlans)


def udp6(a, b, sport, dport, body=b""):
    return ether(ipv6(a, b, 17, ports(sport, dport, body)), ethertype=0x86DD)


# ------------------------------------------------------------ the pure flow key


@pytest.mark.parametrize(
    "forward, backward",
    [
        (tcp4("192.0.2.1", "198.51.100.7", 40000, 80), tcp4("198.51.100.7", "192.0.2.1", 80, 40000)),
        (udp6("2001:db8::1", "2001:db8::53", 5353, 53), udp6("2001:db8::53", "2001:db8::1", 53, 5353)),
        (tcp4("10.0.0.1", "10.0.0.2", 1, 2, vlans=(10,)), tcp4("10.0.0.2", "10.0.0.1", 2, 1, vlans=(10, 20))),
        (
            pppoe(checksum_free_ipv4("10.0.0.1", "10.0.0.2", 17, ports(1, 2))),
            ether(checksum_free_ipv4("10.0.0.2", "10.0.0.1", 17, ports(2, 1))),
        ),
        (
            ether(checksum_free_ipv4("192.0.2.1", "192.0.2.2", 1, b"\x08\x00" + bytes(6))),
            ether(checksum_free_ipv4("192.0.2.2", "192.0.2.1", 1, b"\x00\x00" + bytes(6))),
        ),  # ICMP
    ],
)
def test_both_directions_of_a_flow_have_one_key(forward, backward):
    assert flow_key(forward, 1) is not None
    assert flow_key(forward, 1) == flow_key(backward, 1)
    for n in (2, 3, 8):
        assert consumer_for(forward, 1, n) == consumer_for(backward, 1, n)


def test_ports_and_protocol_separate_flows():
    base = flow_key(tcp4("192.0.2.1", "192.0.2.2", 1000, 80), 1)
    assert base != flow_key(tcp4("192.0.2.1", "192.0.2.2", 1001, 80), 1)
    assert base != flow_key(ether(checksum_free_ipv4("192.0.2.1", "192.0.2.2", 17, ports(1000, 80))), 1)


def test_fragments_of_a_datagram_go_together():
    payload = ports(40000, 53, bytes(100))
    first = ether(checksum_free_ipv4("192.0.2.1", "192.0.2.9", 17, payload[:64], flags_fragment=0x2000))
    later = ether(checksum_free_ipv4("192.0.2.1", "192.0.2.9", 17, payload[64:], flags_fragment=8))
    reply_fragment = ether(checksum_free_ipv4("192.0.2.9", "192.0.2.1", 17, bytes(40), flags_fragment=0x2000 | 3))
    assert flow_key(first, 1) == flow_key(later, 1) == flow_key(reply_fragment, 1)
    fragment_header = struct.pack("!BBHI", 17, 0, 1, 99)
    v6_first = ether(ipv6("2001:db8::1", "2001:db8::2", 44, fragment_header + ports(1, 2)), ethertype=0x86DD)
    v6_later = ether(
        ipv6("2001:db8::1", "2001:db8::2", 44, struct.pack("!BBHI", 17, 0, 0x100, 99) + bytes(24)), ethertype=0x86DD
    )
    assert flow_key(v6_first, 1) == flow_key(v6_later, 1)


def test_ipv6_extension_headers_are_skipped_to_the_ports():
    hop_by_hop = struct.pack("!BB", 6, 0) + bytes(6)  # next header TCP, 8 bytes
    with_extension = ether(ipv6("2001:db8::1", "2001:db8::2", 0, hop_by_hop + ports(1234, 443)), ethertype=0x86DD)
    plain_reply = ether(ipv6("2001:db8::2", "2001:db8::1", 6, ports(443, 1234)), ethertype=0x86DD)
    assert flow_key(with_extension, 1) == flow_key(plain_reply, 1)


def test_non_ip_frames_go_to_the_first_consumer():
    arp = ether(bytes(28), ethertype=0x0806)
    assert flow_key(arp, 1) is None and consumer_for(arp, 1, 4) == 0
    assert consumer_for(b"\x01\x02", 1, 4) == 0
    assert network_offset(arp, 1) is None


def test_raw_ip_link_type_is_read_directly():
    packet = checksum_free_ipv4("192.0.2.1", "192.0.2.2", 6, ports(1, 2))
    assert flow_key(packet, 101) == flow_key(ether(packet), 1)


def test_flows_spread_over_all_consumers():
    counts = collections.Counter(
        consumer_for(tcp4("192.0.2.1", f"198.51.100.{i % 250}", 1024 + i, 80), 1, 4) for i in range(2000)
    )
    assert set(counts) == {0, 1, 2, 3}
    assert min(counts.values()) > 300  # roughly even: 500 each


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.sampled_from([1, 101, 9]), st.integers(1, 9))
def test_any_bytes_get_a_consumer_in_range(frame, linktype, n):
    assert 0 <= consumer_for(frame, linktype, n) < n


def test_split_by_consumer_keeps_every_record_in_order():
    frames = [tcp4("192.0.2.1", "192.0.2.2", 1000 + i % 7, 80, body=bytes([i])) for i in range(50)]
    records = b"".join(RECORD_HEADER.pack(i, 0, len(f), len(f)) + f for i, f in enumerate(frames))
    parts = split_by_consumer(records, lambda frame: consumer_for(frame, 1, 3), 3)
    assert sum(count for _, count in parts) == 50
    seen = []
    for index, (data, count) in enumerate(parts):
        offset = 0
        stamps = []
        while offset < len(data):
            stamp, _, incl, _ = RECORD_HEADER.unpack_from(data, offset)
            frame = bytes(data[offset + 16 : offset + 16 + incl])
            assert consumer_for(frame, 1, 3) == index
            stamps.append(stamp)
            offset += 16 + incl
        assert stamps == sorted(stamps) and len(stamps) == count
        seen += stamps
    assert sorted(seen) == list(range(50))


# ------------------------------------------------------------ a real tzspd with N consumers


def conversation(flows: int) -> list[bytes]:
    """Both directions of many TCP and UDP flows, interleaved, plus ARP and fragments; every
    frame distinct (a sequence number in the body)."""
    frames = []
    seq = 0
    for i in range(flows):
        a, b = f"192.0.2.{1 + i % 50}", f"198.51.100.{1 + i % 7}"
        for turn in range(3):
            body = seq.to_bytes(4, "big")
            seq += 1
            if i % 3 == 0:
                frames.append(
                    udp6(f"2001:db8::{i:x}", "2001:db8::53", 3000 + i, 53, body)
                    if turn % 2 == 0
                    else udp6("2001:db8::53", f"2001:db8::{i:x}", 53, 3000 + i, body)
                )
            else:
                frames.append(tcp4(a, b, 20000 + i, 443, body) if turn % 2 == 0 else tcp4(b, a, 443, 20000 + i, body))
    frames.append(ether(b"ARP" + bytes(25) + b"\x01", ethertype=0x0806))
    frames.append(ether(checksum_free_ipv4("192.0.2.77", "192.0.2.78", 17, bytes(40), flags_fragment=0x2000)))
    frames.append(ether(checksum_free_ipv4("192.0.2.77", "192.0.2.78", 17, bytes(20), flags_fragment=5)))
    return frames


def saved(out_dir: Path) -> dict[str, list[list[bytes]]]:
    """consumer number -> the frames of each process it ran (files must be valid pcap)."""
    result: dict[str, list[list[bytes]]] = collections.defaultdict(list)
    for path in sorted(out_dir.glob("*.pcap"), key=lambda p: p.stat().st_mtime_ns):
        linktype, records = read_capture(path)
        assert linktype == 1
        result[path.name.split("-")[0]].append([frame for _, frame in records])
    return result


@pytest.mark.parametrize("pure", ["0", "1"], ids=["accelerated", "pure-python"])
def test_fanout_sends_each_flow_both_ways_to_one_consumer_and_loses_nothing(tmp_path, pure):
    out = tmp_path / "out"
    out.mkdir()
    frames = conversation(60)
    command = f"{sys.executable} {FANOUT_CONSUMER} {out}"
    with Tzspd(
        tmp_path, "--allow", "127.0.0.1/32", "--exec", command, "--fanout", "3", environment={PURE_PYTHON_ENV: pure}
    ) as tzspd:
        send(tzspd.port, [encode_frame(f) for f in frames])
        tzspd.stats(until=lambda s: s["written"] == len(frames))
        status, final = tzspd.stop()
    assert status == 0
    per_consumer = saved(out)
    assert sorted(per_consumer) == ["1", "2", "3"]  # every consumer got a share
    assert all(len(runs) == 1 for runs in per_consumer.values())  # no restarts
    got = [frame for runs in per_consumer.values() for frame in runs[0]]
    assert sorted(got) == sorted(frames)  # nothing lost, nothing duplicated
    owner = {}
    for number, runs in per_consumer.items():
        for frame in runs[0]:
            key = flow_key(frame, 1)
            assert owner.setdefault(key, number) == number  # a flow (both directions) in one place
    assert owner[None] == "1"  # the ARP frame
    for runs in per_consumer.values():  # each stream keeps the arrival order
        assert runs[0] == [f for f in frames if f in set(runs[0])]
    assert (final["received"], final["written"], final["consumer_restarts"]) == (len(frames), len(frames), 0)


def process_gone(pid: int) -> bool:
    """Exited (a zombie until tzspd reaps it has closed its files) or reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def test_a_consumer_that_dies_is_restarted_alone_with_a_fresh_header(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    frames = conversation(40)
    first, second = frames[:60], frames[60:]
    command = f"{sys.executable} {FANOUT_CONSUMER} {out}"
    with Tzspd(
        tmp_path, "--allow", "127.0.0.1/32", "--exec", command, "--fanout", "2", "--exec-backoff", "0.2"
    ) as tzspd:
        send(tzspd.port, [encode_frame(f) for f in first])
        tzspd.stats(until=lambda s: s["written"] == len(first))

        def saved_count():
            try:
                return sum(len(r) for runs in saved(out).values() for r in runs)
            except CaptureError:  # a consumer made its file and has not read the header yet
                return -1

        assert wait_for(lambda: saved_count() == len(first))  # all read: the pipes are empty
        victim = next(out.glob("2-*.pcap"))
        pid = int(victim.stem.split("-")[1])
        os.kill(pid, signal.SIGKILL)
        # records written before it is really gone would die in its pipe (documented); wait
        assert wait_for(lambda: process_gone(pid))
        send(tzspd.port, [encode_frame(f) for f in second])
        tzspd.stats(until=lambda s: s["written"] == len(frames) and s["consumer_restarts"] == 1, timeout=20)
        status, final = tzspd.stop()
    assert status == 0
    per_consumer = saved(out)
    assert len(per_consumer["1"]) == 1 and len(per_consumer["2"]) == 2  # only consumer 2 restarted
    got = [frame for runs in per_consumer.values() for run in runs for frame in run]
    assert sorted(got) == sorted(frames)
    assert (final["buffer_overflow"], final["unsent_at_exit"]) == (0, 0)


def test_consumer_number_in_the_command(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    command = f"{sys.executable} {FANOUT_CONSUMER} {out}/{{consumer}}"
    for number in ("1", "2"):
        (out / number).mkdir()
    with Tzspd(tmp_path, "--allow", "127.0.0.1/32", "--exec", command, "--fanout", "2") as tzspd:
        assert wait_for(lambda: len(list(out.glob("*/*.pcap"))) == 2)
        status, _ = tzspd.stop()
    assert status == 0
    assert sorted(p.parent.name + "/" + p.name.split("-")[0] for p in out.glob("*/*.pcap")) == ["1/1", "2/2"]


# ------------------------------------------------------------ C accelerator and Python agree


def as_records(frames) -> bytes:
    return b"".join(RECORD_HEADER.pack(i, 0, len(f), len(f)) + bytes(f) for i, f in enumerate(frames))


def both_splits(frames, linktype, consumers):
    records = as_records(frames)
    native = record_splitter(linktype, consumers, accelerated=True)(records)
    python = record_splitter(linktype, consumers, accelerated=False)(records)
    return [(bytes(d), c) for d, c in native], [(bytes(d), c) for d, c in python]


@pytest.mark.parametrize("consumers", [1, 2, 3, 7])
def test_c_and_python_split_a_conversation_identically(consumers):
    need_accelerator()
    frames = conversation(80) + [tcp4("10.0.0.1", "10.0.0.2", 1, 2, vlans=(1, 2, 3, 4, 5))]
    native, python = both_splits(frames, 1, consumers)
    assert native == python
    assert sum(count for _, count in native) == len(frames)


ip_types = st.sampled_from([b"\x08\x00", b"\x86\xdd", b"\x81\x00", b"\x88\x64"])
headerish = st.builds(
    lambda mac, kind, version, rest: mac + kind + bytes([version]) + rest,
    st.binary(min_size=12, max_size=12),
    ip_types,
    st.sampled_from([0x45, 0x46, 0x60, 0x4F, 0x44]),
    st.binary(max_size=90),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.binary(max_size=100), headerish), max_size=30),
    st.sampled_from([1, 101, 9]),
    st.integers(1, 9),
)
def test_c_and_python_split_any_frames_identically(frames, linktype, consumers):
    need_accelerator()
    native, python = both_splits(frames, linktype, consumers)
    assert native == python


def test_a_cut_off_record_is_left_out_by_both():
    need_accelerator()
    records = as_records([tcp4("10.0.0.1", "10.0.0.2", 1, 2)] * 3)[:-5]
    native = record_splitter(1, 2, accelerated=True)(records)
    python = record_splitter(1, 2, accelerated=False)(records)
    assert [(bytes(d), c) for d, c in native] == [(bytes(d), c) for d, c in python]
    assert sum(c for _, c in native) == 2


# ------------------------------------------------------------ the receiver writes to the consumers itself


class Shares:
    """A sink for Receiver.pump_consumers: counts what the batcher wrote and keeps what it
    could not deliver (as ExecSink does, minus the processes)."""

    def __init__(self, stats):
        self.stats = stats
        self.leftovers = []
        self.written = []  # batches the Python slow path wrote (datagrams left to classify)

    def account(self, records, nbytes):
        self.stats.written += records
        self.stats.output_bytes += nbytes

    def deliver_leftovers(self, base, leftovers, error):
        self.error = error
        self.leftovers += [(c, bytes(base[o : o + length]), count, done) for c, o, length, count, done in leftovers]

    def write(self, records, count):
        self.written.append((bytes(records), count))


def pumped_shares(sock, accelerated, fds, expected):
    """Run Receiver.pump_consumers into ``fds`` until ``expected`` datagrams were read."""
    stats = Counters()
    sink = Shares(stats)
    receiver = Receiver(sock, Policy(), None, stats, accelerated=accelerated)
    receiver.wait_at_most(0.05)
    got = 0
    deadline = time.monotonic() + 10
    while got < expected and time.monotonic() < deadline and not sink.leftovers:
        got += receiver.pump_consumers(sink, fds, 0.05)
    return sink, stats


@pytest.mark.parametrize("consumers", [1, 3])
def test_c_and_python_write_the_same_shares_to_the_consumers(two_sockets, tmp_path, consumers):
    need_accelerator()
    frames = conversation(70)
    ports = [sock.getsockname()[1] for sock in two_sockets]
    before = time.time_ns()
    send_to_both(ports, [encode_frame(f) for f in frames])
    shares = {}
    for sock, accelerated in zip(two_sockets, (True, False), strict=True):
        paths = [tmp_path / f"{accelerated}-{c}.pcap" for c in range(consumers)]
        fds = [os.open(p, os.O_WRONLY | os.O_CREAT) for p in paths]
        sink, stats = pumped_shares(sock, accelerated, fds, len(frames))
        for fd in fds:
            os.close(fd)
        assert not sink.leftovers and not sink.written
        assert (stats.received, stats.written) == (len(frames), len(frames))
        shares[accelerated] = [records_of(p.read_bytes()) for p in paths]
        assert stats.output_bytes == sum(len(r) for share in shares[accelerated] for r in share)
    after = time.time_ns()
    # the same records but for the receive time, which each path took from its own socket
    assert [[r[8:] for r in share] for share in shares[True]] == [[r[8:] for r in share] for share in shares[False]]
    for number, share in enumerate(shares[True]):  # each share: its flows' frames, in arrival order
        assert [record[16:] for record in share] == [f for f in frames if consumer_for(f, 1, consumers) == number]
        assert share  # every consumer has flows
        for record in share + shares[False][number]:
            seconds, micros = struct.unpack_from("<II", record)
            assert before - 1000 <= seconds * 1_000_000_000 + micros * 1000 <= after


def test_a_consumer_that_cannot_take_its_share_gets_it_back_with_the_rest(two_sockets, tmp_path):
    """The second of three consumers has gone (its pipe's reader closed): the first gets its
    share, the second's share (none of it taken) and the third's (not tried) come back as
    leftovers, the same from C and Python."""
    need_accelerator()
    frames = conversation(70)
    ports = [sock.getsockname()[1] for sock in two_sockets]
    send_to_both(ports, [encode_frame(f) for f in frames])
    results = {}
    for sock, accelerated in zip(two_sockets, (True, False), strict=True):
        first = tmp_path / f"{accelerated}-first.pcap"
        good = os.open(first, os.O_WRONLY | os.O_CREAT)
        reader, gone = os.pipe()
        os.close(reader)
        third_reader, third = os.pipe()
        sink, stats = pumped_shares(sock, accelerated, [good, gone, third], len(frames))
        for fd in (good, gone, third, third_reader):
            os.close(fd)
        assert sink.error.errno == errno.EPIPE
        delivered = [r[8:] for r in records_of(first.read_bytes())]
        leftovers = [(c, [r[8:] for r in records_of(data)], count, done) for c, data, count, done in sink.leftovers]
        results[accelerated] = (delivered, leftovers, stats.written)
    assert results[True] == results[False]  # but for the receive times
    delivered, leftovers, written = results[True]
    assert [(c, done) for c, _, _, done in leftovers] == [(1, 0), (2, 0)]
    for number, records, count, _ in leftovers:  # the first batch's shares (the loop stopped there)
        assert len(records) == count > 0
        # records here lack their time; without their lengths too they are the frames
        assert [r[8:] for r in records] == [f for f in frames if consumer_for(f, 1, 3) == number][:count]
    assert written == len(delivered) > 0


def test_exec_sink_writes_directly_only_while_every_consumer_runs_with_nothing_held(tmp_path):
    from tzsp.consumer import Consumer
    from tzsp.output import ExecSink
    from tzsp.pcap import global_header

    stats = Counters()
    consumers = [
        Consumer(
            [sys.executable, str(FANOUT_CONSUMER), str(tmp_path)],
            global_header(1),
            stats,
            1 << 20,
            backoff=60.0,
            env=dict(os.environ, TZSPD_CONSUMER=str(i + 1)),
        )
        for i in range(2)
    ]
    sink = ExecSink(consumers, record_splitter(1, 2))
    sink.start()
    try:
        fds = sink.direct_fds
        assert fds == [c.process.stdin.fileno() for c in consumers]
        consumers[1].process.kill()
        consumers[1].process.wait()
        records = as_records(conversation(20))
        sink.write(records, 60)  # consumer 2 is gone: its share is held
        assert consumers[1].process is None and consumers[1].pending_count > 0
        assert sink.direct_fds is None  # held records go first, through Python
        leftover = records[: RECORD_HEADER.size + RECORD_HEADER.unpack_from(records)[2]]
        sink.deliver_leftovers(memoryview(leftover), [(0, 0, len(leftover), 1, 0)], OSError(errno.EPIPE, "gone"))
        assert consumers[0].process is None and consumers[0].pending_count == 1  # broke: held for the next
    finally:
        sink.close()
