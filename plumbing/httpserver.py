"""A small HTTP server for /metrics, /health and the status page, bounded in threads, time and size,
that hostile clients cannot take from the monitoring.

It runs beside the work (tzspd's receive loop, the bridge's alert path), never in it. One thread
(a ``selectors`` loop) accepts, reads every request head and writes every answer without blocking,
so a client that is slow, silent or trickling costs a buffer, never a thread. Only a complete head
goes to a route, on a few handler threads: ``max_clients`` for any path, plus one kept for
``/health`` and ``/metrics`` alone, so a storm of status-page requests never delays the health
check. Per client: the whole head within ``timeout`` (the header deadline), at most 32 KiB of it
(414 / 431 beyond, ``plumbing.httpwire``), the answer written within ``timeout``; one request per
connection. At most ``max_connections`` are open: a new one pushes out the oldest that is still
sending its head (a slow client loses its place, a new client never does); requests waiting for a
handler are bounded too (beyond, 503 at once). Memory is bounded by those numbers.

Routes are plain functions ``(Request) -> Response``; the server knows nothing of metrics.
"""

from __future__ import annotations

import collections
import ipaddress
import logging
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from plumbing.httpwire import Head, HeadError, error_page, head_end, parse_head, render

log = logging.getLogger("tzsp.http")

DEFAULT_MAX_CLIENTS = 4  # handler threads for any path (one more serves /health and /metrics only)
DEFAULT_TIMEOUT = 5.0  # seconds a client may take to send its request head, and again to read the answer
DEFAULT_MAX_CONNECTIONS = 512  # open at once; 512 heads of 32 KiB at most: 16 MiB (and fds: LimitNOFILE)
PRIORITY_PATHS = ("/health", "/metrics")
MAX_WAITING = 64  # complete requests waiting for a handler, per lane
LINGER = 1.0  # seconds to read and drop what a client still sends after its answer (no RST over the answer)
BUSY = render(503, b"busy\n", headers=(("Retry-After", "1"),))


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    peer: tuple[str, int]


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = field(default_factory=tuple)


Route = Callable[[Request], Response]


