"""SSH to one RouterOS router with paramiko: one persistent Transport, a fresh exec channel per command.

Everything we cannot control in paramiko.SSHClient is avoided: the host key is checked against
our known_hosts before authenticating (unknown or changed keys are refused, never auto-added), no
agent, no ~/.ssh keys. Connect (TCP + banner + key exchange + auth) and every command run under
deadlines; a command that overruns drops the transport so the next one starts clean.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass

import paramiko

from responder.errors import AuthenticationFailed, CommandTimeout, HostKeyRefused, RouterUnreachable
from responder.transport import known_hosts

log = logging.getLogger(__name__)

MAX_OUTPUT_BYTES = 64 * 1024 * 1024  # a runaway reply must not eat the memory of the whole service
_RSA_ALGORITHMS = ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")  # a recorded ssh-rsa key may be signed by any


@dataclass(frozen=True)
class ExecResult:
    stdout: str
    stderr: str
    exit_status: int | None  # None if the router closed the channel without sending one


def key_fingerprint(key: paramiko.PKey) -> str:
    return known_hosts.fingerprint(key.asbytes())


def _remaining(deadline: float) -> float:
    return deadline - time.monotonic()


def _open_transport(
    name: str, host: str, port: int, deadline: float, key_types: list | None = None
) -> paramiko.Transport:
    """TCP connect and SSH key exchange, both within ``deadline``."""
    try:
        sock = socket.create_connection((host, port), timeout=max(0.01, _remaining(deadline)))
    except OSError as exc:
        raise RouterUnreachable(name, f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
    # Commands are small request/reply exchanges: without TCP_NODELAY, Nagle's algorithm and
    # delayed ACKs add ~40 ms to each channel open.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport = paramiko.Transport(sock)
    budget = max(0.01, _remaining(deadline))
    transport.banner_timeout = budget
    transport.handshake_timeout = budget
    if key_types:
        offered = transport.get_security_options().key_types
        wanted = []
        for key_type in key_types:
            for algorithm in _RSA_ALGORITHMS if key_type == "ssh-rsa" else (key_type,):
                if algorithm in offered and algorithm not in wanted:
                    wanted.append(algorithm)
        if wanted:
            transport.get_security_options().key_types = tuple(wanted)
    try:
        transport.start_client(timeout=budget)
        if not (transport.is_active() and transport.initial_kex_done):  # start_client's timeout is silent
            raise paramiko.SSHException("key exchange did not finish")
    except (paramiko.SSHException, EOFError, OSError) as exc:
        transport.close()
        late = _remaining(deadline) <= 0
        what = "timed out" if late else f"failed ({exc or type(exc).__name__})"
        raise RouterUnreachable(name, f"SSH handshake with {host}:{port} {what}") from None
    return transport


def fetch_host_key(host: str, port: int = 22, timeout: float = 5.0) -> paramiko.PKey:
    """The host key a server offers, without authenticating (for ``snort-bridge trust``)."""
    transport = _open_transport(f"{host}:{port}", host, port, time.monotonic() + timeout)
    try:
        return transport.get_remote_server_key()
    finally:
        transport.close()


class SshConnection:
    """One authenticated SSH transport to one router."""

    def __init__(
        self,
        *,
        name: str,
        host: str,
        port: int = 22,
        user: str,
        known_hosts_path: str,
        pkey: paramiko.PKey | None = None,
        password: str | None = None,
        connect_timeout: float = 5.0,
        keepalive: float = 15.0,
    ) -> None:
        self.name, self.host, self.port, self.user = name, host, port, user
        self.known_hosts_path = known_hosts_path
        self._pkey, self._password = pkey, password
        self.connect_timeout, self.keepalive = connect_timeout, keepalive
        self._transport: paramiko.Transport | None = None

    @property
    def active(self) -> bool:
        return self._transport is not None and self._transport.is_active()

    def connect(self) -> None:
        self.close()
        deadline = time.monotonic() + self.connect_timeout
        name = known_hosts.host_name(self.host, self.port)
        entries = known_hosts.load(self.known_hosts_path)
        transport = _open_transport(
            self.name, self.host, self.port, deadline, known_hosts.recorded_key_types(entries, name)
        )
        try:
            self._check_host_key(transport.get_remote_server_key(), entries, name)
            self._authenticate(transport, deadline)
        except BaseException:
            transport.close()
            raise
        if self.keepalive > 0:
            transport.set_keepalive(max(1, int(self.keepalive)))
        self._transport = transport
        log.info("router %s: connected to %s:%d", self.name, self.host, self.port)

    def _check_host_key(self, key: paramiko.PKey, entries: list, name: str) -> None:
        verdict = known_hosts.check(entries, name, key.asbytes())
        if verdict == known_hosts.OK:
            return
        shown = f"{key.get_name()} {key_fingerprint(key)}"
        if verdict == known_hosts.UNKNOWN:
            message = (
                f"host key {shown} of {name} is not in {self.known_hosts_path}; check it on the router "
                f"(/ip ssh print or the console) and run `snort-bridge trust {self.name}`"
            )
        elif verdict == known_hosts.REVOKED:
            message = f"host key {shown} of {name} is marked @revoked in {self.known_hosts_path}"
        else:
            message = (
                f"host key of {name} has CHANGED: it now offers {shown}, which differs from "
                f"{self.known_hosts_path}. This can be an attack. If the router was reinstalled or its key "
                f"regenerated, verify the fingerprint and run `snort-bridge trust {self.name}`"
            )
        raise HostKeyRefused(self.name, message, fingerprint=key_fingerprint(key), reason=verdict)

    def _authenticate(self, transport: paramiko.Transport, deadline: float) -> None:
        if self._pkey is None and self._password is None:
            raise AuthenticationFailed(self.name, "no key_file, password_file or password_env configured")
        transport.auth_timeout = max(0.01, _remaining(deadline))
        failures = []
        try:
            if self._pkey is not None:
                try:
                    transport.auth_publickey(self.user, self._pkey)
                    return
                except paramiko.AuthenticationException as exc:
                    failures.append(f"key {self._pkey.get_name()} {key_fingerprint(self._pkey)}: {exc}")
            if self._password is not None:
                transport.auth_timeout = max(0.01, _remaining(deadline))
                try:
                    transport.auth_password(self.user, self._password)
                    return
                except paramiko.AuthenticationException as exc:
                    failures.append(f"password: {exc}")
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise RouterUnreachable(self.name, f"connection lost during authentication ({exc})") from None
        if _remaining(deadline) <= 0:
            raise RouterUnreachable(self.name, f"authentication did not finish within {self.connect_timeout:g}s")
        raise AuthenticationFailed(
            self.name,
            f"user {self.user!r} refused ({'; '.join(failures)}); check the user, its key "
            "(/user ssh-keys) or password on the router, and that the user may log in from this host",
        )

    def close(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()

    def exec(self, command: str, timeout: float) -> ExecResult:
        """Run one command line in a fresh exec channel; CommandTimeout drops the connection."""
        if not self.active:
            self.close()
            raise RouterUnreachable(self.name, "not connected")
        deadline = time.monotonic() + timeout
        try:
            channel = self._transport.open_session(timeout=max(0.01, _remaining(deadline)))
        except (paramiko.SSHException, EOFError, OSError) as exc:
            self.close()
            if _remaining(deadline) <= 0:
                raise CommandTimeout(self.name, f"no exec channel within {timeout:g}s; reconnecting") from None
            raise RouterUnreachable(self.name, f"connection lost ({exc or type(exc).__name__})") from None
        try:
            return self._run(channel, command, deadline, timeout)
        finally:
            channel.close()

    def open_exec(self, command: str, timeout: float) -> paramiko.Channel:
        """A fresh exec channel running ``command``, for a caller that reads a long reply as it comes
        (``/log print follow``: transport.log_stream). The caller closes the channel."""
        if not self.active:
            self.close()
            raise RouterUnreachable(self.name, "not connected")
        try:
            channel = self._transport.open_session(timeout=timeout)
            channel.settimeout(timeout)
            channel.exec_command(command)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            self.close()
            raise RouterUnreachable(self.name, f"connection lost ({exc or type(exc).__name__})") from None
        return channel

    def _run(self, channel: paramiko.Channel, command: str, deadline: float, timeout: float) -> ExecResult:
        stdout, stderr = bytearray(), bytearray()
        try:
            channel.settimeout(max(0.01, _remaining(deadline)))
            try:
                channel.exec_command(command)
            except paramiko.SSHException:
                # A fast server may answer and close before its "exec accepted" reaches us; the
                # reply is buffered then. Only a channel closed without an exit status is a failure.
                if not (channel.closed and channel.status_event.is_set() and self.active):
                    raise
            while True:
                remaining = _remaining(deadline)
                if remaining <= 0:
                    raise TimeoutError()
                channel.settimeout(remaining)
                chunk = channel.recv(65536)
                while channel.recv_stderr_ready():
                    stderr += channel.recv_stderr(65536)
                if not chunk:
                    break
                stdout += chunk
                if len(stdout) > MAX_OUTPUT_BYTES:
                    self.close()
                    raise RouterUnreachable(
                        self.name, f"reply larger than {MAX_OUTPUT_BYTES} bytes; connection dropped"
                    )
            while channel.recv_stderr_ready():
                stderr += channel.recv_stderr(65536)
            status = None
            if channel.status_event.wait(max(0.0, _remaining(deadline))):
                status = channel.exit_status if channel.exit_status >= 0 else None
        except TimeoutError:
            self.close()
            raise CommandTimeout(
                self.name,
                f"no complete reply within {timeout:g}s (command_timeout); "
                "connection dropped, the next command reconnects",
            ) from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            self.close()
            raise RouterUnreachable(
                self.name, f"connection lost during a command ({exc or type(exc).__name__})"
            ) from None
        return ExecResult(stdout.decode("utf-8", errors="replace"), stderr.decode("utf-8", errors="replace"), status)
