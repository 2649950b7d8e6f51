"""HTTP/1.0 as bytes: the request head in, the response out. Pure: no sockets, no clock.

Only what /metrics, /health and a status page need: GET and HEAD, one request per connection,
no bodies. The head is bounded (request line, header count, total size); what exceeds a bound is
answered with the status that says which (414, 431) rather than read on.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qs, unquote, urlsplit

MAX_REQUEST_LINE = 8 * 1024
MAX_HEAD = 32 * 1024  # request line and headers together
MAX_HEADERS = 100
MAX_QUERY_FIELDS = 8
METHODS = ("GET", "HEAD")


class HeadError(ValueError):
    """The head cannot be served: ``status`` says why (400, 405, 414, 431, 505)."""

    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status = status


@dataclass(frozen=True)
class Head:
    method: str
    target: str  # as sent: path and query
    path: str  # the path, percent-decoded
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value


def head_end(buffer: bytes | bytearray) -> int:
    """Where the head ends (after its blank line) in ``buffer``, or -1 while it is incomplete.
    HeadError once the buffer holds more than a head may, or a request line longer than allowed."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        bare = buffer.find(b"\n\n")  # a client that sends bare newlines
        end = bare - 2 if bare >= 0 else -1
    if end >= 0 and end + 4 <= MAX_HEAD:
        first_line = buffer.find(b"\n")
        if first_line > MAX_REQUEST_LINE:
            raise HeadError(414, "request line too long")
        return end + 4
    first_line = buffer.find(b"\n")
    if first_line > MAX_REQUEST_LINE or (first_line < 0 and len(buffer) > MAX_REQUEST_LINE):
        raise HeadError(414, "request line too long")
    if len(buffer) > MAX_HEAD or end >= 0:
        raise HeadError(431, "request header fields too large")
    return -1


def parse_head(data: bytes) -> Head:
    """The head (up to its blank line) as a Head; HeadError for anything we do not serve."""
    try:
        text = data.decode("iso-8859-1")
    except UnicodeDecodeError:  # iso-8859-1 decodes every byte; kept for clarity
        raise HeadError(400, "undecodable head") from None
    lines = text.replace("\r\n", "\n").split("\n")
    words = lines[0].split()
    if len(words) == 2:  # HTTP/0.9 style "GET /"
        words.append("HTTP/0.9")
    if len(words) != 3:
        raise HeadError(400, "bad request line")
    method, target, version = words
    if not version.startswith("HTTP/"):
        raise HeadError(400, "bad request line")
    if version not in ("HTTP/0.9", "HTTP/1.0", "HTTP/1.1"):
        raise HeadError(505, "HTTP version not supported")
    if method not in METHODS:
        raise HeadError(405, f"method {method[:16]} not allowed")
    headers: dict[str, str] = {}
    count = 0
    for line in lines[1:]:
        if not line:
            continue
        count += 1
        if count > MAX_HEADERS:
            raise HeadError(431, "too many header fields")
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise HeadError(400, "bad header line")
        headers[name.lower()] = value.strip()
    split = urlsplit(target)
    try:
        query = {k: v[0] for k, v in parse_qs(split.query, max_num_fields=MAX_QUERY_FIELDS).items()}
    except ValueError:
        raise HeadError(400, "too many query fields") from None
    return Head(method, target, unquote(split.path), query, headers)


def render(
    status: int,
    body: bytes,
    *,
    content_type: str = "text/plain; charset=utf-8",
    headers: tuple[tuple[str, str], ...] = (),
    head_only: bool = False,
    server: str = "tzsp-ips",
) -> bytes:
    """A whole HTTP/1.0 response; the connection closes after it."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Status"
    lines = [
        f"HTTP/1.0 {status} {reason}",
        f"Server: {server}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-store",
        "Connection: close",
    ]
    for name, value in headers:
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
            raise ValueError(f"header {name!r} has a line break")  # a route bug must not split the response
        lines.append(f"{name}: {value}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("iso-8859-1")
    return head if head_only else head + body


def error_page(status: int, text: str) -> bytes:
    return render(status, f"{text}\n".encode())
