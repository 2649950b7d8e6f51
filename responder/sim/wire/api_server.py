"""routeros-sim's RouterOS API: plain (8728) and TLS (8729), over the same RouterState as its SSH side.

``ApiConversation`` is one connection's logic (sentence in, reply sentences out, no sockets);
``ApiServer`` is the thin socket shell around it. What it answers (ROUTEROS.md section 5):

- ``/login =name= =password=`` (6.43+); a bare ``/login`` gives the pre-6.43 ``=ret=`` challenge
  when the router has ``api_legacy_login``, then ``=name= =response=00<md5>``. The user needs the
  ``api`` policy and an allowed address. Anything else before login: ``!fatal not logged in``.
- ``/ip/firewall/address-list/`` and ``/ipv6/...``: ``add`` (``!done =ret=*ID``), ``print`` and
  ``getall`` (``?`` queries, ``=.proplist=``), ``set`` and ``remove`` (``=.id=``, comma lists).
  ``/system/resource/print`` and ``/system/identity/print``.
- Errors: ``!trap =message=...`` (the CLI's texts), always followed by ``!done``. ``read`` and
  ``write`` policies are checked as on the CLI.
- v7 flavour: a ``print`` with no rows answers ``!empty`` then ``!done`` (RouterOS 7.18+).
- ``.tag=x`` is echoed on every reply to that command. ``/cancel``: nothing here ever runs in the
  background, so there is nothing to interrupt and it answers ``!done``.
- ``/quit``: ``!fatal session terminated on request``, then the connection closes.

TLS: with a certificate, ordinary TLS; without one (``certificate=None``) only anonymous
(EC)DH ciphers, as api-ssl offers when no certificate is set.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
import socket
import ssl
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass

from responder.routeros.duration import format_duration
from responder.sim.router.printing import format_date
from responder.sim.router.state import StateError, parse_id
from responder.sim.router.tables import AddressListTable
from responder.sim.wire.api_log import LogListens
from responder.sim.wire.api_protocol import (
    ApiProtocolError,
    Request,
    SentenceDecoder,
    compile_query,
    encode_sentence,
    parse_request,
    reply_words,
)
from responder.sim.wire.listener import TcpListener, close_quietly

log = logging.getLogger(__name__)

_MENUS = {"/ip/firewall/address-list": 4, "/ipv6/firewall/address-list": 6}
_ADD_ARGS = frozenset({"list", "address", "timeout", "comment", "disabled", "dynamic"})
_SET_ARGS = frozenset({".id", "list", "address", "timeout", "comment", "disabled"})
_BAD_LOGIN = {"v7": "invalid user name or password (6)", "v6": "cannot log in"}
_HANDSHAKE_TIMEOUT = 5.0

Sentence = list[str]


# ----------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class ApiCertificate:
    """A PEM certificate and its private key (what ``/certificate`` would hold for api-ssl)."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the DER certificate (what a pin compares)."""
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(self.cert_pem.decode("ascii"))).hexdigest()


