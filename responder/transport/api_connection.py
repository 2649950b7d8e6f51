"""A connection to one router's RouterOS API (8728, or api-ssl on 8729): login, pipelined commands, traps.

librouteros supplies the framing (word and sentence encoding over a socket) and the legacy login
hash. Its ``Api.__call__`` reads replies strictly in order, one command at a time, so commands
here go through its protocol layer with a ``.tag`` each instead: ``exchange`` writes a window of
commands in one TCP write and matches the replies by tag. Values are kept as text (librouteros's
own reader would turn a comment "123" into an int).

An error is a ``!trap`` with a message, which becomes the same RouterCommandError kinds as over
SSH. Connect and every command run under deadlines (``connect_timeout``, ``command_timeout``); a
timeout drops the connection and the worker reconnects with backoff. ``api.ApiSession`` builds
the responder's commands on this.
"""

from __future__ import annotations

import ipaddress
import logging
import select
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from librouteros.api import Api
from librouteros.connections import SocketTransport
from librouteros.exceptions import ConnectionClosed, FatalError, LibRouterosError, MultiTrapError, TrapError
from librouteros.login import encode_password
from librouteros.protocol import ApiProtocol, encode_sentence

from responder.config import RouterConfig
from responder.errors import (
    AuthenticationFailed,
    CommandTimeout,
    RouterCommandError,
    RouterUnreachable,
    SecretRefused,
)
from responder.routeros import replies
from responder.transport import secrets, tls

log = logging.getLogger("responder.transport.api")  # the logger's name from before this module was split off

API_PORT, API_SSL_PORT = 8728, 8729
WINDOW = 64  # commands in flight at once: enough to fill a round trip, small enough for any socket buffer
_PERMISSION_FIX = "the user needs a group with api,read,write (see `snort-bridge provision`)"


@dataclass
class ApiReply:
    """Everything the router said to one command: ``!re`` rows, the ``!trap`` (if any), ``!done``'s words."""

    rows: list[dict[str, str]] = field(default_factory=list)
    trap: dict[str, str] | None = None
    done: dict[str, str] = field(default_factory=dict)


class _DeadlineTransport(SocketTransport):
    """librouteros's socket transport, with one deadline for a whole read (not per recv call)."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self.deadline = float("inf")

    def _arm(self) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("deadline passed")
        self.sock.settimeout(remaining)

    def write(self, data: bytes) -> None:
        self._arm()
        self.sock.sendall(data)

    def read(self, length: int) -> bytes:
        data = bytearray()
        while len(data) < length:
            self._arm()
            got = self.sock.recv(length - len(data))
            if not got:
                raise ConnectionClosed("the router closed the connection")
            data += got
        return bytes(data)


def _reply_parts(kind: str, words: Sequence[str]) -> tuple[dict[str, str], str | None]:
    """(attributes, tag) of a reply sentence's words, values as text."""
    attributes: dict[str, str] = {}
    tag = None
    for word in words:
        if word.startswith("="):
            name, _, value = word[1:].partition("=")
            attributes[name] = value
        elif word.startswith(".tag="):
            tag = word[5:]
    return attributes, tag


def _kind_of(message: str) -> str:
    """The RouterCommandError kind of a ``!trap`` message (the CLI's texts, plus the API's own)."""
    reply = replies.classify(message)
    if not reply.ok:
        return reply.kind
    if message.startswith("no such command"):
        return "bad-command"  # "no such command" / "no such command prefix": unknown menu or verb
    if message.startswith("unknown parameter"):
        return "expected-end"
    return "other"


