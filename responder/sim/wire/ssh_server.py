"""The SSH face of the simulator: paramiko Transport per connection; exec channels (the
responder's path) and interactive shells on a pty (a person, netmiko, Ansible: ``terminal``).

Looks like RouterOS on the wire (ROUTEROS.md §4): banner ``SSH-2.0-ROSSSH``; kex
curve25519-sha256 and diffie-hellman-group-exchange-sha256; host key rsa-sha2-256 (plus
ssh-ed25519 when given an Ed25519 key); ciphers aes192-ctr, aes256-ctr, aes256-gcm; MACs
hmac-sha2-256/512. A paramiko client therefore negotiates DH-GEX, as against a real router.

Authentication rules and the command itself are delegated to a ``Backend`` (SimRouter), so this
module only moves bytes. Faults for tests: ``backend.hang`` (accept TCP, never speak),
``backend.hang_exec`` (log in, never answer a command), ``backend.latency`` (seconds per command).
"""

from __future__ import annotations

import codecs
import logging
import re
import socket
import threading
import time
from typing import Protocol

import paramiko
from paramiko.kex_curve25519 import KexCurve25519
from paramiko.kex_group14 import KexGroup14SHA256
from paramiko.kex_group16 import KexGroup16SHA512
from paramiko.primes import ModulusPack

from responder.sim.wire.listener import TcpListener
from responder.sim.wire.ssh_log import log_print_request, serve_log_print
from responder.sim.wire.terminal import DETECT, Terminal

log = logging.getLogger(__name__)

BANNER = "SSH-2.0-ROSSSH"
KEX = ("curve25519-sha256", "diffie-hellman-group-exchange-sha256")
CIPHERS = ("aes192-ctr", "aes256-ctr", "aes256-gcm@openssh.com")
MACS = ("hmac-sha2-256", "hmac-sha2-512")
_EXEC_WAIT = 30.0  # how long an opened session channel may wait for its exec request
_TERMINAL_POLL = 0.2  # how often a terminal's thread looks at the server stopping
_TERMINAL_IDLE = 3600.0  # a terminal nobody typed in for this long is closed (its thread is bounded in time)


class Backend(Protocol):
    hang: bool
    hang_exec: bool
    latency: float
    terminal_detect_wait: float  # seconds a new terminal waits for the answer to ESC Z

    def authenticate_password(self, login: str, password: str, peer: str) -> str | None: ...
    def authenticate_key(self, login: str, key: paramiko.PKey, peer: str) -> str | None: ...
    def user_has_keys(self, login: str) -> bool: ...
    def run_exec(self, user: str, command: str) -> tuple[bytes, int]: ...
    def open_terminal(self, user: str, login: str) -> Terminal: ...


def _modulus_pack() -> ModulusPack:
    """The well-known RFC 3526 groups (2048, 4096 bits) serve DH group exchange; no moduli file needed."""
    pack = ModulusPack()
    pack.pack = {2048: [(2, KexGroup14SHA256.P)], 4096: [(2, KexGroup16SHA512.P)]}
    return pack


_MODULI = _modulus_pack()


def configure_transport(transport: paramiko.Transport, host_keys: list[paramiko.PKey]) -> None:
    """Make a server Transport offer what RouterOS offers (instance attributes shadow paramiko's)."""
    transport.local_version = BANNER
    for key in host_keys:
        transport.add_server_key(key)
    transport._kex_info = dict(paramiko.Transport._kex_info, **{"curve25519-sha256": KexCurve25519})
    transport._preferred_kex = KEX
    transport._modulus_pack = _MODULI
    names = ["rsa-sha2-256" if key.get_name() == "ssh-rsa" else key.get_name() for key in host_keys]
    transport._preferred_keys = tuple(names)
    transport._preferred_ciphers = CIPHERS
    transport._preferred_macs = MACS


class _Connection(paramiko.ServerInterface):
    """One client: who logged in, and the exec command each channel asked for."""

    def __init__(self, backend: Backend, peer: str):
        self.backend = backend
        self.peer = peer
        self.user: str | None = None
        self.login = ""  # the name as given, with its +options
        self.commands: dict[int, str | None] = {}  # None: a shell
        self.ready: dict[int, threading.Event] = {}
        self._lock = threading.Lock()

    def event_for(self, chanid: int) -> threading.Event:
        with self._lock:
            return self.ready.setdefault(chanid, threading.Event())

    def get_allowed_auths(self, username: str) -> str:
        return "publickey" if self.backend.user_has_keys(username) else "publickey,password"

    def check_auth_password(self, username: str, password: str) -> int:
        return self._logged_in(self.backend.authenticate_password(username, password, self.peer), username)

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return self._logged_in(self.backend.authenticate_key(username, key, self.peer), username)

    def _logged_in(self, user, login: str) -> int:
        """The connection's user from now on, or a refusal when the backend knew no such login."""
        if user is None:
            return paramiko.AUTH_FAILED
        self.user, self.login = user, login
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        self.commands[channel.get_id()] = command.decode("utf-8", errors="replace")
        self.event_for(channel.get_id()).set()
        return True

    def check_channel_pty_request(self, *args) -> bool:
        return True

    def check_channel_window_change_request(self, *args) -> bool:
        return True  # the size changes nothing (RouterOS would re-wrap its tables)

    def check_channel_shell_request(self, channel: paramiko.Channel) -> bool:
        self.commands[channel.get_id()] = None
        self.event_for(channel.get_id()).set()
        return True


