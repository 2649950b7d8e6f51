"""The HTTP server under hostile clients: slow heads, floods, huge headers, clients that vanish.

Behaviour, not timing (speed is bench/bench_http_hostile.py's): what is answered, what is
refused and with which status, what is closed, and that /health keeps its own handler. The wire
format (plumbing.httpwire) is tested as pure functions first.
"""

from __future__ import annotations

import socket
import threading

import pytest
from conftest import wait_for

from plumbing.httpserver import HttpServer, Response
from plumbing.httpwire import MAX_HEAD, HeadError, head_end, parse_head, render

# -- the wire, pure -------------------------------------------------------------------------------


def test_a_head_is_complete_only_at_its_blank_line():
    assert head_end(b"GET / HTTP/1.0\r\nHost: x\r\n") == -1
    data = b"GET / HTTP/1.0\r\nHost: x\r\n\r\nbody"
    assert head_end(data) == len(data) - 4
    assert head_end(b"GET / HTTP/1.0\n\n") > 0  # bare newlines too


def test_heads_beyond_the_bounds_are_refused_with_their_status():
    with pytest.raises(HeadError) as long_line:
        head_end(b"GET /" + b"a" * 9000)
    assert long_line.value.status == 414
    with pytest.raises(HeadError) as large:
        head_end(b"GET / HTTP/1.0\r\n" + b"X-A: b\r\n" * (MAX_HEAD // 8 + 1))
    assert large.value.status == 431
    with pytest.raises(HeadError) as many:
        parse_head(b"GET / HTTP/1.0\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n")
    assert many.value.status == 431


def test_parse_head():
    head = parse_head(b"GET /health?token=abc&x=1 HTTP/1.1\r\nAuthorization: Bearer t\r\nX-Y:  z \r\n\r\n")
    assert (head.method, head.path, head.query) == ("GET", "/health", {"token": "abc", "x": "1"})
    assert head.headers == {"authorization": "Bearer t", "x-y": "z"}
    for data, status in (
        (b"POST / HTTP/1.0\r\n\r\n", 405),
        (b"garbage\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\n\r\n", 505),
        (b"GET / HTTP/1.0\r\nno colon\r\n\r\n", 400),
        (b"GET /?" + b"&".join(b"k%d=1" % i for i in range(20)) + b" HTTP/1.0\r\n\r\n", 400),
    ):
        with pytest.raises(HeadError) as refused:
            parse_head(data)
        assert refused.value.status == status, data


def test_render():
    data = render(200, b"ok\n", headers=(("X-A", "1"),))
    assert data.startswith(b"HTTP/1.0 200 OK\r\n") and data.endswith(b"\r\n\r\nok\n")
    assert b"Content-Length: 3\r\n" in data and b"Connection: close\r\n" in data and b"X-A: 1\r\n" in data
    assert render(200, b"ok\n", head_only=True).endswith(b"\r\n\r\n")
    with pytest.raises(ValueError):
        render(200, b"", headers=(("X-A", "1\r\nSet-Cookie: x"),))


# -- the server, real sockets on loopback ------------------------------------------------------------


def exchange(address, data: bytes, timeout: float = 10.0, half_close: bool = False) -> bytes:
    with socket.create_connection(address, timeout=timeout) as client:
        client.sendall(data)
        if half_close:
            client.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    return answer


def status_of(answer: bytes) -> int:
    return int(answer.split()[1]) if answer.startswith(b"HTTP/") else 0


@pytest.fixture
def slow_page():
    """A server whose "/" waits until the test lets it go (a slow status page), with one handler."""
    release = threading.Event()
    entered = threading.Semaphore(0)

    def page(request):
        entered.release()
        release.wait(30)
        return Response(200, b"page\n")

    server = HttpServer(
        "127.0.0.1",
        0,
        {"/": page, "/health": lambda request: Response(200, b"ok\n"), "/metrics": lambda r: Response(200, b"m 1\n")},
        max_clients=1,
        timeout=5.0,
        max_connections=300,
    ).start()
    yield server, release, entered
    release.set()
    server.stop()


def test_health_keeps_its_handler_while_every_other_one_is_taken(slow_page):
    server, release, entered = slow_page
    waiting = []
    for _ in range(3):  # one runs, the others wait in their lane
        client = socket.create_connection(server.address, timeout=30)
        client.sendall(b"GET / HTTP/1.0\r\n\r\n")
        waiting.append(client)
    assert entered.acquire(timeout=10)
    assert status_of(exchange(server.address, b"GET /health HTTP/1.0\r\n\r\n")) == 200
    assert exchange(server.address, b"GET /metrics HTTP/1.0\r\n\r\n").endswith(b"m 1\n")
    release.set()
    for client in waiting:
        with client:
            answer = b""
            while chunk := client.recv(65536):
                answer += chunk
            assert status_of(answer) == 200 and answer.endswith(b"page\n")


def test_a_full_lane_is_told_busy_at_once_and_health_is_not(slow_page):
    server, release, entered = slow_page
    clients = []
    try:
        for _ in range(70):  # 1 running + 64 waiting fill the lane; the rest are told 503
            client = socket.create_connection(server.address, timeout=30)
            client.sendall(b"GET / HTTP/1.0\r\n\r\n")
            clients.append(client)
        assert wait_for(lambda: server.turned_away >= 5, timeout=10), server.turned_away
        assert status_of(exchange(server.address, b"GET /health HTTP/1.0\r\n\r\n")) == 200
    finally:
        release.set()
        for client in clients:
            client.close()


def test_slow_clients_beyond_the_limit_push_out_the_oldest_never_a_new_one():
    server = HttpServer(
        "127.0.0.1", 0, {"/health": lambda request: Response(200, b"ok\n")}, timeout=30.0, max_connections=50
    ).start()
    slow = []
    try:
        for _ in range(120):  # half a request each, then nothing: a slowloris
            client = socket.create_connection(server.address, timeout=10)
            client.sendall(b"GET /health HTTP/1.0\r\nX-Slow: ")
            slow.append(client)
        assert wait_for(lambda: server.cut >= 70, timeout=10), server.cut
        assert server.open_connections <= 50
        assert slow[0].recv(10) == b""  # the oldest went first
        for _ in range(5):
            assert exchange(server.address, b"GET /health HTTP/1.0\r\n\r\n").endswith(b"ok\n")
        assert server.turned_away == 0
    finally:
        for client in slow:
            client.close()
        server.stop()


def test_huge_headers_are_refused_and_the_server_stays_up():
    server = HttpServer("127.0.0.1", 0, {"/health": lambda request: Response(200, b"ok\n")}).start()
    try:
        with socket.create_connection(server.address, timeout=10) as client:
            client.sendall(b"GET /health HTTP/1.0\r\n")
            try:
                for _ in range(8 * 16):  # 8 MiB of one header, as far as the server reads it
                    client.sendall(b"X-Big: " + b"a" * 65536)
            except OSError:
                pass  # it stopped reading: what we sent beyond its bound was refused
            answer = client.recv(100)
        assert status_of(answer) == 431
        assert exchange(server.address, b"GET /health HTTP/1.0\r\n\r\n").endswith(b"ok\n")
    finally:
        server.stop()


def test_a_client_that_half_closes_still_gets_its_answer_and_head_gets_no_body():
    server = HttpServer("127.0.0.1", 0, {"/health": lambda request: Response(200, b"ok\n")}).start()
    try:
        assert exchange(server.address, b"GET /health HTTP/1.0\r\n\r\n", half_close=True).endswith(b"\r\n\r\nok\n")
        head = exchange(server.address, b"HEAD /health HTTP/1.0\r\n\r\n")
        assert status_of(head) == 200 and head.endswith(b"\r\n\r\n") and b"Content-Length: 3" in head
        assert status_of(exchange(server.address, b"GET /nowhere HTTP/1.0\r\n\r\n")) == 404
        assert status_of(exchange(server.address, b"DELETE /health HTTP/1.0\r\n\r\n")) == 405
    finally:
        server.stop()


def test_a_client_that_leaves_while_its_page_is_made_costs_nothing_after(slow_page):
    server, release, entered = slow_page
    client = socket.create_connection(server.address, timeout=10)
    client.sendall(b"GET / HTTP/1.0\r\n\r\n")
    assert entered.acquire(timeout=10)
    client.close()
    release.set()
    assert wait_for(lambda: server.open_connections == 0, timeout=10), server.open_connections
    assert exchange(server.address, b"GET / HTTP/1.0\r\n\r\n").endswith(b"page\n")
