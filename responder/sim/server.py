"""SimRouter: one simulated RouterOS router (state + interpreter + SSH server) for tests and the CLI."""

from __future__ import annotations

import hmac
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

import paramiko

from responder.sim.router.addresses import AddressEntryView, normalise_address
from responder.sim.router.firewall import Verdict, decode_frame
from responder.sim.router.rules import raw_action
from responder.sim.router.state import RouterProfile, RouterState, StateError
from responder.sim.router.tables import parse_public_key
from responder.sim.script.interpreter import Console, ExecResult, Interpreter
from responder.sim.wire.api_server import (
    ApiCertificate,
    ApiServer,
    check_challenge,
    make_certificate,
    server_context,
)
from responder.sim.wire.ssh_server import SshServer
from responder.sim.wire.terminal import Terminal, parse_login_options, prompt
from responder.transport.ssh import key_fingerprint

KeyLike = paramiko.PKey | str
GENERATE = "generate"  # api_certificate: a self-signed one for 127.0.0.1, made when api-ssl first starts


class SimRouter:
    """A RouterOS stand-in. ``start()`` serves SSH on loopback; ``execute()`` runs a line without SSH."""

    def __init__(
        self,
        *,
        flavour: str = "v7",
        users: Mapping[str, str] | Iterable[dict] | None = None,
        host_key: paramiko.PKey | None = None,
        clock: Callable[[], float] = time.time,
        identity: str = "MikroTik",
        parse_error_exit: int = 0,
        latency: float = 0.0,
        extra_host_keys: Iterable[paramiko.PKey] = (),
        api_certificate: ApiCertificate | None | str = GENERATE,
        api_legacy_login: bool = False,
        terminal_detect_wait: float = 1.0,
    ):
        self.state = RouterState(profile=RouterProfile(flavour=flavour), clock=clock, identity=identity)
        self.interpreter = Interpreter(self.state, parse_error_exit=parse_error_exit, send_log=self._send_log)
        self.host_key = host_key if host_key is not None else paramiko.RSAKey.generate(2048)
        self.extra_host_keys = list(extra_host_keys)
        self.commands_log: list[tuple[str, str]] = []
        self.hang = False  # new TCP connections are accepted and never answered
        self.hang_exec = False  # logins work, commands never answer
        self.latency = latency  # seconds added before each command runs
        self.terminal_detect_wait = terminal_detect_wait  # an unanswered ESC Z delays the banner this long
        self._server: SshServer | None = None
        self._log_lock = threading.Lock()
        # None = api-ssl without a certificate (anonymous DH only, which verifying clients refuse)
        self.api_certificate = api_certificate
        self.api_legacy_login = api_legacy_login  # a bare /login gets the pre-6.43 challenge
        self._api_servers: dict[bool, ApiServer] = {}  # by "is TLS"
        self._log_sockets: dict[int, socket.socket] = {}  # remote logging, by address family
        self.log_datagrams_sent = 0
        if isinstance(users, Mapping):
            for name, password in users.items():
                self.add_user(name, password=password)
        else:
            for spec in users or ():
                self.add_user(**spec)

    # -- setup ----------------------------------------------------------------------------------
    @property
    def flavour(self) -> str:
        return self.state.profile.flavour

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.host_key)

    def add_user(
        self,
        name: str,
        password: str | None = None,
        authorized_keys: Iterable[KeyLike] = (),
        policies: Iterable[str] = ("ssh", "read", "write"),
        address: str | None = None,
    ) -> None:
        """A user in a group holding exactly ``policies`` (a built-in group when one matches)."""
        wanted = frozenset(policies)
        with self.state.lock:
            group = next((g for g, p in self.state.groups.items() if p == wanted), None)
            if group is None:
                group = name if name not in self.state.groups else f"{name}-group"
                self.state.add_group(group, sorted(wanted))
            self.state.add_user(name, group=group, password=password, address=address or "")
            for key in authorized_keys:
                self.add_key(name, key)

    def add_key(self, user: str, key: KeyLike) -> None:
        if isinstance(key, paramiko.PKey):
            key_type, blob, bits, comment = key.get_name(), key.asbytes(), key.get_bits(), ""
        else:
            key_type, blob, bits, comment = parse_public_key(key)
        with self.state.lock:
            self.state.add_ssh_key(user, key_type, blob, comment, bits)

    def add_script(self, name: str, source: str, owner: str = "admin", policy: Iterable[str] | None = None) -> None:
        with self.state.lock:
            self.state.add_script(name, source, owner, policy)

    def put_file(self, name: str, text: str) -> None:
        """A file on the router's disk (for ``/user ssh-keys import``)."""
        with self.state.lock:
            self.state.files[name] = text

    # -- running ----------------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        if self._server is not None:
            raise RuntimeError("this simulated router is already running")
        self._server = SshServer(self, [self.host_key] + self.extra_host_keys)
        return self._server.start(host, port)

    @property
    def port(self) -> int:
        return self._server.address[1] if self._server else 0

    def start_api(self, host: str = "127.0.0.1", port: int = 0, *, tls: bool = False) -> int:
        """Serve the RouterOS API (``tls``: api-ssl) on the same router state; returns the port."""
        if tls in self._api_servers:
            raise RuntimeError(f"this simulated router already serves {'api-ssl' if tls else 'api'}")
        context = None
        if tls:
            if self.api_certificate == GENERATE:
                self.api_certificate = make_certificate(self.state.identity, hosts=("127.0.0.1", "::1", "localhost"))
            context = server_context(self.api_certificate)
        server = ApiServer(self, context)
        port = server.start(host, port)
        self._api_servers[tls] = server
        return port

    def api_port(self, tls: bool = False) -> int:
        server = self._api_servers.get(tls)
        return server.address[1] if server else 0

    def stop(self) -> None:
        """Stop every server (SSH, api, api-ssl)."""
        if self._server is not None:
            self._server.stop()
            self._server = None
        for server in self._api_servers.values():
            server.stop()
        self._api_servers = {}
        for sock in self._log_sockets.values():
            sock.close()
        self._log_sockets = {}

    def stop_api(self, tls: bool = False) -> None:
        server = self._api_servers.pop(tls, None)
        if server is not None:
            server.stop()

    def reboot(self) -> None:
        """Dynamic entries, globals and /log are lost, uptime restarts, open SSH and API sessions drop."""
        self.state.reboot()
        self.drop_connections()

    def drop_connections(self) -> None:
        """Every open SSH and API session drops (a network outage); the router keeps its memory."""
        if self._server is not None:
            self._server.drop_connections()
        for server in self._api_servers.values():
            server.drop_connections()

    def __enter__(self) -> SimRouter:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def execute(self, user: str, command: str) -> ExecResult:
        """What an exec of ``command`` by ``user`` prints, without SSH."""
        with self._log_lock:
            self.commands_log.append((user, command))
        return self.interpreter.run_line(user, command)

    def address_list(self, name: str, family: int = 4) -> list[AddressEntryView]:
        with self.state.lock:
            return [self.state.view(e) for e in self.state.entries(family) if e.list == name]

    def holds(self, list_name: str, address: str, family: int = 4) -> bool:
        """Is ``address`` on ``list_name`` now? One index look-up, no listing: cheap enough to poll often."""
        with self.state.lock:
            self.state.expire()
            return self.state.addresses[family].holds(list_name, normalise_address(address, family))

    # -- traffic through the firewall ----------------------------------------------------------
    def receive(self, frame: bytes, at: float | None = None, in_interface: str = "ether1") -> Verdict | None:
        """One Ethernet frame arriving for the router (the input chain): the raw table's
        ``prerouting`` drop rules, connection tracking, the filter rules, and the log lines they
        write sent to the remote logging actions. ``at``: the
        arrival time (a capture's timestamp), else the router's clock. None for non-IP frames."""
        packet = decode_frame(frame)
        if packet is None:
            return None
        with self.state.lock:
            now = self.state.now() if at is None else at
            self.state.expire()
            addresses = self.state.addresses[packet.family]

            def in_list(name: str, address: str) -> bool:
                return addresses.holds(name, normalise_address(address, packet.family))

            raw = raw_action(self.state.rule_lists.get((packet.family, "raw"), []), packet, in_list)
            if raw == "drop":  # before connection tracking: no state, no filter rule, no log line
                return Verdict("", "drop", [])
            verdict = self.state.firewall[packet.family].handle(
                packet, now, self.flavour, in_list, in_interface=in_interface
            )
            datagrams = [
                d
                for message in verdict.messages
                for d in self.state.logging.emit(("firewall", "info"), message, now, self.state.identity)
            ]
        for host, port, data in datagrams:
            self._send_log(host, port, data)
        self.log_datagrams_sent += len(datagrams)
        return verdict

    def logs_remotely(self) -> bool:
        """Does some enabled /system logging rule send firewall messages to a remote action?"""
        with self.state.lock:
            logging = self.state.logging
            return any(
                not rule.disabled
                and rule.wants(("firewall", "info"))
                and getattr(logging.action(rule.action), "target", "") == "remote"
                for rule in logging.rules
            )

    def log_is_followed(self) -> bool:
        """Does a filter rule log, and has a client followed /log (SSH print follow, API /log/listen)?"""
        with self.state.lock:
            logging_rule = any(
                not getattr(rule, "disabled", False) and (rule.log or rule.action == "log")
                for firewall in self.state.firewall.values()
                for rule in firewall.rules
            )
            return logging_rule and self.state.logging.memory.followed

    def receive_capture(self, path) -> int:
        """Every frame of a pcap/pcapng file (Ethernet), at its captured time; returns the count."""
        from tzsp.capture_files import CaptureError, read_capture

        linktype, records = read_capture(path)
        if linktype != 1:
            raise CaptureError(f"{path}: link type {linktype}; the simulated router takes Ethernet (1)")
        count = 0
        for stamp_ns, frame in records:
            self.receive(frame, stamp_ns / 1e9)
            count += 1
        return count

    def _send_log(self, host: str, port: int, data: bytes) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = self._log_sockets.get(family)
        if sock is None:
            sock = self._log_sockets[family] = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.sendto(data, (host, port))
        except OSError:
            pass  # like a router: remote logging is fire-and-forget

    # -- the SSH server's backend -----------------------------------------------------------------
    def _login_user(self, login: str, peer: str):
        name = self.state.login_name(login)
        user = self.state.users.get(name) if name else None
        if user is None or user.disabled or not user.allows_peer(peer):
            return None
        if "ssh" not in self.state.policies_of(user.name):
            return None
        return user

    def user_has_keys(self, login: str) -> bool:
        name = self.state.login_name(login)
        with self.state.lock:
            return bool(name and self.state.keys_of(name))

    def authenticate_password(self, login: str, password: str, peer: str) -> str | None:
        with self.state.lock:
            user = self._login_user(login, peer)
            if user is None or self.state.keys_of(user.name):  # a user with keys may not use a password
                return None
            expected = user.password or ""
            if not hmac.compare_digest(expected.encode(), password.encode()):
                return None
        return user.name

    def authenticate_key(self, login: str, key: paramiko.PKey, peer: str) -> str | None:
        with self.state.lock:
            user = self._login_user(login, peer)
            if user is None:
                return None
            blob = key.asbytes()
            if not any(k.key_blob == blob for k in self.state.keys_of(user.name)):
                return None
        return user.name

    # -- the API server's backend -----------------------------------------------------------------
    def _api_user(self, login: str, peer: str):
        name = self.state.login_name(login)
        user = self.state.users.get(name) if name else None
        if user is None or user.disabled or not user.allows_peer(peer) or user.password is None:
            return None
        return user if "api" in self.state.policies_of(user.name) else None

    def authenticate_api(self, login: str, password: str, peer: str) -> str | None:
        """A password login over the API (keys play no part there); needs the ``api`` policy."""
        with self.state.lock:
            user = self._api_user(login, peer)
            if user is None or not hmac.compare_digest(user.password.encode(), password.encode()):
                return None
        return user.name

    def authenticate_api_challenge(self, login: str, challenge: bytes, response: str, peer: str) -> str | None:
        with self.state.lock:
            user = self._api_user(login, peer)
            if user is None or not check_challenge(user.password, challenge, response):
                return None
        return user.name

    def log_api_command(self, user: str, words: Sequence[str]) -> None:
        """API commands go to commands_log as their words joined by spaces (never /login)."""
        with self._log_lock:
            self.commands_log.append((user, " ".join(words)))

    def run_exec(self, user: str, command: str) -> tuple[bytes, int]:
        result = self.execute(user, command)
        return result.output.encode("utf-8"), result.exit_status

    def open_terminal(self, user: str, login: str) -> Terminal:
        """An interactive session of ``user`` (``login``: the name as typed, with ``+`` options)."""
        console = Console()

        def run(entry: str) -> list[str]:
            with self._log_lock:
                self.commands_log.append((user, entry))
            return list(self.interpreter.run_line(user, entry, console=console).lines)

        def current_prompt() -> str:
            return prompt(user, self.state.identity, console.cwd, self.flavour)

        return Terminal(run, current_prompt, version=self.state.profile.version, options=parse_login_options(login))


__all__ = ["GENERATE", "SimRouter", "StateError"]