class SshServer(TcpListener):
    """Listening socket plus one thread per connection and per exec channel."""

    thread_prefix = "sim-ssh"

    def __init__(self, backend: Backend, host_keys: list[paramiko.PKey]):
        super().__init__()
        self.backend = backend
        self.host_keys = host_keys
        self._transports: list[paramiko.Transport] = []

    def serve_connection(self, sock: socket.socket, peer: str) -> None:
        self._converse(sock, peer)

    def _converse(self, sock: socket.socket, peer: str) -> None:
        if self.backend.hang:
            self._stopping.wait()  # accept TCP, never say a word
            sock.close()
            return
        # Small SSH packets (exec reply, exit-status, close) must not wait for delayed ACKs.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport = paramiko.Transport(sock)
        transport.set_log_channel("responder.sim.ssh")
        configure_transport(transport, self.host_keys)
        connection = _Connection(self.backend, peer)
        with self._lock:
            self._transports.append(transport)
        try:
            transport.start_server(server=connection)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            log.debug("ssh negotiation with %s failed: %s", peer, exc)
            transport.close()
            return
        while transport.is_active() and not self._stopping.is_set():
            channel = transport.accept(timeout=0.2)
            if channel is not None:
                self._spawn(self._serve_channel, "sim-ssh-chan", connection, channel)
        transport.close()
        with self._lock:
            if transport in self._transports:
                self._transports.remove(transport)

    def _serve_channel(self, connection: _Connection, channel: paramiko.Channel) -> None:
        try:
            if not connection.event_for(channel.get_id()).wait(_EXEC_WAIT) or connection.user is None:
                return
            command = connection.commands[channel.get_id()]
            if command is None:
                self._serve_terminal(connection, channel)
                return
            if self.backend.hang_exec:
                self._stopping.wait()
                return
            if self.backend.latency > 0:
                time.sleep(self.backend.latency)
            log_print = log_print_request(command)
            state = getattr(self.backend, "state", None)
            if log_print is not None and state is not None and "read" in state.policies_of(connection.user):
                serve_log_print(channel, state.logging.memory, log_print, state.now, self._stopping)
                return
            output, status = self.backend.run_exec(connection.user, command)
            channel.sendall(output)
            channel.send_exit_status(status)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            log.debug("exec channel failed: %s", exc)
        finally:
            try:
                channel.close()
            except (OSError, EOFError, paramiko.SSHException):
                pass  # the client went away first

    def _serve_terminal(self, connection: _Connection, channel: paramiko.Channel) -> None:
        """An interactive session until the person quits, the client closes or the server stops."""
        terminal = self.backend.open_terminal(connection.user, connection.login)
        channel.settimeout(_TERMINAL_POLL)
        keys = ""
        if terminal.options.detect:
            keys = self._detect_terminal(channel)
        channel.sendall(terminal.start().encode("utf-8"))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        last_key = time.monotonic()
        while not terminal.closed and not self._stopping.is_set():
            if time.monotonic() - last_key > _TERMINAL_IDLE:
                channel.sendall(b"\r\nidle for too long, bye\r\n")
                break
            if keys:
                reply = terminal.feed(keys)
                keys = ""
                if reply:
                    channel.sendall(reply.encode("utf-8"))
                continue
            try:
                data = channel.recv(4096)
            except TimeoutError:
                continue
            if not data:
                break
            keys = decoder.decode(data)
            last_key = time.monotonic()
        channel.send_exit_status(0)

    def _detect_terminal(self, channel: paramiko.Channel) -> str:
        """RouterOS's ESC Z: wait a moment for the answer; keys typed meanwhile are kept."""
        channel.sendall(DETECT.encode())
        received = ""
        deadline = time.monotonic() + self.backend.terminal_detect_wait
        while time.monotonic() < deadline and not self._stopping.is_set():
            try:
                data = channel.recv(256)
            except TimeoutError:
                continue
            if not data:
                break
            received += data.decode("utf-8", errors="replace")
            if "\x1b/Z" in received or re.search(r"\x1b\[\?[0-9;]*c", received):
                break
        return re.sub(r"\x1b/Z|\x1b\[\?[0-9;]*c", "", received)

    def drop_connections(self) -> None:
        """Close every open client connection (what a reboot does); keep listening."""
        with self._lock:
            transports, self._transports = self._transports, []
        for transport in transports:
            transport.close()
        super().drop_connections()
