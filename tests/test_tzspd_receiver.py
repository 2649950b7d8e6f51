"""tzspd's receive decisions (pure) and the drain loop over a real loopback socket."""

from __future__ import annotations

import ipaddress
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tzsp.codec import Tag, encode_frame
from tzsp.pcap import RECORD_HEADER
from tzsp.receiver import (
    MALFORMED,
    NON_FRAME,
    OTHER_LINKTYPE,
    WRITTEN,
    AllowList,
    Policy,
    Receiver,
    classify,
    open_socket,
    sender_address,
)
from tzsp.stats import Counters

ETHER_FRAME = bytes.fromhex("020000000002020000000001080045000028000100004006f7c6c0000202c6336401") + bytes(20)
RAW_IP = bytes.fromhex("4500001c00010000400100000000000000000000") + bytes(8)
NOW_NS = 1_700_000_000_123_456_789


# ------------------------------------------------------------ sender addresses and --allow


def test_mapped_ipv4_sender_is_shown_as_ipv4():
    assert sender_address("::ffff:192.0.2.7") == ipaddress.ip_address("192.0.2.7")
    assert sender_address("2001:db8::1") == ipaddress.ip_address("2001:db8::1")
    assert sender_address("fe80::1%lo") == ipaddress.ip_address("fe80::1")


def test_allow_list_matches_both_families_and_mapped_senders():
    allow = AllowList.parse(["192.0.2.0/24", "2001:db8::/32"])
    assert allow.allows_host("192.0.2.200")
    assert allow.allows_host("::ffff:192.0.2.200")
    assert allow.allows_host("2001:db8:1::5")
    assert not allow.allows_host("198.51.100.1")
    assert not allow.allows_host("::ffff:198.51.100.1")
    assert not allow.allows_host("2001:db9::1")
    assert not allow.allows_host("not an address")


def test_allow_list_written_as_mapped_ipv6_matches_ipv4_senders():
    allow = AllowList.parse(["::ffff:192.0.2.0/120"])
    assert allow.allows_host("192.0.2.9")
    assert not allow.allows_host("192.0.3.9")


def test_allow_list_rejects_text_that_is_no_network():
    with pytest.raises(ValueError, match="--allow 'router1'"):
        AllowList.parse(["router1"])


# ------------------------------------------------------------ classification


def test_routeros_datagram_becomes_one_pcap_record_with_receive_time():
    verdict = classify(encode_frame(ETHER_FRAME), NOW_NS, Policy())
    assert verdict.outcome == WRITTEN
    seconds, micros, incl, orig = RECORD_HEADER.unpack_from(verdict.record)
    assert (seconds, micros) == (1_700_000_000, 123_456)
    assert incl == orig == len(ETHER_FRAME)
    assert verdict.record[RECORD_HEADER.size :] == ETHER_FRAME


def test_tags_give_capture_time_original_length_and_packet_id():
    tags = [
        Tag(82, struct.pack("!II", 1_600_000_000, 5_000)),
        Tag(41, struct.pack("!H", 1500)),
        Tag(40, struct.pack("!I", 77)),
    ]
    verdict = classify(encode_frame(ETHER_FRAME, tags=tags), NOW_NS, Policy(nanosecond=True))
    assert verdict.outcome == WRITTEN and verdict.packet_id == 77
    assert RECORD_HEADER.unpack_from(verdict.record) == (1_600_000_000, 5_000, len(ETHER_FRAME), 1500)


def test_snaplen_cuts_the_stored_bytes_but_keeps_the_original_length():
    verdict = classify(encode_frame(ETHER_FRAME), NOW_NS, Policy(snaplen=20))
    _, _, incl, orig = RECORD_HEADER.unpack_from(verdict.record)
    assert (incl, orig) == (20, len(ETHER_FRAME))
    assert verdict.record[RECORD_HEADER.size :] == ETHER_FRAME[:20]


