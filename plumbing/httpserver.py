"""A small HTTP server for /metrics, /health and the status page, bounded in threads, time and size.

It runs beside the work (tzspd's receive loop, the bridge's alert path), never in it: requests are
served on their own threads, at most ``max_clients`` at once; one more is answered 503 at once
and closed. Every connection has a socket timeout, and the whole exchange three times that, so a
slow, silent or trickling client holds a thread for at most that long; request lines and headers are capped by the standard library (64 KiB, 100
headers) and request bodies are never read (only GET and HEAD are served).

Routes are plain functions ``(Request) -> Response``; the server knows nothing of metrics.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("tzsp.http")

DEFAULT_MAX_CLIENTS = 4
DEFAULT_TIMEOUT = 5.0  # seconds a client may take to send its request or read the answer


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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 16

    def __init__(self, address, handler, routes: dict[str, Route], max_clients: int, timeout: float):
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        self.routes = routes
        self.slots = threading.BoundedSemaphore(max_clients)
        self.client_timeout = timeout
        self.busy = 0  # connections turned away because every slot was taken
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        # One thread per connection, but never more than max_clients: a storm is refused, not queued.
        if not self.slots.acquire(blocking=False):
            self.busy += 1
            try:
                request.settimeout(0.5)
                request.sendall(
                    b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 5\r\n"
                    b"Retry-After: 1\r\nConnection: close\r\n\r\nbusy\n"
                )
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address):
        # The socket timeout bounds each wait; this bounds the whole exchange, so a client that
        # trickles a byte now and then cannot keep its slot either.
        deadline = threading.Timer(self.client_timeout * 3, _cut, args=(request,))
        deadline.daemon = True
        deadline.start()
        try:
            super().process_request_thread(request, client_address)
        finally:
            deadline.cancel()
            self.slots.release()


def _cut(connection) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: no idle keep-alive holding a slot
    server_version = "tzsp-ips"
    sys_version = ""

    def setup(self) -> None:
        self.timeout = self.server.client_timeout  # StreamRequestHandler applies it to the socket
        super().setup()

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def _serve(self, head: bool) -> None:
        split = urlsplit(self.path)
        route = self.server.routes.get(split.path)
        if route is None:
            response = Response(404, b"not found\n")
        else:
            query = {k: v[0] for k, v in parse_qs(split.query, max_num_fields=8).items()}
            headers = {k.lower(): v for k, v in self.headers.items()}
            request = Request(self.command, split.path, query, headers, self.client_address[:2])
            try:
                response = route(request)
            except Exception:  # noqa: BLE001 -- a failing page must not take the server down
                log.exception("serving %s failed", split.path)
                response = Response(500, b"internal error\n")
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 -- the standard library's name
        log.debug("http %s: " + format, self.client_address[0], *args)


class HttpServer:
    """Serves ``routes`` on its own threads; ``start`` binds (OSError if it cannot), ``stop`` closes."""

    def __init__(
        self,
        host: str,
        port: int,
        routes: dict[str, Route],
        *,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        timeout: float = DEFAULT_TIMEOUT,
    ):
        self._server = _Server((host, port), _Handler, dict(routes), max_clients, timeout)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self._server.server_address[:2]

    @property
    def turned_away(self) -> int:
        return self._server.busy

    def start(self) -> HttpServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.5}, name="http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