def make_certificate(
    common_name: str,
    *,
    hosts: Sequence[str] = ("127.0.0.1",),
    issuer: ApiCertificate | None = None,
    is_ca: bool = False,
    days: int = 3650,
) -> ApiCertificate:
    """A P-256 certificate for ``hosts`` (subjectAltName), self-signed or signed by ``issuer``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    if issuer is None:
        issuer_name, signing_key = subject, key
    else:
        issuer_cert = x509.load_pem_x509_certificate(issuer.cert_pem)
        issuer_name = issuer_cert.subject
        signing_key = serialization.load_pem_private_key(issuer.key_pem, password=None)
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if names and not is_ca:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(signing_key, hashes.SHA256())
    return ApiCertificate(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


def server_context(certificate: ApiCertificate | None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if certificate is None:
        # api-ssl without a certificate: anonymous key exchange only, which verifying clients refuse
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers("aNULL:@SECLEVEL=0")
        return context
    with tempfile.TemporaryDirectory() as folder:  # ssl loads keys from files only
        cert_path, key_path = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        with open(cert_path, "wb") as handle:
            handle.write(certificate.cert_pem)
        with open(os.open(key_path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as handle:
            handle.write(certificate.key_pem)
        context.load_cert_chain(cert_path, key_path)
    return context


# ----------------------------------------------------------------------------- one connection's logic


class ApiConversation:
    """Sentences in, reply sentences out, for one connection. ``backend`` is a SimRouter."""

    def __init__(self, backend, peer: str) -> None:
        self.backend = backend
        self.peer = peer
        self.user: str | None = None
        self._challenge: bytes | None = None
        self.logs = LogListens(backend.state.logging.memory, backend.state.now)  # /log/print, /log/listen

    @property
    def state(self):
        return self.backend.state

    @property
    def flavour(self) -> str:
        return self.state.profile.flavour

    def handle(self, words: Sequence[str]) -> tuple[list[Sentence], bool]:
        """(reply sentences, whether to close the connection after sending them)."""
        try:
            request = parse_request(words)
        except ApiProtocolError as exc:
            return [reply_words("!fatal") + [str(exc)]], True
        if request.command == "/quit":
            return [["!fatal", "session terminated on request"]], True
        if request.command == "/login":
            return self.login(request), False
        if self.user is None:
            return [["!fatal", "not logged in"]], True
        self.backend.log_api_command(self.user, words)
        try:
            if self.logs.takes(request):
                self.require({"read"})
                return self.logs.handle(request), False
            rows, done = self.command(request)
        except StateError as exc:
            return [reply_words("!trap", self._trap(exc), request.tag), reply_words("!done", tag=request.tag)], False
        except ApiProtocolError as exc:  # a malformed query: the router refuses the command, keeps the session
            return [
                reply_words("!trap", {"message": str(exc)}, request.tag),
                reply_words("!done", tag=request.tag),
            ], False
        replies = [reply_words("!re", row, request.tag) for row in rows]
        if done is None and not rows and self.flavour == "v7":
            replies.append(reply_words("!empty", tag=request.tag))
        replies.append(reply_words("!done", done or {}, request.tag))
        return replies, False

    @staticmethod
    def _trap(exc: StateError) -> dict[str, str]:
        category = getattr(exc, "category", None)
        return {"category": str(category), "message": exc.text} if category is not None else {"message": exc.text}

    # -- login ----------------------------------------------------------------------------
    def login(self, request: Request) -> list[Sentence]:
        args = request.attributes
        tag = request.tag
        if not args and self.backend.api_legacy_login:
            self._challenge = secrets.token_bytes(16)
            return [reply_words("!done", {"ret": self._challenge.hex()}, tag)]
        user = None
        if "password" in args:
            user = self.backend.authenticate_api(args.get("name", ""), args["password"], self.peer)
        elif "response" in args and self._challenge is not None:
            user = self.backend.authenticate_api_challenge(
                args.get("name", ""), self._challenge, args["response"], self.peer
            )
        self._challenge = None
        if user is None:
            message = _BAD_LOGIN[self.flavour]
            return [reply_words("!trap", {"message": message}, tag), reply_words("!done", tag=tag)]
        self.user = user
        return [reply_words("!done", tag=tag)]

    # -- commands -------------------------------------------------------------------------
    def command(self, request: Request) -> tuple[list[dict[str, str]], dict[str, str] | None]:
        """(rows, attributes of !done, or None for a print, which may answer !empty)."""
        if request.command == "/cancel":
            return [], {}
        menu, _, verb = request.command.rpartition("/")
        if menu in _MENUS:
            return self.address_list(_MENUS[menu], verb, request)
        if menu in ("/system/resource", "/system/identity") and verb in ("print", "getall"):
            self.require({"read"})
            values = self.resource() if menu == "/system/resource" else {"name": self.state.identity}
            return self.select([values], request), None
        if menu in ("/system/resource", "/system/identity", "/ip/firewall", "/ipv6/firewall"):
            raise StateError("no such command", kind="bad-command")
        raise StateError("no such command prefix", kind="bad-command")

    def require(self, policies) -> None:
        if not frozenset(policies) <= self.state.policies_of(self.user):
            raise StateError("not enough permissions (9)", kind="permission")

    def select(self, records: list[dict[str, str]], request: Request) -> list[dict[str, str]]:
        wanted = compile_query(request.queries)
        proplist = request.proplist
        chosen = [r for r in records if wanted(r)]
        if proplist is None:
            return chosen
        return [{name: r[name] for name in proplist if name in r} for r in chosen]

    def address_list(self, family: int, verb: str, request: Request):
        table = AddressListTable(self.state, family)
        args = request.attributes
        with self.state.lock:
            if verb in ("print", "getall"):
                self.require({"read"})
                unknown = sorted(set(args) - {".proplist"})
                if unknown:
                    raise StateError(f"unknown parameter {unknown[0]}", kind="expected-end")
                return self.select([self.record(e) for e in self.state.entries(family)], request), None
            if verb not in ("add", "set", "remove"):
                raise StateError("no such command", kind="bad-command")
            self.require(table.write_policies)
            allowed = {"add": _ADD_ARGS, "set": _SET_ARGS, "remove": frozenset({".id"})}[verb]
            unknown = sorted(set(args) - allowed)
            if unknown:
                raise StateError(f"unknown parameter {unknown[0]}", kind="expected-end")
            if verb == "add":
                entry = table.add(args, self.user)
                return [], {"ret": entry.id}
            items = [self.state.find_entry(family, self.item_number(text)) for text in self.ids(args)]
            for item in items:
                if verb == "set":
                    table.update(item, {k: v for k, v in args.items() if k != ".id"})
                else:
                    table.remove(item)
            return [], {}

    @staticmethod
    def ids(args: dict[str, str]) -> list[str]:
        ids = [part for part in args.get(".id", "").split(",") if part]
        if not ids:
            raise StateError("missing value(s) of argument(s) .id", kind="other")
        return ids

    @staticmethod
    def item_number(text: str) -> int:
        number = parse_id(text.strip())
        if number is None:
            raise StateError("no such item", kind="no-such-item")
        return number

    def record(self, entry) -> dict[str, str]:
        out = {
            ".id": entry.id,
            "list": entry.list,
            "address": entry.address,
            "creation-time": format_date(entry.created, self.flavour),
        }
        if entry.deadline is not None:
            out["timeout"] = format_duration(max(0.0, entry.deadline - self.state.now()))
        out["dynamic"] = "true" if entry.dynamic else "false"
        out["disabled"] = "true" if entry.disabled else "false"
        if entry.comment:
            out["comment"] = entry.comment
        return out

    def resource(self) -> dict[str, str]:
        profile = self.state.profile
        return {
            "uptime": format_duration(int(self.state.uptime())),
            "version": profile.version,
            "board-name": profile.board_name,
            "architecture-name": profile.architecture,
            "platform": "MikroTik",
        }


# ----------------------------------------------------------------------------- the socket shell


class ApiServer(TcpListener):
    """One listening socket (plain, or TLS with ``context``) and a thread per connection."""

    thread_prefix = "sim-api"

    def __init__(self, backend, context: ssl.SSLContext | None = None) -> None:
        super().__init__()
        self.backend = backend
        self.context = context

    def serve_connection(self, sock: socket.socket, peer: str) -> None:
        stream = None
        try:
            if self.backend.hang:
                self._stopping.wait()  # accept TCP, never say a word
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            stream = self._secure(sock) if self.context is not None else sock
            if stream is not None:
                self._converse(stream, peer)
        except (OSError, ApiProtocolError) as exc:
            log.debug("api connection from %s ended: %s", peer, exc)
        finally:
            if stream is not None and stream is not sock:
                self._untrack(stream)
                close_quietly(stream)
            close_quietly(sock)

    def _secure(self, sock: socket.socket) -> ssl.SSLSocket | None:
        sock.settimeout(_HANDSHAKE_TIMEOUT)
        try:
            stream = self.context.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug("api-ssl handshake failed: %s", exc)
            return None
        self._track(stream)  # drop_connections closes the TLS object too
        return stream

    def _converse(self, stream: socket.socket, peer: str) -> None:
        conversation = ApiConversation(self.backend, peer)
        decoder = SentenceDecoder()
        stream.settimeout(0.2)
        while not self._stopping.is_set():
            logged = conversation.logs.pending()  # what running /log/listen commands have to say
            if logged:
                stream.sendall(b"".join(encode_sentence(reply) for reply in logged))
            try:
                data = stream.recv(65536)
            except TimeoutError:
                continue
            if not data:
                return
            out: list[bytes] = []
            for sentence in decoder.feed(data):
                if not sentence:
                    continue  # an empty sentence is ignored, as RouterOS does
                words = [w.decode("utf-8", errors="replace") for w in sentence]
                if conversation.user is not None and self.backend.hang_exec:
                    self._stopping.wait()
                    return
                if self.backend.latency > 0:
                    time.sleep(self.backend.latency)
                replies, close = conversation.handle(words)
                out.extend(encode_sentence(reply) for reply in replies)
                if close:
                    stream.sendall(b"".join(out))
                    return
            if out:
                stream.sendall(b"".join(out))


def challenge_response(password: str, challenge: bytes) -> str:
    """The pre-6.43 login answer: ``00`` + hex md5(0x00 + password + challenge)."""
    return "00" + hashlib.md5(b"\x00" + password.encode("utf-8") + challenge, usedforsecurity=False).hexdigest()


def check_challenge(password: str, challenge: bytes, response: str) -> bool:
    return hmac.compare_digest(challenge_response(password, challenge), response.strip().lower())


__all__ = [
    "ApiCertificate",
    "ApiConversation",
    "ApiServer",
    "challenge_response",
    "check_challenge",
    "make_certificate",
    "server_context",
]