@pytest.mark.parametrize(
    "datagram, reason",
    [
        (b"\x01\x00", "short"),
        (b"\x02\x00\x00\x01\x01" + ETHER_FRAME, "bad-version"),
        (b"\x01\x09\x00\x01\x01" + ETHER_FRAME, "unknown-type"),
        (b"\x01\x00\x00\x01\x28\x04\x00", "tag-overrun"),
        (b"\x01\x00\x00\x01\x00\x00\x0a\x01\xc4", "no-end"),
    ],
)
def test_malformed_datagrams_are_counted_by_reason(datagram, reason):
    verdict = classify(datagram, NOW_NS, Policy())
    assert (verdict.outcome, verdict.reason, verdict.record) == (MALFORMED, reason, b"")


@pytest.mark.parametrize("kind", [2, 3, 4, 5])
def test_types_2_to_5_carry_no_frame(kind):
    datagram = bytes((1, kind, 0, 1)) + (b"" if kind in (4, 5) else b"\x01" + ETHER_FRAME)
    assert classify(datagram, NOW_NS, Policy()).outcome == NON_FRAME


def test_a_stream_has_one_link_type():
    raw = encode_frame(RAW_IP, encapsulation=7)
    assert classify(raw, NOW_NS, Policy()).outcome == OTHER_LINKTYPE
    assert classify(encode_frame(ETHER_FRAME), NOW_NS, Policy(linktype=101)).outcome == OTHER_LINKTYPE
    verdict = classify(raw, NOW_NS, Policy(linktype=101))
    assert verdict.outcome == WRITTEN and verdict.record.endswith(RAW_IP)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_any_bytes_give_a_record_or_a_counted_reason(data):
    verdict = classify(data, NOW_NS, Policy())
    assert verdict.outcome in (WRITTEN, MALFORMED, OTHER_LINKTYPE, NON_FRAME)
    if verdict.outcome == WRITTEN:
        # a record is at most 11 bytes longer than its datagram (the receiver keeps 16 + 65535 spare)
        assert len(verdict.record) <= len(data) + 11
    else:
        assert verdict.record == b""


# ------------------------------------------------------------ the drain loop, real socket


class CollectingSink:
    def __init__(self):
        self.batches: list[tuple[bytes, int]] = []

    def write(self, records, count):
        self.batches.append((bytes(records), count))

    def records(self) -> list[bytes]:
        out = []
        for data, _count in self.batches:
            offset = 0
            while offset < len(data):
                incl = RECORD_HEADER.unpack_from(data, offset)[2]
                out.append(data[offset : offset + RECORD_HEADER.size + incl])
                offset += RECORD_HEADER.size + incl
        return out


@pytest.fixture
def receiving_socket():
    sock, info = open_socket("127.0.0.1", 0, 4 << 20)
    yield sock, info
    sock.close()


