"""tzspd's batch receive path: the C accelerator and the pure-Python fallback give the same bytes.

The same datagrams go to two real sockets on loopback; one is drained through
``tzsp._fastrecv`` and one through ``PyBatcher``. With the clock fixed (kernel timestamps off)
the two pcap streams and the counters must be identical; with kernel timestamps on, every
record's time must lie between sending and draining, and tag 82 must still win.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tzsp.batcher import PyBatcher, accelerator
from tzsp.codec import Tag, encode_frame
from tzsp.native import PURE_PYTHON_ENV, native_module
from tzsp.output import StreamSink
from tzsp.pcap import RECORD_HEADER
from tzsp.receiver import AllowList, Policy, Receiver, classify, open_socket
from tzsp.stats import Counters

ETHER_FRAME = bytes.fromhex("0200000000020200000000010800") + bytes(range(46))
FIXED_NS = 1_700_000_000_123_456_789
TAG82 = Tag(82, struct.pack("!II", 1_600_000_000, 5_000))


def accelerator_built() -> bool:
    try:
        native_module(accelerated=True)  # whatever TZSPD_PURE_PYTHON says
    except ImportError:
        return False
    return True


def need_accelerator():
    if not accelerator_built():
        message = "tzsp._fastrecv is not built (needs a C compiler; ./run setup builds it)"
        if os.environ.get("CI"):
            pytest.fail(message + " -- required when CI is set")
        pytest.skip(message)


class Collecting:
    def __init__(self):
        self.data = bytearray()
        self.count = 0
        self.writes = 0

    def write(self, records, count):
        self.data += records
        self.count += count
        self.writes += 1


def records_of(data: bytes) -> list[bytes]:
    out, offset = [], 0
    while offset < len(data):
        incl = RECORD_HEADER.unpack_from(data, offset)[2]
        out.append(bytes(data[offset : offset + RECORD_HEADER.size + incl]))
        offset += RECORD_HEADER.size + incl
    assert offset == len(data)
    return out


def mixed_datagrams() -> list[bytes]:
    return [
        encode_frame(ETHER_FRAME),
        encode_frame(ETHER_FRAME + b"x" * 1400),
        encode_frame(ETHER_FRAME, tags=[TAG82, Tag(40, struct.pack("!I", 9)), Tag(41, struct.pack("!H", 1600))]),
        b"\x01\x00",  # short
        b"\x02\x00\x00\x01\x01" + ETHER_FRAME,  # bad version
        b"\x01\x04\x00\x00",  # keepalive
        encode_frame(b"\x45" + bytes(39), encapsulation=7),  # raw IP: another link type
        encode_frame(ETHER_FRAME + bytes(9000)),  # jumbo
        encode_frame(ETHER_FRAME + bytes(60000)),  # near the UDP maximum
        b"\x01\x00\x00\x01\x01",  # RouterOS header with an empty frame
        encode_frame(ETHER_FRAME, tags=[Tag(40, struct.pack("!I", 12))]),
    ]


def send(ports, datagrams, source="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        tx.bind((source, 0))
        for datagram in datagrams:
            for port in ports:
                tx.sendto(datagram, ("127.0.0.1", port))


def drain_until(receiver, sink, expected, timeout=10.0):
    got = 0
    deadline = time.monotonic() + timeout
    while got < expected and time.monotonic() < deadline:
        select.select([receiver.sock], [], [], 0.05)
        got += receiver.drain(sink, max_flushes=1000)
    return got


def run_both(sockets, policy, allow, batch_bytes, traffic, expected, kernel_timestamps=False):
    """Send ``traffic`` (list of (source, datagrams)) to both sockets, drain one through each
    path; returns [(sink, stats), (sink, stats)] for C and Python."""
    ports = [sock.getsockname()[1] for sock in sockets]
    for source, datagrams in traffic:
        send(ports, datagrams, source)
    results = []
    for sock, accelerated in zip(sockets, (True, False), strict=True):
        stats, sink = Counters(), Collecting()
        receiver = Receiver(
            sock,
            policy,
            allow,
            stats,
            batch_bytes=batch_bytes,
            kernel_timestamps=kernel_timestamps,
            accelerated=accelerated,
            clock=lambda: FIXED_NS,
        )
        assert receiver.accelerated is accelerated
        assert drain_until(receiver, sink, expected) == expected
        results.append((sink, stats))
    return results


@pytest.mark.parametrize(
    "policy, batch_bytes",
    [
        (Policy(), 1 << 20),
        (Policy(nanosecond=True), 1 << 20),
        (Policy(snaplen=60), 1 << 20),
        (Policy(), 3000),  # many flushes, records cut at the limit
        (Policy(linktype=101), 1 << 20),  # raw IP: the fast path is off
    ],
)
def test_c_and_python_give_identical_bytes_and_counters(two_sockets, policy, batch_bytes):
    need_accelerator()
    datagrams = mixed_datagrams() * 3 + [encode_frame(ETHER_FRAME + bytes([i])) for i in range(200)]
    traffic = [("127.0.0.1", datagrams), ("127.0.0.2", datagrams[:20]), ("127.0.0.1", datagrams[:50])]
    expected = sum(len(d) for _, d in traffic)
    (c_sink, c_stats), (py_sink, py_stats) = run_both(
        two_sockets, policy, AllowList.parse(["127.0.0.1/32"]), batch_bytes, traffic, expected
    )
    assert c_sink.data == py_sink.data
    assert c_stats.snapshot() == py_stats.snapshot()
    assert c_sink.count == py_sink.count == len(records_of(c_sink.data))
    # and both equal classify()'s verdicts, in arrival order, for the allowed sender
    allowed = datagrams + datagrams[:50]
    wanted = [classify(d, FIXED_NS, policy) for d in allowed]
    assert records_of(c_sink.data) == [v.record for v in wanted if v.record]
    assert c_stats.not_allowed == 20
    assert c_stats.received == expected
    if batch_bytes < 10000:
        assert c_sink.writes > 10 and py_sink.writes > 10


def test_without_allow_list_every_sender_is_taken(two_sockets):
    need_accelerator()
    datagrams = [encode_frame(ETHER_FRAME + bytes([i])) for i in range(150)]
    traffic = [("127.0.0.1", datagrams), ("127.0.0.2", datagrams)]
    (c_sink, c_stats), (py_sink, py_stats) = run_both(two_sockets, Policy(), None, 1 << 20, traffic, 300)
    assert c_sink.data == py_sink.data
    assert len(records_of(c_sink.data)) == 300 and c_stats.not_allowed == 0
    assert c_stats.snapshot() == py_stats.snapshot()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=80),
            st.binary(max_size=300).map(lambda b: b"\x01\x00\x00\x01\x01" + b),
            st.binary(max_size=60).map(lambda b: b"\x01\x00\x00\x01" + b),
        ),
        min_size=1,
        max_size=150,
    ),
    st.sampled_from([Policy(), Policy(nanosecond=True, snaplen=40)]),
)
def test_any_datagrams_give_identical_output(two_sockets, datagrams, policy):
    need_accelerator()
    (c_sink, c_stats), (py_sink, py_stats) = run_both(
        two_sockets, policy, None, 1 << 20, [("127.0.0.1", datagrams)], len(datagrams)
    )
    assert c_sink.data == py_sink.data
    assert c_stats.snapshot() == py_stats.snapshot()


@pytest.mark.parametrize("accelerated", [True, False])
def test_kernel_timestamps_per_datagram_and_tag_82_still_wins(accelerated):
    if accelerated:
        need_accelerator()
    sock, info = open_socket("127.0.0.1", 0, 8 << 20)
    try:
        if not info.kernel_timestamps:
            pytest.skip("this kernel gives no SO_TIMESTAMPNS")
        before = time.time_ns()
        datagrams = []
        for i in range(100):
            datagrams.append(encode_frame(ETHER_FRAME + bytes([i])))
            if i % 10 == 0:
                datagrams.append(encode_frame(ETHER_FRAME, tags=[TAG82]))
        send([sock.getsockname()[1]], datagrams)
        time.sleep(0.05)  # the batch is read later than the datagrams arrived
        stats, sink = Counters(), Collecting()
        receiver = Receiver(sock, Policy(nanosecond=True), None, stats, accelerated=accelerated)
        assert receiver.accelerated is accelerated
        drain_start = time.time_ns()
        assert drain_until(receiver, sink, len(datagrams)) == len(datagrams)
        times = []
        for record in records_of(sink.data):
            seconds, nanoseconds, _, _ = RECORD_HEADER.unpack_from(record)
            stamp = seconds * 1_000_000_000 + nanoseconds
            if stamp == 1_600_000_000 * 1_000_000_000 + 5_000:
                continue  # tag 82
            times.append(stamp)
        assert len(times) == 100
        assert all(before <= t <= drain_start for t in times)  # the kernel's time, not the batch's
        assert times == sorted(times)
    finally:
        sock.close()


@pytest.mark.parametrize("accelerated", [True, False])
def test_kernel_drops_reach_the_counters(accelerated):
    if accelerated:
        need_accelerator()
    sock, info = open_socket("127.0.0.1", 0, 1)
    try:
        if not info.drop_counter:
            pytest.skip("this kernel has no SO_RXQ_OVFL")
        stats = Counters()
        receiver = Receiver(sock, Policy(), None, stats, accelerated=accelerated)
        port = sock.getsockname()[1]
        send([port], [encode_frame(ETHER_FRAME + bytes(1000))] * 200)
        queued = drain_until(receiver, Collecting(), 1)
        send([port], [encode_frame(ETHER_FRAME)])
        drain_until(receiver, Collecting(), 1)
        assert 0 < queued < 200
        assert stats.kernel_drops == 200 - queued
    finally:
        sock.close()


def test_environment_forces_the_pure_python_path(monkeypatch, two_sockets):
    monkeypatch.setenv(PURE_PYTHON_ENV, "1")
    receiver = Receiver(two_sockets[0], Policy(), None, Counters())
    assert isinstance(receiver.batcher, PyBatcher) and not receiver.accelerated
    monkeypatch.delenv(PURE_PYTHON_ENV)
    if accelerator() is not None:
        assert Receiver(two_sockets[1], Policy(), None, Counters()).accelerated


def test_a_short_batch_is_written_at_once(two_sockets):
    """Fewer datagrams than one recvmmsg batch: one write, no waiting for more."""
    sock = two_sockets[0]
    send([sock.getsockname()[1]], [encode_frame(ETHER_FRAME)] * 5)
    time.sleep(0.05)
    sink = Collecting()
    receiver = Receiver(sock, Policy(), None, Counters())
    assert receiver.drain(sink) == 5
    assert (sink.writes, sink.count) == (1, 5)


def pumped(sock, accelerated, path, expected, allow=None, policy=None):
    """Run Receiver.pump (the loop that writes by itself) into a file until ``expected``
    datagrams were read; returns (file bytes, counters)."""
    policy = Policy() if policy is None else policy
    stats = Counters()
    sink = StreamSink.open_file(str(path), b"", stats)
    receiver = Receiver(sock, policy, allow, stats, accelerated=accelerated)
    receiver.wait_at_most(0.05)
    got = 0
    deadline = time.monotonic() + 10
    while got < expected and time.monotonic() < deadline:
        got += receiver.pump(sink, 0.05)
    sink.close()
    return Path(path).read_bytes(), stats


@pytest.mark.parametrize("policy", [Policy(), Policy(nanosecond=True, snaplen=100)])
def test_pump_writes_the_same_records_in_c_and_python(two_sockets, tmp_path, policy):
    need_accelerator()
    datagrams = mixed_datagrams() * 2 + [encode_frame(ETHER_FRAME + i.to_bytes(2, "big")) for i in range(300)]
    ports = [sock.getsockname()[1] for sock in two_sockets]
    before = time.time_ns()
    send(ports, datagrams)
    send(ports, datagrams[:30], source="127.0.0.2")
    expected = len(datagrams) + 30
    allow = AllowList.parse(["127.0.0.1/32"])
    c_bytes, c_stats = pumped(two_sockets[0], True, tmp_path / "c.pcap", expected, allow, policy)
    py_bytes, py_stats = pumped(two_sockets[1], False, tmp_path / "py.pcap", expected, allow, policy)
    after = time.time_ns()
    assert c_stats.snapshot() == py_stats.snapshot()
    assert c_stats.received == expected and c_stats.not_allowed == 30
    c_records, py_records = records_of(c_bytes), records_of(py_bytes)
    wanted = [v.record for v in (classify(d, FIXED_NS, policy) for d in datagrams) if v.record]
    assert len(c_records) == len(py_records) == len(wanted) == c_stats.written
    unit = 1 if policy.nanosecond else 1000
    for c_record, py_record, want in zip(c_records, py_records, wanted, strict=True):
        # everything but the receive time is what classify() decides, in arrival order
        assert c_record[8:] == py_record[8:] == want[8:]
        if struct.unpack_from("<I", want)[0] == 1_600_000_000:  # tag 82: the sender's time
            assert c_record[:8] == py_record[:8] == want[:8]
            continue
        for record in (c_record, py_record):
            seconds, fraction = struct.unpack_from("<II", record)
            assert before - unit <= seconds * 1_000_000_000 + fraction * unit <= after
