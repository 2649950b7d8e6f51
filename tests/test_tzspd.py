"""tzspd end to end: a real tzspd process on loopback, real senders, real tcpdump and tshark
reading its output. Every wait is bounded."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import console_script, free_port, require_tool, wait_for

from tzsp.capture_files import read_capture
from tzsp.codec import Tag, encode_frame

STOP_CONSUMER = Path(__file__).parent / "data" / "stop_consumer.py"


def port_for(listen: str) -> int:
    """A free UDP port for ``listen``; for ``::`` free on both families (dual-stack bind)."""
    if listen != "::":
        return free_port(host=listen)
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
        probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        probe.bind(("::", 0))
        return probe.getsockname()[1]


class Tzspd:
    """A tzspd subprocess with its counters read through SIGUSR1 (--stats-json on stderr)."""

    def __init__(
        self, tmp_path, *options, listen="127.0.0.1", stdout=subprocess.DEVNULL, stats_json=True, environment=None
    ):
        self.port = port_for(listen)
        self.err_path = Path(tmp_path) / f"tzspd-{self.port}.stderr"
        self._err = open(self.err_path, "wb")
        argv = console_script("tzspd") + ["--listen", listen, "--port", str(self.port), *options]
        if stats_json:
            argv.append("--stats-json")
        env = dict(os.environ, PYTHONUNBUFFERED="1", **(environment or {}))  # not relying on stdout buffering
        self.proc = subprocess.Popen(argv, stdout=stdout, stderr=self._err, env=env)
        started = wait_for(lambda: "listening on" in self.stderr() or self.proc.poll() is not None, timeout=30)
        if not started or self.proc.poll() is not None:
            self.close()
            raise AssertionError(f"tzspd did not start: {self.stderr()}")

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def stats_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.stderr().splitlines() if line.startswith("{")]

    def stats(self, until=lambda s: True, timeout=15.0) -> dict:
        """Ask for the counters (SIGUSR1) until ``until`` holds for them."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            seen = len(self.stats_lines())
            self.proc.send_signal(signal.SIGUSR1)
            if wait_for(lambda seen=seen: len(self.stats_lines()) > seen, timeout=3):
                last = self.stats_lines()[-1]
                if until(last):
                    return last
            time.sleep(0.05)
        raise AssertionError(f"counters never got there; last: {last}\n{self.stderr()}")

    def stop(self, timeout=20.0) -> tuple[int, dict]:
        self.proc.send_signal(signal.SIGTERM)
        status = self.proc.wait(timeout)
        lines = self.stats_lines()
        return status, (lines[-1] if lines else {})

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._err.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def send(port, datagrams, source="127.0.0.1", destination="127.0.0.1", pause=0.0):
    family = socket.AF_INET6 if ":" in destination else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as tx:
        tx.bind((source, 0))
        for datagram in datagrams:
            tx.sendto(datagram, (destination, port))
            if pause:
                time.sleep(pause)


@pytest.fixture(scope="module")
def source_capture(tmp_path_factory):
    """The demo's conversation (TCP handshake, HTTP GET, ICMP echo, DNS query between
    documentation addresses) plus a full-size and a jumbo frame."""
    from scapy.all import IP, TCP, UDP, Ether, Raw, wrpcap

    from tzsp.demo import CLIENT, SERVER, demo_packets

    ether = Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")
    packets = demo_packets() + [
        ether
        / IP(src=SERVER, dst=CLIENT)
        / TCP(sport=80, dport=40000, flags="A")
        / Raw(bytes(range(256)) * 5 + bytes(180)),
        ether / IP(src=SERVER, dst=CLIENT) / UDP(sport=9, dport=9) / Raw(b"J" * 8900),
    ]
    path = tmp_path_factory.mktemp("capture") / "source.pcap"
    wrpcap(str(path), packets)
    _, records = read_capture(path)
    return path, [frame for _, frame in records]


def frames_of(path) -> tuple[int, list[bytes]]:
    linktype, records = read_capture(path)
    return linktype, [frame for _, frame in records]


# ------------------------------------------------------------ the stream, read by real tools