def _send(port, datagrams, source="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        tx.bind((source, 0))
        for datagram in datagrams:
            tx.sendto(datagram, ("127.0.0.1", port))


def _drain_all(receiver, sink, expected, attempts=200):
    import select

    got = 0
    for _ in range(attempts):
        if got >= expected:
            break
        select.select([receiver.sock], [], [], 0.05)
        got += receiver.drain(sink)
    return got


def test_drain_writes_what_classify_decides_in_one_batch(receiving_socket):
    sock, info = receiving_socket
    datagrams = [
        encode_frame(ETHER_FRAME),
        encode_frame(ETHER_FRAME + b"x" * 1000),
        encode_frame(ETHER_FRAME, tags=[Tag(40, struct.pack("!I", 5)), Tag(41, struct.pack("!H", 1600))]),
        b"\x01\x00",
        b"\x01\x04\x00\x00",
        encode_frame(RAW_IP, encapsulation=7),
        encode_frame(b"\x45" + bytes(9000)),  # a jumbo frame
    ]
    _send(sock.getsockname()[1], datagrams)
    stats = Counters()
    sink = CollectingSink()
    receiver = Receiver(sock, Policy(), None, stats, kernel_timestamps=info.kernel_timestamps)
    assert _drain_all(receiver, sink, len(datagrams)) == len(datagrams)
    records = sink.records()
    assert len(records) == 4
    expected_frames = [ETHER_FRAME, ETHER_FRAME + b"x" * 1000, ETHER_FRAME, b"\x45" + bytes(9000)]
    written = [d for d in datagrams if classify(d, 0, Policy()).outcome == WRITTEN]
    for rec, frame, datagram in zip(records, expected_frames, written, strict=True):
        seconds, micros, _, _ = RECORD_HEADER.unpack_from(rec)
        received_ns = seconds * 10**9 + micros * 1000
        assert rec[RECORD_HEADER.size :] == frame
        # fast path or not, the bytes equal classify()'s record for the same receive time
        assert rec == classify(datagram, received_ns, Policy()).record
    assert stats.received == 7
    assert stats.malformed == {"short": 1}
    assert (stats.non_frame, stats.other_linktype) == (1, 1)
    assert sum(count for _, count in sink.batches) == 4


def test_drain_counts_senders_outside_the_allow_list(receiving_socket):
    sock, info = receiving_socket
    port = sock.getsockname()[1]
    _send(port, [encode_frame(ETHER_FRAME)] * 3, source="127.0.0.2")
    _send(port, [encode_frame(ETHER_FRAME)] * 2, source="127.0.0.1")
    stats = Counters()
    sink = CollectingSink()
    receiver = Receiver(sock, Policy(), AllowList.parse(["127.0.0.1/32"]), stats)
    assert _drain_all(receiver, sink, 5) == 5
    assert (stats.received, stats.not_allowed, len(sink.records())) == (5, 3, 2)


def test_drain_flushes_when_the_buffer_fills(receiving_socket):
    sock, info = receiving_socket
    frame = ETHER_FRAME + bytes(400)
    _send(sock.getsockname()[1], [encode_frame(frame)] * 30)
    sink = CollectingSink()
    receiver = Receiver(sock, Policy(), None, Counters(), batch_bytes=2000)
    assert _drain_all(receiver, sink, 30) == 30
    assert len(sink.batches) > 5  # several writes, each of whole records
    assert [r[RECORD_HEADER.size :] for r in sink.records()] == [frame] * 30


def test_snaplen_in_the_fast_path(receiving_socket):
    sock, info = receiving_socket
    _send(sock.getsockname()[1], [encode_frame(ETHER_FRAME)] * 3)
    sink = CollectingSink()
    receiver = Receiver(sock, Policy(snaplen=14), None, Counters())
    assert _drain_all(receiver, sink, 3) == 3
    for rec in sink.records():
        assert RECORD_HEADER.unpack_from(rec)[2:] == (14, len(ETHER_FRAME))
        assert rec[RECORD_HEADER.size :] == ETHER_FRAME[:14]


def test_kernel_drops_are_read_from_so_rxq_ovfl():
    sock, info = open_socket("127.0.0.1", 0, 1)  # the kernel's minimum buffer: a few datagrams
    try:
        if not info.drop_counter:
            pytest.skip("this kernel has no SO_RXQ_OVFL")
        port = sock.getsockname()[1]
        stats = Counters()
        receiver = Receiver(sock, Policy(), None, stats)
        _send(port, [encode_frame(ETHER_FRAME + bytes(1000))] * 200)  # overflows the buffer
        queued = _drain_all(receiver, CollectingSink(), 1)
        _send(port, [encode_frame(ETHER_FRAME)])  # queued after the drops: carries the total
        _drain_all(receiver, CollectingSink(), 1)
        assert 0 < queued < 200
        assert stats.kernel_drops == 200 - queued  # loopback: a datagram not queued was dropped
    finally:
        sock.close()
