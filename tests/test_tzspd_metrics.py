"""tzspd --metrics: the collector over the counters (pure), a real tzspd answering /metrics and
/health over HTTP, and the bounded HTTP server under a hostile client."""

from __future__ import annotations

import socket
import sys
import time
import urllib.error
import urllib.request

import pytest
from conftest import free_port, wait_for
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from test_tzspd import Tzspd, send

from plumbing.httpserver import HttpServer, Response, is_loopback, parse_listen
from tzsp.codec import encode_frame
from tzsp.metrics import DROP_REASONS, TzspdCollector, health_problems
from tzsp.output import Consumer, ExecSink
from tzsp.stats import Counters


def samples(text: str) -> dict:
    """{(name, (label values in label-name order...)): value} from exposition text."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sample.labels.values()))] = sample.value
    return out


def exposition(stats, sink=None) -> dict:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TzspdCollector(stats, sink, started=1.0))
    return samples(generate_latest(registry).decode())


def get(url, headers=None, timeout=10):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read().decode(), dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)
    except (urllib.error.URLError, OSError) as error:  # not listening yet
        return 0, str(error), {}


# -- the collector, over plain counters ----------------------------------------------------------


def test_collector_reads_every_counter_with_the_contract_names():
    stats = Counters(
        received=10,
        written=6,
        not_allowed=1,
        other_linktype=1,
        non_frame=1,
        kernel_drops=3,
        consumer_restarts=2,
        buffer_overflow=4,
    )
    stats.count_malformed("short")
    stats.count_malformed("bad-version")
    got = exposition(stats)
    assert got[("tzspd_datagrams_received_total", ())] == 10
    assert got[("tzspd_frames_written_total", ())] == 6
    assert got[("tzspd_kernel_drops_total", ())] == 3
    assert got[("tzspd_consumer_restarts_total", ())] == 2
    assert got[("tzspd_datagrams_dropped_total", ("short",))] == 1
    assert got[("tzspd_datagrams_dropped_total", ("bad_version",))] == 1
    assert got[("tzspd_datagrams_dropped_total", ("not_allowed",))] == 1
    assert got[("tzspd_datagrams_dropped_total", ("other_linktype",))] == 1
    assert got[("tzspd_datagrams_dropped_total", ("non_frame",))] == 1
    assert got[("tzspd_datagrams_dropped_total", ("consumer_buffer_full",))] == 4
    reasons = {labels[0] for name, labels in got if name == "tzspd_datagrams_dropped_total"}
    assert reasons == set(DROP_REASONS)  # a bounded set, all present from the start


def test_collector_reads_the_counters_at_scrape_time():
    stats = Counters()
    assert exposition(stats)[("tzspd_datagrams_received_total", ())] == 0
    stats.received += 5
    assert exposition(stats)[("tzspd_datagrams_received_total", ())] == 5


def test_each_fanout_consumer_has_its_restarts_and_held_bytes(tmp_path):
    stats = Counters()
    first = Consumer([sys.executable, "-c", "pass"], b"H", stats, 1 << 20)
    second = Consumer([sys.executable, "-c", "pass"], b"H", stats, 1 << 20)
    first.starts, second.starts = 3, 1
    second.pending += b"x" * 100
    got = exposition(stats, ExecSink([first, second], split=lambda records: []))
    assert got[("tzspd_consumer_restarts_by_consumer_total", ("1",))] == 2
    assert got[("tzspd_consumer_restarts_by_consumer_total", ("2",))] == 0
    assert got[("tzspd_consumer_held_bytes", ("2",))] == 100
    assert got[("tzspd_consumer_running", ("1",))] == 0
    problems = health_problems(stats, ExecSink([first, second], split=lambda records: []))
    assert problems == [
        "consumer 1 is not running (0 bytes held for it)",
        "consumer 2 is not running (100 bytes held for it)",
    ]


def test_listen_addresses():
    assert parse_listen("127.0.0.1:9471", 1) == ("127.0.0.1", 9471)
    assert parse_listen("[::1]:9471", 1) == ("::1", 9471)
    assert parse_listen(":9471", 1) == ("127.0.0.1", 9471)
    assert parse_listen("localhost", 9471) == ("localhost", 9471)
    with pytest.raises(ValueError):
        parse_listen("127.0.0.1:http", 1)
    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1") and not is_loopback("example.net")


# -- a real tzspd --------------------------------------------------------------------------------


def test_tzspd_serves_metrics_and_health(tmp_path):
    port = free_port(socket.SOCK_STREAM)
    frame = bytes(range(60))
    with Tzspd(
        tmp_path, "--allow", "127.0.0.1/32", "--metrics", f"127.0.0.1:{port}", "-o", str(tmp_path / "out.pcap")
    ) as tzspd:
        send(tzspd.port, [encode_frame(frame)] * 5 + [b"\x01"])  # five frames, one too short to be TZSP
        send(tzspd.port, [encode_frame(frame)], source="127.0.0.2")  # outside --allow
        url = f"http://127.0.0.1:{port}"

        def scraped():
            status, text, _ = get(url + "/metrics")
            return samples(text) if status == 200 else {}

        assert wait_for(lambda: scraped().get(("tzspd_datagrams_received_total", ())) == 7, timeout=15)
        got = scraped()
        assert got[("tzspd_frames_written_total", ())] == 5
        assert got[("tzspd_datagrams_dropped_total", ("short",))] == 1
        assert got[("tzspd_datagrams_dropped_total", ("not_allowed",))] == 1
        assert got[("tzspd_kernel_drops_total", ())] == 0
        assert get(url + "/health")[:2] == (200, "ok\n")
        assert get(url + "/nothing")[0] == 404
        status, _ = tzspd.stop()
    assert status == 0
    assert "metrics on http://127.0.0.1" in tzspd.stderr()


def test_tzspd_health_says_when_its_consumer_is_down(tmp_path):
    port = free_port(socket.SOCK_STREAM)
    consumer = f"{sys.executable} -c 'import sys; sys.exit(3)'"
    with Tzspd(tmp_path, "--exec", consumer, "--exec-backoff", "30", "--metrics", f"127.0.0.1:{port}") as tzspd:
        url = f"http://127.0.0.1:{port}"
        send(tzspd.port, [encode_frame(bytes(60))])
        assert wait_for(lambda: get(url + "/health")[0] == 503, timeout=15)
        status, body, headers = get(url + "/health")
        assert "consumer 1 is not running" in body and headers["Content-Type"] == "application/json"
        tzspd.stop()


def test_metrics_address_is_checked_at_start(tmp_path):
    with pytest.raises(AssertionError, match="HOST:PORT"):
        Tzspd(tmp_path, "--metrics", "127.0.0.1:notaport")


# -- the server, bounded -------------------------------------------------------------------------


def test_silent_clients_cannot_hold_the_server(tmp_path):
    """Clients that connect and say nothing take no handler: the server answers others at once,
    and closes the silent ones when their header deadline has passed."""
    server = HttpServer(
        "127.0.0.1", 0, {"/": lambda request: Response(200, b"hello\n")}, max_clients=2, timeout=1.0
    ).start()
    host, port = server.address
    silent = [socket.create_connection((host, port)) for _ in range(20)]
    try:
        assert _status(host, port) == 200
        assert server.turned_away == 0
        silent[0].settimeout(10)
        assert silent[0].recv(10) == b""  # closed by the server: the head did not come in time
        assert wait_for(lambda: server.open_connections == 0, timeout=10)
    finally:
        for connection in silent:
            connection.close()
        server.stop()


def test_oversized_request_line_is_refused():
    server = HttpServer("127.0.0.1", 0, {"/": lambda request: Response(200, b"hello\n")}).start()
    try:
        with socket.create_connection(server.address, timeout=5) as client:
            client.sendall(b"GET /" + b"a" * 70_000 + b" HTTP/1.0\r\n\r\n")
            answer = client.recv(100)
        assert answer.startswith(b"HTTP/1.0 414") or answer.startswith(b"HTTP/1.1 414")
    finally:
        server.stop()


def _status(host, port) -> int:
    try:
        with socket.create_connection((host, port), timeout=3) as client:
            client.sendall(b"GET / HTTP/1.0\r\n\r\n")
            head = client.recv(64)
    except OSError:
        return 0
    return int(head.split()[1]) if head.startswith(b"HTTP/") else 0


def test_a_trickling_client_is_cut_off():
    """One byte every half second never trips the socket timeout; the exchange's deadline does."""
    server = HttpServer(
        "127.0.0.1", 0, {"/": lambda request: Response(200, b"hello\n")}, max_clients=1, timeout=1.0
    ).start()
    try:
        with socket.create_connection(server.address, timeout=10) as client:
            started = time.monotonic()
            try:
                for byte in b"GET / HTTP/1.0\r\nX-Slow: " + b"a" * 100:
                    client.sendall(bytes([byte]))
                    time.sleep(0.5)
            except OSError:  # reset by the server
                pass
            cut_after = time.monotonic() - started
        assert cut_after < 10, cut_after  # the deadline is 3 s; 100 bytes would take 50 s
        assert wait_for(lambda: _status(*server.address) == 200, timeout=10)
    finally:
        server.stop()
