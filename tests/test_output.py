"""tzspd's outputs: record walking, file naming, rotation, broken pipes, consumer processes."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import wait_for

from tzsp.capture_files import read_capture
from tzsp.codec import Frame
from tzsp.consumer import Consumer
from tzsp.fdwrite import enlarge_pipe, write_some
from tzsp.output import ReaderGone, RotatingFileSink, StreamSink, rotated_name
from tzsp.pcap import global_header, record, record_ends, records_through, whole_records_within
from tzsp.stats import Counters

HEADER = global_header(1)
STOP_CONSUMER = Path(__file__).parent / "data" / "stop_consumer.py"


def frames(count, size=100, prefix=b"F"):
    return [prefix + i.to_bytes(2, "big") + bytes(size - len(prefix) - 2) for i in range(count)]


def batch(frame_list):
    return b"".join(record(Frame(1, f, 1_700_000_000_000_000_000 + i, len(f))) for i, f in enumerate(frame_list))


def saved_frames(path) -> list[bytes]:
    linktype, records = read_capture(path)
    assert linktype == 1
    return [frame for _, frame in records]


# ------------------------------------------------------------ record walking


def test_record_boundaries_of_a_batch():
    data = batch(frames(3, size=50))
    assert list(record_ends(data)) == [66, 132, 198]
    assert list(record_ends(data[:150])) == [66, 132]  # a cut record is not whole
    assert whole_records_within(data, 140) == (132, 2)
    assert whole_records_within(data, 65) == (0, 0)
    assert records_through(data, 67) == (132, 2)
    assert records_through(data, 1000) == (198, 3)


# ------------------------------------------------------------ file names


def test_rotated_names_take_an_index_and_strftime():
    when = time.mktime((2024, 3, 5, 14, 7, 9, 0, 0, -1))
    assert rotated_name("/var/cap/tzsp-%Y%m%d-%H%M%S.pcap", 4, when) == "/var/cap/tzsp-20240305-140709-004.pcap"
    assert rotated_name("/var/cap/{index:05d}-%H.pcap", 12, when) == "/var/cap/00012-14.pcap"
    assert rotated_name("/var/cap/capture", 1, when) == "/var/cap/capture-001"
    assert rotated_name("run.d/cap.{index}.pcap", 7, when) == "run.d/cap.7.pcap"


# ------------------------------------------------------------ rotation


def test_rotation_by_size_keeps_every_frame_in_valid_files(tmp_path):
    stats = Counters()
    sink = RotatingFileSink(str(tmp_path / "cap.pcap"), HEADER, stats, rotate_bytes=1000)
    sink.start()
    sent = frames(40)
    for i in range(0, 40, 7):  # batches of several records, as the receiver hands them over
        part = sent[i : i + 7]
        sink.write(memoryview(batch(part)), len(part))
    sink.close()
    files = sorted(tmp_path.iterdir())
    assert [str(f) for f in files] == sink.files and len(files) >= 4
    assert [Path(p).name for p in sink.files][:2] == ["cap-000.pcap", "cap-001.pcap"]
    got = []
    for path in files:
        data = path.read_bytes()
        assert data.startswith(HEADER)
        assert len(data) < 1000 + 116  # a file stops at the first record reaching the limit
        got += saved_frames(path)
    assert got == sent
    assert stats.written == 40


def test_rotation_by_time_and_existing_files_are_not_overwritten(tmp_path):
    (tmp_path / "cap-000.pcap").write_bytes(b"keep me")
    now = [1000.0]
    sink = RotatingFileSink(str(tmp_path / "cap.pcap"), HEADER, Counters(), rotate_seconds=60, clock=lambda: now[0])
    sink.start()
    first, second = frames(2), frames(3, prefix=b"G")
    sink.write(batch(first), 2)
    now[0] += 59
    sink.write(batch(second[:1]), 1)
    now[0] += 1
    sink.write(batch(second[1:]), 2)
    sink.close()
    assert (tmp_path / "cap-000.pcap").read_bytes() == b"keep me"
    assert [Path(p).name for p in sink.files] == ["cap-001.pcap", "cap-002.pcap"]
    assert saved_frames(sink.files[0]) == first + second[:1]
    assert saved_frames(sink.files[1]) == second[1:]


# ------------------------------------------------------------ pipes


def test_a_reader_that_goes_away_is_reported():
    read_fd, write_fd = os.pipe()
    sink = StreamSink(write_fd, HEADER, Counters())
    sink.start()
    os.close(read_fd)
    with pytest.raises(ReaderGone, match="went away"):
        sink.write(batch(frames(1)), 1)
    os.close(write_fd)


def test_write_some_completes_on_a_full_non_blocking_pipe():
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    payload = os.urandom(300_000)  # more than a default 64 KiB pipe holds
    received = bytearray()

    def reader():
        while len(received) < len(payload):
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            received.extend(chunk)
            time.sleep(0.001)

    thread = threading.Thread(target=reader)
    thread.start()
    assert write_some(write_fd, payload) == (len(payload), None)
    thread.join(10)
    os.close(write_fd)
    os.close(read_fd)
    assert bytes(received) == payload


def test_enlarge_pipe_only_touches_pipes(tmp_path):
    read_fd, write_fd = os.pipe()
    try:
        assert enlarge_pipe(write_fd, 1 << 20) >= 1 << 16
    finally:
        os.close(read_fd)
        os.close(write_fd)
    with open(tmp_path / "f", "wb") as f:
        assert enlarge_pipe(f.fileno()) is None


# ------------------------------------------------------------ consumer processes


def stop_consumer(tmp_path, stats, buffer_bytes=1 << 20, clock=time.monotonic):
    return Consumer(
        [sys.executable, str(STOP_CONSUMER), str(tmp_path)], HEADER, stats, buffer_bytes, backoff=5.0, clock=clock
    )


def runs(tmp_path):
    return sorted(tmp_path.glob("run-*.pcap"))


def test_consumer_restart_gets_a_fresh_header_and_the_held_records(tmp_path):
    stats = Counters()
    now = [0.0]
    consumer = stop_consumer(tmp_path, stats, clock=lambda: now[0])
    consumer.start()
    first = frames(2) + [b"STOP-1" + bytes(60)]
    consumer.write(batch(first), 3)
    assert wait_for(lambda: len(runs(tmp_path)) == 1)
    held = frames(2, prefix=b"H") + [b"STOP-2" + bytes(60)]
    consumer.write(batch(held), 3)  # the consumer is gone: EPIPE or a noticed exit, then held
    assert consumer.process is None and consumer.pending_count == 3
    assert consumer.tick(4.9) > 0 and consumer.process is None  # backoff not over yet
    consumer.tick(5.0)
    assert stats.consumer_restarts == 1
    assert wait_for(lambda: len(runs(tmp_path)) == 2)
    last = frames(2, prefix=b"L")
    now[0] = 6.0
    assert wait_for(lambda: not consumer.alive())  # notices the second exit
    consumer.tick(1000.0)  # restarts again
    consumer.write(batch(last), 2)
    consumer.close()  # end of input: the consumer saves and exits by itself
    assert wait_for(lambda: len(runs(tmp_path)) == 3)
    assert [saved_frames(p) for p in runs(tmp_path)] == [first, held, last]
    assert (stats.written, stats.consumer_restarts, stats.buffer_overflow, stats.unsent_at_exit) == (8, 2, 0, 0)


def test_consumer_buffer_overflow_is_counted_and_keeps_the_oldest(tmp_path):
    stats = Counters()
    consumer = stop_consumer(tmp_path, stats, buffer_bytes=1000)
    consumer.start()
    consumer.write(batch([b"STOP" + bytes(60)]), 1)
    assert wait_for(lambda: len(runs(tmp_path)) == 1)
    many = frames(10, size=300)
    consumer.write(batch(many), 10)
    assert consumer.pending_count == 3  # 3 records of 316 bytes fit in 1000
    assert stats.buffer_overflow == 7
    assert bytes(consumer.pending) == batch(many)[: 3 * 316]
    consumer.close()
    assert (stats.written, stats.unsent_at_exit) == (1, 3)


def test_consumer_that_cannot_start_raises(tmp_path):
    consumer = Consumer([str(tmp_path / "no-such-program")], HEADER, Counters(), 1000)
    with pytest.raises(OSError):
        consumer.start()


# ------------------------------------------------------------ reload without a gap (SIGHUP)

RELOAD_CONSUMER = Path(__file__).parent / "data" / "reload_consumer.py"


def test_reload_hands_over_to_a_fresh_consumer_without_losing_a_record(tmp_path):
    """The successor takes 0.5 s to start reading (Snort loading rules); meanwhile the old process
    gets every record, then finishes its pipe at end of input; the successor gets the rest."""
    stats = Counters()
    consumer = Consumer([sys.executable, str(RELOAD_CONSUMER), str(tmp_path), "0.5"], HEADER, stats, 1 << 20)
    consumer.start()
    sent = []
    n = 0
    consumer.reload()
    successor = consumer.successor
    assert successor is not None and consumer.process is not None and consumer.process is not successor
    old_pid = consumer.process.pid
    deadline = time.monotonic() + 30
    while consumer.successor is not None and time.monotonic() < deadline:  # records keep coming meanwhile
        batch_frames = frames(5, prefix=b"R" + n.to_bytes(3, "big"))
        consumer.write(batch(batch_frames), 5)
        sent += batch_frames
        n += 1
        consumer.tick(time.monotonic())
        time.sleep(0.01)
    assert consumer.process is successor and consumer.reloads == 1
    before = len(sent)
    after = frames(7, prefix=b"A")
    consumer.write(batch(after), 7)
    sent += after
    consumer.tick(time.monotonic())
    consumer.close()
    old, new = tmp_path / f"pid-{old_pid}.pcap", tmp_path / f"pid-{successor.pid}.pcap"
    assert wait_for(lambda: old.exists() and new.exists())
    got_old, got_new = saved_frames(old), saved_frames(new)
    assert got_old == sent[:before] and got_new == sent[before:]  # each record once, in order
    assert n >= 10  # the old consumer really carried traffic during the successor's start
    assert (stats.buffer_overflow, stats.unsent_at_exit, stats.consumer_restarts) == (0, 0, 0)


def test_a_successor_that_fails_leaves_the_running_consumer_in_place(tmp_path):
    stats = Counters()
    consumer = Consumer([sys.executable, str(RELOAD_CONSUMER), str(tmp_path), "0"], HEADER, stats, 1 << 20)
    consumer.start()
    running = consumer.process
    consumer.argv = [sys.executable, "-c", "raise SystemExit(3)"]  # e.g. a rule file with an error
    consumer.reload()
    assert wait_for(lambda: consumer.successor.poll() is not None)
    consumer.tick(time.monotonic())
    assert consumer.successor is None and consumer.process is running and consumer.reloads == 0
    consumer.write(batch(frames(3)), 3)
    consumer.close()
    assert wait_for(lambda: (tmp_path / f"pid-{running.pid}.pcap").exists())
    assert len(saved_frames(tmp_path / f"pid-{running.pid}.pcap")) == 3
