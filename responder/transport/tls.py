"""TLS for the RouterOS API (api-ssl, port 8729): the router's certificate is always verified.

Two ways, per router:
  - ``ca_file``: the certificate must chain to that CA and name the router's host (IP or DNS
    subjectAltName), as for any TLS server;
  - a pin: the SHA-256 of the router's certificate (DER), from ``fingerprint`` in the
    configuration, else from the pin file that ``snort-bridge trust ROUTER`` writes:
    ``<known_hosts>.tls``, in known_hosts format with the key type ``x509-sha256`` and the
    32-byte digest as the key (``[192.0.2.1]:8729 x509-sha256 q2Fz...``); ``@revoked`` works too.
With neither, the connection is refused before anything is sent. There is no "verify off".

A pinned certificate is checked right after the handshake, before a single API word (and so the
password) is sent. RouterOS's api-ssl without a certificate offers only anonymous (EC)DH, which
gives no way to know who answers; that is refused with the commands that make a certificate.
"""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
import time
from dataclasses import dataclass

from responder.config import RouterConfig
from responder.errors import HostKeyRefused, RouterUnreachable
from responder.transport import known_hosts

PIN_KEY_TYPE = "x509-sha256"
_HEX_RE = re.compile(r"^(?:sha256:)?((?:[0-9a-f]{2}:?){31}[0-9a-f]{2})$")

CERTIFICATE_HOWTO = (
    "on the router: /certificate add name=api common-name=ROUTER-ADDRESS subject-alt-name=IP:ROUTER-ADDRESS "
    "days-valid=3650 key-usage=digital-signature,key-encipherment,tls-server; /certificate sign api; "
    "/ip service set api-ssl certificate=api; then here: snort-bridge trust ROUTER "
    "(or sign it with your own CA and set ca_file); `snort-bridge provision ROUTER` prints these lines"
)


def parse_fingerprint(text: str) -> bytes:
    """``sha256:AB:CD...``, ``AB:CD...`` or 64 hex digits -> the 32 digest bytes (ValueError otherwise)."""
    match = _HEX_RE.match(text.strip().lower())
    if not match:
        raise ValueError(f"not a SHA-256 fingerprint (64 hex digits, colons allowed): {text!r}")
    return bytes.fromhex(match.group(1).replace(":", ""))


def show_fingerprint(digest: bytes) -> str:
    """``SHA256:AB:CD:...``, the form ``openssl x509 -fingerprint -sha256`` and RouterOS print."""
    return "SHA256:" + ":".join(f"{b:02X}" for b in digest)


def certificate_digest(der: bytes) -> bytes:
    return hashlib.sha256(der).digest()


def pin_path(cfg: RouterConfig) -> str:
    return cfg.known_hosts + ".tls"


def pin_name(cfg: RouterConfig) -> str:
    return known_hosts.host_name(cfg.host, cfg.port)


def pin_verdict(cfg: RouterConfig, digest: bytes) -> str:
    """known_hosts.OK / UNKNOWN / CHANGED / REVOKED for this certificate in the pin file."""
    return known_hosts.check(known_hosts.load(pin_path(cfg)), pin_name(cfg), digest)


def record_pin(cfg: RouterConfig, digest: bytes) -> None:
    known_hosts.record(pin_path(cfg), pin_name(cfg), PIN_KEY_TYPE, digest)


@dataclass(frozen=True)
class TlsPolicy:
    """How this router's certificate is judged: by a CA, by a configured pin, or by the pin file."""

    ca_file: str | None
    pin: bytes | None  # from the configuration; None = look in the pin file (when no ca_file)


def policy_for(cfg: RouterConfig) -> TlsPolicy:
    pin = parse_fingerprint(cfg.fingerprint) if cfg.fingerprint else None
    return TlsPolicy(cfg.ca_file, pin)


