"""A router's own log, followed over our connection to it: the RouterOS API or SSH.

- API: ``/log/listen`` (one ``!re`` per new entry until ``/cancel``), sent together with
  ``/log/print`` (what the memory holds now) and ``/system/resource/print`` (the uptime, so a
  reader can tell a reboot); entries carry ``.id``, which counts from ``*1`` again after a reboot.
- SSH: ``/log print follow where topics~"TOPIC"`` in one exec channel: the entries in memory,
  then each new one, as ``[date ]hh:mm:ss topics message`` lines; there is no id.

Each stream has its own session (its own TCP connection, with the router's configured
credentials, host key and deadlines), so a long-running listen never holds up blocking. Bounded:
a line or word past ``MAX_LINE`` bytes is dropped, each ``read`` returns at most ``MAX_ENTRIES``
entries, and silence is waited for at most ``wait`` seconds at a time. Which entries are new is
the reader's business (bridge.scan.router_log); a lost connection raises RouterUnreachable.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from dataclasses import dataclass

import paramiko
from librouteros.exceptions import LibRouterosError
from librouteros.protocol import encode_sentence

from responder.config import RouterConfig
from responder.errors import RouterUnreachable
from responder.routeros import commands, replies
from responder.routeros.duration import DurationError, parse_duration
from responder.transport.api import ApiSession
from responder.transport.ssh_session import RouterSession

MAX_LINE = 8192  # bytes: a RouterOS log message is a few hundred
MAX_ENTRIES = 1000  # per read: the caller gets to look at its stop flag in between


@dataclass(frozen=True)
class RouterLogEntry:
    id: str | None  # the API's ``.id`` ("*1A"); None over SSH
    time: str  # as the router shows it
    topics: str  # "firewall,info"
    message: str

    @property
    def line(self) -> str:
        """``topics message``: what RouterOS sends a remote syslog action by default."""
        return f"{self.topics} {self.message}"


class ApiLogStream:
    def __init__(self, cfg: RouterConfig, topic: str = "firewall", *, password: str | None = None) -> None:
        self.name = cfg.name
        self.topic = commands.check_name("topic", topic)
        self._session = ApiSession(cfg, password=password)
        self._timeout = cfg.command_timeout
        self._wire = None

    def open(self) -> tuple[float | None, list[RouterLogEntry]]:
        """Connect and start listening: (the router's uptime, the entries its memory holds now)."""
        self.close()
        sock, transport, protocol = self._session.wire()
        self._wire = (sock, transport, protocol)
        sentences = (
            ("/log/listen", ".tag=listen"),
            ("/log/print", ".tag=print"),
            ("/system/resource/print", ".tag=up"),
        )
        self._guard(lambda: self._write(b"".join(encode_sentence(*s, encoding="utf-8") for s in sentences)))
        backlog: list[RouterLogEntry] = []
        uptime: float | None = None
        done: set[str] = set()
        while done != {"print", "up"}:
            kind, attributes, tag = self._guard(self._sentence)
            if kind == "!trap":
                raise RouterUnreachable(self.name, f"the router refused {tag}: {attributes.get('message', '?')}")
            if kind == "!done" and tag in ("print", "up"):
                done.add(tag)
            elif kind == "!re" and tag in ("print", "listen"):
                entry = self._entry(attributes)
                if entry is not None:
                    backlog.append(entry)  # a listened one may come twice (print and listen): ids tell
            elif kind == "!re" and tag == "up":
                try:
                    uptime = parse_duration(attributes.get("uptime", ""))
                except DurationError:
                    uptime = None
        return uptime, backlog

    def read(self, wait: float) -> list[RouterLogEntry]:
        """New entries; [] when none came within ``wait`` seconds."""
        if self._wire is None:
            raise RouterUnreachable(self.name, "the log stream is not open")
        sock = self._wire[0]
        entries: list[RouterLogEntry] = []
        deadline = time.monotonic() + wait
        while len(entries) < MAX_ENTRIES:
            remaining = deadline - time.monotonic() if not entries else 0.0
            if not _readable(sock, max(0.0, remaining)):
                break
            kind, attributes, tag = self._guard(self._sentence)
            if kind == "!re" and tag == "listen":
                entry = self._entry(attributes)
                if entry is not None:
                    entries.append(entry)
            elif tag == "listen" and kind in ("!trap", "!done"):
                raise RouterUnreachable(self.name, f"the router ended /log/listen: {attributes.get('message', kind)}")
        return entries

    def close(self) -> None:
        self._wire = None
        self._session.close()

    def _entry(self, attributes: dict[str, str]) -> RouterLogEntry | None:
        topics = attributes.get("topics", "")
        message = attributes.get("message", "")
        if self.topic not in topics.split(",") or len(message) > MAX_LINE:
            return None
        return RouterLogEntry(attributes.get(".id"), attributes.get("time", ""), topics, message)

    def _write(self, data: bytes) -> None:
        _, transport, _ = self._wire
        transport.deadline = time.monotonic() + self._timeout
        transport.write(data)

    def _sentence(self) -> tuple[str, dict[str, str], str | None]:
        _, transport, protocol = self._wire
        transport.deadline = time.monotonic() + self._timeout  # a sentence, once begun, must arrive whole
        kind, words = protocol.readSentence()
        attributes: dict[str, str] = {}
        tag = None
        for word in words:
            if word.startswith("="):
                name, _, value = word[1:].partition("=")
                attributes[name] = value[: MAX_LINE + 1]
            elif word.startswith(".tag="):
                tag = word[5:]
        if kind == "!fatal":
            raise RouterUnreachable(self.name, f"the router ended the session: {' '.join(words)}")
        return kind, attributes, tag

    def _guard(self, action):
        try:
            return action()
        except RouterUnreachable:
            self.close()
            raise
        except (TimeoutError, OSError, LibRouterosError, UnicodeError) as exc:
            self.close()
            raise RouterUnreachable(self.name, f"log stream lost ({exc or type(exc).__name__})") from None


class SshLogStream:
    def __init__(self, cfg: RouterConfig, topic: str = "firewall", *, password: str | None = None) -> None:
        self.name = cfg.name
        self.command = f'/log print follow where topics~"{commands.check_name("topic", topic)}"'
        self._session = RouterSession(cfg, password=password)
        self._channel: paramiko.Channel | None = None
        self._pending = b""
        self._skipping = False  # inside a line longer than MAX_LINE

    def open(self) -> tuple[float | None, list[RouterLogEntry]]:
        """Start ``print follow``: the entries in memory come through ``read`` first. No uptime here."""
        self.close()
        self._channel = self._session.open_exec(self.command)
        return None, []

    def read(self, wait: float) -> list[RouterLogEntry]:
        channel = self._channel
        if channel is None:
            raise RouterUnreachable(self.name, "the log stream is not open")
        entries: list[RouterLogEntry] = []
        try:
            ready, _, _ = select.select([channel], [], [], wait)
            while ready and len(entries) < MAX_ENTRIES:
                chunk = channel.recv(65536)
                if not chunk:
                    self.close()
                    raise RouterUnreachable(self.name, "the router closed /log print follow")
                entries.extend(self._lines(chunk))
                ready = channel.recv_ready()
        except (TimeoutError, OSError, EOFError, paramiko.SSHException) as exc:
            self.close()
            raise RouterUnreachable(self.name, f"log stream lost ({exc or type(exc).__name__})") from None
        return entries

    def _lines(self, chunk: bytes) -> list[RouterLogEntry]:
        *complete, self._pending = (self._pending + chunk).split(b"\n")
        if len(self._pending) > MAX_LINE:
            self._pending, self._skipping = b"", True
        entries = []
        for raw in complete:
            if self._skipping:  # the tail of an overlong line
                self._skipping = False
                continue
            if len(raw) > MAX_LINE:
                continue
            parsed = replies.parse_log_line(raw.decode("utf-8", errors="replace").rstrip("\r"))
            if parsed is not None:
                entries.append(RouterLogEntry(None, *parsed))
        return entries

    def close(self) -> None:
        channel, self._channel = self._channel, None
        self._pending, self._skipping = b"", False
        if channel is not None:
            try:
                channel.close()
            except (OSError, EOFError, paramiko.SSHException):
                pass
        self._session.close()


def _readable(sock: socket.socket, wait: float) -> bool:
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True  # decrypted bytes waiting inside TLS: select would not see them
    try:
        readable, _, _ = select.select([sock], [], [], wait)
    except (OSError, ValueError):
        return True  # let the read raise what is wrong
    return bool(readable)


def log_stream(cfg: RouterConfig, topic: str = "firewall", *, password: str | None = None):
    """The log stream for the router's transport."""
    stream = ApiLogStream if cfg.transport == "api" else SshLogStream
    return stream(cfg, topic, password=password)