def _is_readable(sock: socket.socket) -> bool:
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class ApiConnection:
    """One API connection to one router: connect and log in, raw commands (``exchange``, ``run``)."""

    def __init__(self, cfg: RouterConfig, *, password: str | None = None) -> None:
        self.cfg = cfg
        self._password = password
        self._lock = threading.RLock()
        self._sock: socket.socket | None = None
        self._transport: _DeadlineTransport | None = None
        self._api: Api | None = None
        self._warned_plain = False

    # -- connection -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def connected(self) -> bool:
        """False once the router has closed the connection (a reboot, ``!fatal``), seen without a command."""
        if self._api is None:
            return False
        if not self._lock.acquire(blocking=False):
            return True  # a command is under way on another thread; it will tell
        try:
            # Between commands the router has nothing to say: anything readable is EOF or !fatal.
            return self._sock is not None and not _is_readable(self._sock)
        finally:
            self._lock.release()

    def connect(self) -> None:
        """(Re)connect and log in: RouterUnreachable, HostKeyRefused, AuthenticationFailed or SecretRefused."""
        with self._lock:
            self.close()
            password = self._password if self._password is not None else secrets.read_password(self.cfg)
            if password is None:
                raise SecretRefused(
                    self.name,
                    "the RouterOS API logs in with a password: set password_file or "
                    'password_env (key_file is for transport = "ssh")',
                )
            deadline = time.monotonic() + self.cfg.connect_timeout
            where = f"{self.cfg.host}:{self.cfg.port}"
            try:
                sock = socket.create_connection(
                    (self.cfg.host, self.cfg.port), timeout=max(0.01, deadline - time.monotonic())
                )
            except OSError as exc:
                raise RouterUnreachable(self.name, f"cannot connect to {where}: {exc.strerror or exc}") from None
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small request/reply sentences
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                if self.cfg.tls:
                    sock = tls.secure(sock, self.cfg, deadline)
                elif not self._warned_plain and not ipaddress.ip_address(sock.getpeername()[0]).is_loopback:
                    log.warning(
                        "router %s: the plain API sends the password unencrypted; consider tls = true", self.name
                    )
                    self._warned_plain = True
                transport = _DeadlineTransport(sock)
                transport.deadline = deadline
                api = Api(ApiProtocol(transport, encoding="utf-8"))
                self._login(api, password, where)
            except BaseException:
                sock.close()
                raise
            transport.deadline = float("inf")
            self._sock, self._transport, self._api = sock, transport, api

    def _login(self, api: Api, password: str, where: str) -> None:
        user = self.cfg.user
        try:
            rows = tuple(api.rawCmd("/login", f"=name={user}", f"=password={password}"))
            if rows and "ret" in rows[0]:  # before 6.43: a challenge, answered with an md5 of it
                tuple(
                    api.rawCmd("/login", f"=name={user}", f"=response={encode_password(str(rows[0]['ret']), password)}")
                )
        except TimeoutError:
            raise RouterUnreachable(
                self.name,
                f"login to {where} timed out: no answer within {self.cfg.connect_timeout:g}s (connect_timeout)",
            ) from None
        except FatalError as exc:
            raise RouterUnreachable(self.name, f"{where} ended the session at login: {exc}") from None
        except (TrapError, MultiTrapError) as exc:
            raise AuthenticationFailed(
                self.name,
                f"{where} refused the login of user {user!r} ({exc}); check the password, that the "
                "user's group has the api policy and that it may log in from this address",
            ) from None
        except LibRouterosError as exc:
            raise RouterUnreachable(self.name, f"connection to {where} lost during login ({exc})") from None
        except (OSError, UnicodeError) as exc:
            raise RouterUnreachable(self.name, f"connection to {where} lost during login ({exc})") from None

    def wire(self) -> tuple[socket.socket, _DeadlineTransport, ApiProtocol]:
        """The connected socket, transport and protocol, for a caller that holds this session for a
        long-running command of its own (``/log/listen``: transport.log_stream). Connects if needed."""
        with self._lock:
            if self._api is None:
                self.connect()
            return self._sock, self._transport, self._api.protocol

    def close(self) -> None:
        with self._lock:
            sock, self._sock, self._api, self._transport = self._sock, None, None, None
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass

    # -- raw commands -----------------------------------------------------------------------
    def exchange(self, sentences: Sequence[Sequence[str]]) -> list[ApiReply]:
        """Send every sentence (a command word and its words), pipelined with ``.tag``; the replies in order.

        ``!trap`` is left in the reply for the caller to judge; a lost connection, a ``!fatal`` or a
        silence longer than ``command_timeout`` (waiting for any one reply) drops the connection.
        """
        if not sentences:
            return []
        with self._lock:
            if not self.connected:
                self.connect()
            try:
                return self._pipeline(sentences)
            except TimeoutError:
                self.close()
                raise CommandTimeout(
                    self.name, f"no reply within {self.cfg.command_timeout:g}s (command_timeout); reconnecting"
                ) from None
            except FatalError as exc:
                self.close()
                raise RouterUnreachable(self.name, f"the router ended the session: {exc}") from None
            except (ConnectionClosed, OSError) as exc:
                self.close()
                raise RouterUnreachable(self.name, f"connection lost ({exc or type(exc).__name__})") from None
            except LibRouterosError as exc:
                self.close()
                raise RouterUnreachable(self.name, f"unreadable reply from the router ({exc}); reconnecting") from None

    def _pipeline(self, sentences: Sequence[Sequence[str]]) -> list[ApiReply]:
        transport, protocol = self._transport, self._api.protocol
        results = [ApiReply() for _ in sentences]
        sent = finished = 0
        while finished < len(sentences):
            if sent - finished < WINDOW and sent < len(sentences):
                batch = []
                while sent - finished < WINDOW and sent < len(sentences):
                    batch.append(encode_sentence(*sentences[sent], f".tag={sent}", encoding="utf-8"))
                    sent += 1
                transport.deadline = time.monotonic() + self.cfg.command_timeout
                transport.write(b"".join(batch))
            transport.deadline = time.monotonic() + self.cfg.command_timeout
            kind, words = protocol.readSentence()
            attributes, tag = _reply_parts(kind, words)
            if tag is None or not tag.isdigit() or int(tag) >= sent:
                raise ConnectionClosed(f"a {kind} reply with tag {tag!r}, which no command of ours carried")
            reply = results[int(tag)]
            if kind == "!re":
                reply.rows.append(attributes)
            elif kind == "!trap":
                reply.trap = attributes
            elif kind == "!done":
                reply.done = attributes
                finished += 1
            # "!empty" (RouterOS 7.18+: no rows) is always followed by "!done": nothing to keep
        transport.deadline = float("inf")
        return results

    def _error(self, trap: dict[str, str], sentence: Sequence[str]) -> RouterCommandError:
        message = trap.get("message", "(no message)")
        kind = _kind_of(message)
        command = " ".join(sentence)
        if kind == "permission":
            return RouterCommandError(
                self.name, f"{message} -- {_PERMISSION_FIX} (command: {command})", kind=kind, output=message
            )
        return replies.command_error(self.name, replies.Reply(False, kind, message), command)

    def run(self, command: str, *words: str) -> list[dict[str, str]]:
        """One raw API command (``/ip/address/print``, ``=name=value`` words...): its rows; any ``!trap`` raises."""
        sentence = [command, *words]
        [reply] = self.exchange([sentence])
        if reply.trap is not None:
            raise self._error(reply.trap, sentence)
        return reply.rows or ([reply.done] if reply.done else [])


__all__ = ["API_PORT", "API_SSL_PORT", "WINDOW", "ApiConnection", "ApiReply"]