def client_context(policy: TlsPolicy) -> ssl.SSLContext:
    """With a CA: full verification (chain and host name). Otherwise the chain is not judged by
    OpenSSL, because the pin (checked by ``secure`` before anything is sent) is the verification."""
    if policy.ca_file:
        context = ssl.create_default_context(cafile=policy.ca_file)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def secure(sock: socket.socket, cfg: RouterConfig, deadline: float) -> ssl.SSLSocket:
    """TLS over ``sock`` to router ``cfg`` within ``deadline`` (monotonic), its certificate verified.

    Raises HostKeyRefused (certificate not trusted, no certificate at all) or RouterUnreachable.
    """
    name, where = cfg.name, f"{cfg.host}:{cfg.port}"
    policy = policy_for(cfg)
    if not policy.ca_file and policy.pin is None and not known_hosts.load(pin_path(cfg)):
        raise HostKeyRefused(
            name,
            f"no way to verify the api-ssl certificate of {where}: set ca_file or "
            f"fingerprint, or run `snort-bridge trust {name}`",
        )
    try:
        context = client_context(policy)
    except (OSError, ssl.SSLError) as exc:
        raise HostKeyRefused(name, f"cannot use ca_file {policy.ca_file}: {exc}") from None
    sock.settimeout(max(0.01, deadline - time.monotonic()))
    try:
        stream = context.wrap_socket(sock, server_hostname=cfg.host if policy.ca_file else None)
    except ssl.SSLCertVerificationError as exc:
        raise HostKeyRefused(
            name,
            f"the api-ssl certificate of {where} is not trusted: {exc.verify_message} "
            f"(checked against ca_file {policy.ca_file})",
            reason="unverified",
        ) from None
    except ssl.SSLError as exc:
        remaining = max(0.5, deadline - time.monotonic())
        if offers_only_anonymous(cfg.host, cfg.port, remaining):
            raise HostKeyRefused(
                name,
                f"api-ssl on {where} has no certificate (it offers only anonymous DH, "
                f"which cannot show who answers); {CERTIFICATE_HOWTO}",
                reason="no-certificate",
            ) from None
        raise RouterUnreachable(name, f"TLS handshake with {where} failed: {exc.reason or exc}") from None
    except TimeoutError:
        raise RouterUnreachable(name, f"TLS handshake with {where} timed out ({cfg.connect_timeout:g}s)") from None
    except OSError as exc:
        raise RouterUnreachable(name, f"TLS handshake with {where} failed: {exc.strerror or exc}") from None
    if policy.ca_file and policy.pin is None:
        return stream
    der = stream.getpeercert(binary_form=True) or b""
    _check_pin(cfg, policy, certificate_digest(der), stream)
    return stream


def _check_pin(cfg: RouterConfig, policy: TlsPolicy, digest: bytes, stream: ssl.SSLSocket) -> None:
    offered = show_fingerprint(digest)
    where = f"{cfg.host}:{cfg.port}"
    if policy.pin is not None:
        if digest == policy.pin:
            return
        verdict, source = known_hosts.CHANGED, "the fingerprint in the configuration"
    else:
        verdict, source = pin_verdict(cfg, digest), pin_path(cfg)
        if verdict == known_hosts.OK:
            return
    stream.close()
    what = {known_hosts.UNKNOWN: "is not pinned", known_hosts.REVOKED: "is marked @revoked"}.get(
        verdict, "DIFFERS from the pinned one (a re-keyed router, or someone in between)"
    )
    raise HostKeyRefused(
        cfg.name,
        f"the api-ssl certificate of {where} ({offered}) {what} in {source}; "
        f"check it and run `snort-bridge trust {cfg.name}`",
        fingerprint=offered,
        reason=verdict,
    )


def fetch_certificate(host: str, port: int, timeout: float) -> bytes:
    """The DER certificate a TLS server offers (nothing else is sent); for ``snort-bridge trust``.

    Raises OSError / ssl.SSLError as they come; ValueError if the server showed no certificate.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only to read the certificate, which the user then judges
    with socket.create_connection((host, port), timeout=timeout) as sock:
        with context.wrap_socket(sock) as stream:
            der = stream.getpeercert(binary_form=True)
    if not der:
        raise ValueError(f"{host}:{port} showed no certificate")
    return der


def offers_only_anonymous(host: str, port: int, timeout: float) -> bool:
    """True if the server completes a handshake with anonymous ciphers (api-ssl without a certificate)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.set_ciphers("aNULL:@SECLEVEL=0")
        with socket.create_connection((host, port), timeout=timeout) as sock:
            with context.wrap_socket(sock):
                return True  # handshake done, nothing sent; closed at once
    except (OSError, ssl.SSLError, ValueError):
        return False


def describe_certificate(der: bytes) -> str:
    """``subject CN=..., issuer CN=..., valid until 2036-01-01`` for the trust prompt."""
    from cryptography import x509

    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return "an unreadable certificate"
    until = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after
    issuer = "self-signed" if cert.issuer == cert.subject else f"issuer {cert.issuer.rfc4514_string()}"
    return f"subject {cert.subject.rfc4514_string()}, {issuer}, valid until {until:%Y-%m-%d}"