def test_replayed_capture_reaches_tcpdump_byte_for_byte(tmp_path, source_capture):
    require_tool("tcpdump")
    capture, expected = source_capture
    rewritten = tmp_path / "tcpdump.pcap"
    with Tzspd(tmp_path, "--allow", "127.0.0.1/32", stdout=subprocess.PIPE) as tzspd:
        tcpdump = subprocess.Popen(
            ["tcpdump", "-n", "-r", "-", "-w", str(rewritten)],
            stdin=tzspd.proc.stdout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        tzspd.proc.stdout.close()
        replay = subprocess.run(
            console_script("tzsp-replay") + [str(capture), "--to", f"127.0.0.1:{tzspd.port}", "-q"],
            capture_output=True,
            timeout=30,
        )
        assert replay.returncode == 0, replay.stderr
        tzspd.stats(until=lambda s: s["written"] == len(expected))
        status, final = tzspd.stop()
        _, tcpdump_err = tcpdump.communicate(timeout=20)
    assert status == 0
    assert tcpdump.returncode == 0, tcpdump_err
    assert b"link-type EN10MB" in tcpdump_err
    linktype, got = frames_of(rewritten)
    assert linktype == 1
    assert got == expected
    assert final["received"] == final["written"] == len(expected)
    assert final["malformed"] == final["kernel_drops"] == 0


def test_live_reader_sees_each_packet_before_the_next_is_sent(tmp_path, source_capture):
    """Flushing when the socket is empty: tcpdump prints a packet while tzspd keeps running."""
    require_tool("tcpdump")
    _, frames = source_capture
    with Tzspd(tmp_path, "--allow", "127.0.0.1/32", stdout=subprocess.PIPE) as tzspd:
        out_path = tmp_path / "tcpdump.txt"
        with open(out_path, "wb") as out:
            tcpdump = subprocess.Popen(
                ["tcpdump", "-n", "-l", "-r", "-"], stdin=tzspd.proc.stdout, stdout=out, stderr=subprocess.DEVNULL
            )
        tzspd.proc.stdout.close()
        try:
            for i, frame in enumerate(frames[:3]):
                send(tzspd.port, [encode_frame(frame)])
                assert wait_for(lambda i=i: len(out_path.read_bytes().splitlines()) == i + 1), out_path.read_bytes()
        finally:
            status, _ = tzspd.stop()
            tcpdump.wait(20)
    assert status == 0
    assert b"192.0.2.10.5353 > 203.0.113.53.53" in out_path.read_bytes()


def test_tshark_reads_a_raw_ip_stream_with_nanosecond_times(tmp_path, source_capture):
    require_tool("tshark")
    _, frames = source_capture
    ip_packets = [frame[14:] for frame in frames]  # the same packets without the Ethernet header
    with Tzspd(
        tmp_path, "--linktype", "raw", "--nanosecond", "--allow", "127.0.0.1/32", stdout=subprocess.PIPE
    ) as tzspd:
        tshark = subprocess.Popen(
            ["tshark", "-r", "-", "-T", "json", "-x"],
            stdin=tzspd.proc.stdout,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        tzspd.proc.stdout.close()
        send(tzspd.port, [encode_frame(p, encapsulation=7) for p in ip_packets])
        send(tzspd.port, [encode_frame(frames[0])])  # Ethernet: not this stream's link type
        tzspd.stats(until=lambda s: s["written"] + s["other_linktype"] == len(frames) + 1)
        status, final = tzspd.stop()
        out, err = tshark.communicate(timeout=60)
    assert status == 0 and tshark.returncode == 0, err
    packets = json.loads(out)
    got = [bytes.fromhex(p["_source"]["layers"]["frame_raw"][0]) for p in packets]
    assert got == ip_packets
    layers = packets[0]["_source"]["layers"]
    assert layers["frame"]["frame.protocols"].startswith("raw:ip")
    assert layers["ip"]["ip.dst"] == "203.0.113.53"
    assert final["other_linktype"] == 1 and final["written"] == len(ip_packets)


def test_snaplen_keeps_the_original_length(tmp_path, source_capture):
    require_tool("tshark")
    _, frames = source_capture
    with Tzspd(tmp_path, "--snaplen", "60", "--allow", "127.0.0.1/32", stdout=subprocess.PIPE) as tzspd:
        tshark = subprocess.Popen(
            ["tshark", "-r", "-", "-T", "fields", "-e", "frame.len", "-e", "frame.cap_len"],
            stdin=tzspd.proc.stdout,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        tzspd.proc.stdout.close()
        send(tzspd.port, [encode_frame(f) for f in frames])
        tzspd.stats(until=lambda s: s["written"] == len(frames))
        tzspd.stop()
        out, err = tshark.communicate(timeout=60)
    rows = [tuple(map(int, line.split())) for line in out.decode().splitlines()]
    assert rows == [(len(f), min(len(f), 60)) for f in frames]


# ------------------------------------------------------------ who may send, what is counted


def test_allow_list_drops_other_senders(tmp_path, source_capture):
    _, frames = source_capture
    output = tmp_path / "out.pcap"
    with Tzspd(tmp_path, "--allow", "127.0.0.1/32", "-o", str(output)) as tzspd:
        send(tzspd.port, [encode_frame(f) for f in frames[:3]], source="127.0.0.2")
        send(tzspd.port, [encode_frame(f) for f in frames[3:5]], source="127.0.0.1")
        tzspd.stats(until=lambda s: s["received"] == 5)
        status, final = tzspd.stop()
        stderr = tzspd.stderr()
    assert status == 0
    assert (final["not_allowed"], final["written"]) == (3, 2)
    assert frames_of(output)[1] == frames[3:5]
    assert "dropping datagrams from 127.0.0.2: not in --allow" in stderr


def test_without_allow_tzspd_warns(tmp_path):
    with Tzspd(tmp_path, "-o", str(tmp_path / "out.pcap")) as tzspd:
        tzspd.stop()
        assert "warning: no --allow given" in tzspd.stderr()


def test_ipv6_and_ipv4_senders_on_one_dual_stack_socket(tmp_path, source_capture):
    _, frames = source_capture
    output = tmp_path / "out.pcap"
    with Tzspd(tmp_path, "--allow", "::1/128", "--allow", "127.0.0.1/32", "-o", str(output), listen="::") as tzspd:
        send(tzspd.port, [encode_frame(frames[0])], source="::1", destination="::1")
        send(tzspd.port, [encode_frame(frames[1])], source="127.0.0.1", destination="127.0.0.1")
        send(tzspd.port, [encode_frame(frames[2])], source="127.0.0.2", destination="127.0.0.1")
        tzspd.stats(until=lambda s: s["received"] == 3)
        status, final = tzspd.stop()
        stderr = tzspd.stderr()
    assert status == 0
    assert (final["written"], final["not_allowed"]) == (2, 1)
    assert sorted(frames_of(output)[1]) == sorted(frames[:2])
    assert "from 127.0.0.2:" in stderr and "::ffff:" not in stderr


def test_malformed_and_non_frame_datagrams_are_counted_by_reason(tmp_path, source_capture):
    _, frames = source_capture
    output = tmp_path / "out.pcap"
    with Tzspd(tmp_path, "--allow", "127.0.0.1/32", "-o", str(output)) as tzspd:
        send(
            tzspd.port,
            [
                b"\x01\x00",  # short
                b"\x02\x00\x00\x01\x01" + frames[0],  # bad-version
                b"\x01\x07\x00\x01\x01" + frames[0],  # unknown-type
                b"\x01\x00\x00\x01\x28\x04\x00\x00",  # tag-overrun
                b"\x01\x00\x00\x01\x0a\x01\xc4",  # no-end
                b"\x01\x04\x00\x00",  # keepalive
                b"\x01\x03\x00\x01\x01",  # config
                encode_frame(frames[0], tags=[Tag(40, struct.pack("!I", 1))]),
                encode_frame(frames[1], tags=[Tag(40, struct.pack("!I", 4))]),  # ids 2 and 3 lost
            ],
        )
        tzspd.stats(until=lambda s: s["received"] == 9)
        status, final = tzspd.stop()
    assert status == 0
    assert final["malformed_by_reason"] == {
        "bad-version": 1,
        "no-end": 1,
        "short": 1,
        "tag-overrun": 1,
        "unknown-type": 1,
    }
    assert (final["non_frame"], final["written"], final["tag40_gaps"]) == (2, 2, 2)
    assert frames_of(output)[1] == frames[:2]


def test_sigusr1_and_interval_print_counters_as_text(tmp_path, source_capture):
    _, frames = source_capture
    with Tzspd(
        tmp_path, "--allow", "127.0.0.1/32", "-o", str(tmp_path / "o.pcap"), "--stats-interval", "0.3", stats_json=False
    ) as tzspd:
        send(tzspd.port, [encode_frame(f) for f in frames[:4]])

        def text_lines():
            return [line for line in tzspd.stderr().splitlines() if line.startswith("tzspd: stats: ")]

        assert wait_for(lambda: any("written=4 " in line for line in text_lines()))
        periodic = len(text_lines())
        assert periodic >= 1
        tzspd.proc.send_signal(signal.SIGUSR1)
        assert wait_for(lambda: len(text_lines()) > periodic)
        status, _ = tzspd.stop()
    assert status == 0
    assert "received=4 written=4 malformed=0" in text_lines()[-1]


# ------------------------------------------------------------ outputs


def test_broken_pipe_ends_tzspd_with_a_message(tmp_path, source_capture):
    _, frames = source_capture
    with Tzspd(tmp_path, "--allow", "127.0.0.1/32", stdout=subprocess.PIPE) as tzspd:
        head = subprocess.Popen(["head", "-c", "100"], stdin=tzspd.proc.stdout, stdout=subprocess.DEVNULL)
        tzspd.proc.stdout.close()

        def sent_and_exited():  # head leaves after 100 bytes; tzspd's next write meets EPIPE
            send(tzspd.port, [encode_frame(frames[0])])
            return tzspd.proc.poll() is not None

        assert wait_for(sent_and_exited, timeout=15, interval=0.05)
        head.wait(10)
        stderr = tzspd.stderr()
    assert tzspd.proc.returncode == 1
    assert "the reader of standard output went away (broken pipe)" in stderr


def test_rotation_by_size_produces_valid_files_with_every_frame(tmp_path, source_capture):
    require_tool("tcpdump")
    _, frames = source_capture
    pattern = tmp_path / "rot" / "tzsp-{index:02d}.pcap"
    pattern.parent.mkdir()
    sent = [f for f in frames if len(f) < 2000] * 4
    with Tzspd(tmp_path, "--allow", "127.0.0.1/32", "-o", str(pattern), "-C", "0.002") as tzspd:
        send(tzspd.port, [encode_frame(f) for f in sent], pause=0.002)
        tzspd.stats(until=lambda s: s["written"] == len(sent))
        status, _ = tzspd.stop()
    assert status == 0
    files = sorted(pattern.parent.iterdir())
    assert len(files) >= 3
    got = []
    for path in files:
        shown = subprocess.run(["tcpdump", "-n", "-r", str(path)], capture_output=True, timeout=20)
        assert shown.returncode == 0, shown.stderr
        count = len(shown.stdout.splitlines())
        linktype, frames_in_file = frames_of(path)
        assert linktype == 1 and count == len(frames_in_file) > 0
        got += frames_in_file
    assert got == sent


def test_exec_restarts_the_consumer_and_counts(tmp_path, source_capture):
    _, frames = source_capture
    runs = tmp_path / "runs"
    runs.mkdir()
    consumer = f"{sys.executable} {STOP_CONSUMER} {runs}"
    stop = [b"STOP" + bytes(60)]
    first, second, third = frames[:2] + stop, frames[2:3] + stop, frames[3:5]
    with Tzspd(tmp_path, "--allow", "127.0.0.1/32", "--exec", consumer, "--exec-backoff", "0.2") as tzspd:
        send(tzspd.port, [encode_frame(f) for f in first])
        assert wait_for(lambda: len(list(runs.glob("run-*"))) == 1)
        send(tzspd.port, [encode_frame(f) for f in second])  # consumer gone: held, then delivered
        assert wait_for(lambda: len(list(runs.glob("run-*"))) == 2)
        send(tzspd.port, [encode_frame(f) for f in third])
        tzspd.stats(until=lambda s: s["written"] == 7)
        status, final = tzspd.stop()
    assert status == 0
    saved = [frames_of(path)[1] for path in sorted(runs.glob("run-*"))]
    assert saved == [first, second, third]  # the third run saved at end of input (SIGTERM)
    assert (final["received"], final["written"], final["consumer_restarts"]) == (7, 7, 2)
    assert (final["buffer_overflow"], final["unsent_at_exit"]) == (0, 0)


def test_exec_buffer_overflow_is_dropped_and_counted(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    consumer = f"{sys.executable} {STOP_CONSUMER} {runs}"
    burst = [b"B" + i.to_bytes(2, "big") + bytes(297) for i in range(10)]  # 316-byte records
    with Tzspd(
        tmp_path, "--allow", "127.0.0.1/32", "--exec", consumer, "--exec-buffer", "1000", "--exec-backoff", "3"
    ) as tzspd:
        send(tzspd.port, [encode_frame(b"STOP" + bytes(60))])
        assert wait_for(lambda: len(list(runs.glob("run-*"))) == 1)
        send(tzspd.port, [encode_frame(f) for f in burst])
        tzspd.stats(until=lambda s: s["received"] == 11 and s["consumer_restarts"] == 1, timeout=20)
        status, final = tzspd.stop()
    assert status == 0
    assert (final["written"], final["buffer_overflow"], final["unsent_at_exit"]) == (4, 7, 0)
    assert frames_of(sorted(runs.glob("run-*"))[1])[1] == burst[:3]


def test_exec_command_that_does_not_exist(tmp_path):
    result = subprocess.run(
        console_script("tzspd")
        + [
            "--listen",
            "127.0.0.1",
            "--port",
            str(free_port()),
            "--allow",
            "127.0.0.1/32",
            "--exec",
            str(tmp_path / "no-such-snort"),
        ],
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert b"no-such-snort" in result.stderr


@pytest.mark.parametrize(
    "options, message",
    [
        (["--exec", "cat", "-o", "x.pcap"], b"--exec and -o are alternatives"),
        (["-C", "10"], b"-C/-G rotate files: give -o FILE"),
        (["--allow", "router1"], b"--allow 'router1'"),
        (["--linktype", "carrier-pigeon"], b"unknown link type"),
        (["--fanout", "2"], b"--fanout N needs --exec"),
        (["--fanout", "65", "--exec", "cat"], b"--fanout above 64"),
    ],
)
def test_usage_errors_exit_2_with_a_reason(options, message):
    result = subprocess.run(console_script("tzspd") + options, capture_output=True, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr


def test_a_port_in_use_is_a_clear_error():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = subprocess.run(
            console_script("tzspd") + ["--listen", "127.0.0.1", "--port", str(port), "-o", os.devnull],
            capture_output=True,
            timeout=30,
        )
    assert result.returncode == 2
    assert f"cannot listen on [127.0.0.1]:{port}".encode() in result.stderr


def test_refuses_to_write_pcap_to_a_terminal():
    import pty

    master, slave = pty.openpty()
    try:
        result = subprocess.run(
            console_script("tzspd") + ["--listen", "127.0.0.1", "--port", str(free_port())],
            stdout=slave,
            stderr=subprocess.PIPE,
            timeout=30,
        )
    finally:
        os.close(slave)
        os.close(master)
    assert result.returncode == 2
    assert b"refusing to write pcap to a terminal" in result.stderr


@pytest.mark.slow
def test_the_demo_runs_and_everything_arrives():
    require_tool("tcpdump")
    result = subprocess.run([sys.executable, "-m", "tzsp.demo"], capture_output=True, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    assert b"HTTP: GET /cgi-bin/view.cgi?file=../../etc/passwd" in result.stdout
    assert b"every frame arrived" in result.stdout