def parse_listen(text: str, default_port: int) -> tuple[str, int]:
    """``HOST:PORT``, ``[v6]:PORT`` or ``:PORT`` (loopback) -> (host, port); ValueError otherwise."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = text.rpartition(":")
        if not _:
            host, port_text = text, ""
    host = host or "127.0.0.1"
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise ValueError(f"{text!r}: expected HOST:PORT such as 127.0.0.1:9471") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"{text!r}: {port} is not a TCP port")
    return host, port


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and "localhost"; a name that is not an address is not loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_LISTEN, _WAKE = object(), object()


class _Conn:
    """One client connection, touched by the loop thread only (handlers get its ``peer``)."""

    __slots__ = ("sock", "peer", "buffer", "state", "deadline", "out", "drained")

    def __init__(self, sock: socket.socket, peer: tuple, deadline: float):
        self.sock = sock
        self.peer = peer
        self.buffer = bytearray()
        self.state = "head"  # head -> work -> write -> linger
        self.deadline: float | None = deadline
        self.out = memoryview(b"")
        self.drained = 0


class HttpServer:
    """Serves ``routes``; bound at construction (OSError if it cannot), ``start`` runs it, ``stop`` closes."""

    def __init__(
        self,
        host: str,
        port: int,
        routes: dict[str, Route],
        *,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        priority_paths: tuple[str, ...] = PRIORITY_PATHS,
    ):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, port))
            listener.listen(1024)  # a burst waits here rather than in SYN retries (1 s each)
            listener.setblocking(False)
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        self.routes = dict(routes)
        self.timeout = timeout
        self.max_connections = max(2, max_connections)
        self.priority_paths = frozenset(priority_paths)
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._conns: dict[int, _Conn] = {}  # by file descriptor, oldest first
        self._lanes = (queue.Queue(MAX_WAITING), queue.Queue(MAX_WAITING))  # any path, priority paths
        self._done: collections.deque[tuple[_Conn, bytes]] = collections.deque()
        self._handlers = [(0, f"http-{i + 1}") for i in range(max(1, max_clients))] + [(1, "http-health")]
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._next_sweep = 0.0
        self.busy = 0  # requests answered 503 at once: every handler taken and its lane full
        self.cut = 0  # connections closed for a missed deadline, or pushed out by newer ones

    @property
    def address(self) -> tuple[str, int]:
        return self._listener.getsockname()[:2]

    @property
    def turned_away(self) -> int:
        return self.busy

    @property
    def open_connections(self) -> int:
        return len(self._conns)

    def start(self) -> HttpServer:
        self._selector.register(self._listener, selectors.EVENT_READ, _LISTEN)
        self._selector.register(self._wake_r, selectors.EVENT_READ, _WAKE)
        self._threads = [threading.Thread(target=self._loop, name="http", daemon=True)]
        for lane, name in self._handlers:
            self._threads.append(threading.Thread(target=self._handle, args=(lane,), name=name, daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._wake()
        for lane, _ in self._handlers:
            try:
                self._lanes[lane].put(None, timeout=1.0)
            except queue.Full:
                pass  # a handler stuck in a route; it is a daemon thread
        for thread in self._threads:
            thread.join(timeout=5)
        for conn in list(self._conns.values()):
            self._close(conn)
        self._selector.close()
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- the loop thread ------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                events = self._selector.select(timeout=0.25)
            except OSError:
                break
            for key, mask in events:
                if key.data is _LISTEN:
                    self._accept()
                elif key.data is _WAKE:
                    try:
                        while self._wake_r.recv(4096):
                            pass
                    except BlockingIOError:
                        pass
                else:
                    conn = key.data
                    if mask & selectors.EVENT_WRITE:
                        self._send(conn)
                    elif mask & selectors.EVENT_READ:
                        self._receive(conn)
            while self._done:
                conn, data = self._done.popleft()
                self._answer(conn, data)
            now = time.monotonic()
            if now >= self._next_sweep:
                self._sweep(now)
                self._next_sweep = now + 0.1

    def _accept(self) -> None:
        for _ in range(256):  # at most this many per wake-up: reads and writes get their turn
            try:
                sock, peer = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: the backlog waits
                log.warning("http: cannot accept: %s", exc)
                return
            if len(self._conns) >= self.max_connections and not self._push_out_oldest():
                self.busy += 1
                _send_once(sock, BUSY)
                sock.close()
                continue
            sock.setblocking(False)
            conn = _Conn(sock, peer[:2], time.monotonic() + self.timeout)
            self._conns[sock.fileno()] = conn
            self._selector.register(sock, selectors.EVENT_READ, conn)

    def _push_out_oldest(self) -> bool:
        """Close the oldest connection still sending its head (or lingering); False if none is."""
        for conn in self._conns.values():
            if conn.state in ("head", "linger"):
                if conn.state == "head":
                    self.cut += 1
                self._close(conn)
                return True
        return False

    def _receive(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(16384)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return
        if conn.state == "linger":
            conn.drained += len(data)
            if conn.drained > 1 << 20:
                self._close(conn)
            return
        if conn.state != "head":
            return
        conn.buffer += data
        try:
            end = head_end(conn.buffer)
            if end < 0:
                return
            head = parse_head(bytes(conn.buffer[:end]))
        except HeadError as exc:
            self._answer(conn, error_page(exc.status, str(exc)))
            return
        conn.buffer = bytearray()
        conn.state, conn.deadline = "work", None  # a route's time is the handler's, not the client's
        self._selector.unregister(conn.sock)  # until the answer is ready (a client that left is found then)
        lane = 1 if head.path in self.priority_paths else 0
        try:
            self._lanes[lane].put_nowait((conn, head))
        except queue.Full:
            self.busy += 1
            self._answer(conn, BUSY)

    def _answer(self, conn: _Conn, data: bytes) -> None:
        if conn.sock.fileno() < 0:
            return  # closed meanwhile (the client left while its route ran)
        conn.state, conn.out = "write", memoryview(data)
        conn.deadline = time.monotonic() + self.timeout
        self._send(conn)
        if conn.state == "write" and conn.sock.fileno() >= 0:
            self._watch(conn, selectors.EVENT_WRITE)

    def _send(self, conn: _Conn) -> None:
        try:
            while conn.out:
                conn.out = conn.out[conn.sock.send(conn.out) :]
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        # All written: say so, then read and drop what the client may still send, briefly, so the
        # kernel does not answer it with a reset that could destroy the answer in flight.
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.state, conn.deadline = "linger", time.monotonic() + min(LINGER, self.timeout)
        self._watch(conn, selectors.EVENT_READ)

    def _watch(self, conn: _Conn, events: int) -> None:
        try:
            self._selector.modify(conn.sock, events, conn)
        except KeyError:  # not registered while its route ran
            self._selector.register(conn.sock, events, conn)

    def _sweep(self, now: float) -> None:
        for conn in [c for c in self._conns.values() if c.deadline is not None and c.deadline <= now]:
            if conn.state in ("head", "write"):
                self.cut += 1
            self._close(conn)

    def _close(self, conn: _Conn) -> None:
        fd = conn.sock.fileno()
        if fd < 0:
            return
        self._conns.pop(fd, None)
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass  # already awake (the pipe is full), or stopping

    # -- the handler threads --------------------------------------------------------------

    def _handle(self, lane: int) -> None:
        waiting = self._lanes[lane]
        while True:
            item = waiting.get()
            if item is None:
                return
            conn, head = item
            self._done.append((conn, self._respond(head, conn.peer)))
            self._wake()

    def _respond(self, head: Head, peer: tuple) -> bytes:
        route = self.routes.get(head.path)
        if route is None:
            return render(404, b"not found\n", head_only=head.method == "HEAD")
        request = Request(head.method, head.path, head.query, head.headers, peer)
        try:
            response = route(request)
            data = render(
                response.status,
                response.body,
                content_type=response.content_type,
                headers=response.headers,
                head_only=head.method == "HEAD",
            )
        except Exception:  # noqa: BLE001 -- a failing page must not take the server down
            log.exception("serving %s failed", head.path)
            return render(500, b"internal error\n")
        log.debug("http %s: %s %s %d", peer[0], head.method, head.path, response.status)
        return data


def _send_once(sock: socket.socket, data: bytes) -> None:
    try:
        sock.setblocking(False)
        sock.send(data)
    except OSError:
        pass
