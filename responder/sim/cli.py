"""``routeros-sim``: run a simulated RouterOS router to try a setup before touching a real one.

Secrets stay off the command line: the password comes from a file (``--password-file``) or an
environment variable (``--password-env``); ``--password PW`` is accepted for the documented
contract but warns that every user of the machine can read it in ``ps``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import threading
from pathlib import Path

import paramiko

from responder.sim.server import SimRouter
from responder.sim.wire.api_server import ApiCertificate, make_certificate
from responder.transport.ssh import key_fingerprint


class UsageError(Exception):
    """A bad option value; main() prints it and exits 2."""


def default_host_key_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "routeros-sim" / "ssh_host_rsa_key"


def load_or_create_host_key(path: Path) -> tuple[paramiko.PKey, bool]:
    """The key in ``path`` (RSA or Ed25519), or a new RSA 2048 key saved there (mode 0600)."""
    if path.exists():
        for cls in (paramiko.RSAKey, paramiko.Ed25519Key):
            try:
                return cls.from_private_key_file(str(path)), False
            except (paramiko.SSHException, ValueError):
                continue
        raise UsageError(f"--host-key {path}: not an unencrypted RSA or Ed25519 private key")
    key = paramiko.RSAKey.generate(2048)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        key.write_private_key(handle)
    return key, True


def api_certificate_path(host_key_path: Path) -> Path:
    return host_key_path.with_name("api_ssl.pem")


def load_or_create_certificate(path: Path, identity: str) -> ApiCertificate:
    """The api-ssl certificate and key (one PEM file, mode 0600), or a new self-signed one saved there."""
    if path.exists():
        text = path.read_bytes()
        cert_end = text.find(b"-----END CERTIFICATE-----")
        if cert_end < 0 or b"PRIVATE KEY-----" not in text:
            raise UsageError(f"{path}: expected a PEM certificate followed by its private key")
        cut = cert_end + len(b"-----END CERTIFICATE-----\n")
        return ApiCertificate(text[:cut], text[cut:])
    certificate = make_certificate(identity, hosts=("127.0.0.1", "::1", "localhost"))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(certificate.cert_pem + certificate.key_pem)
    return certificate


def read_password(args: argparse.Namespace) -> str | None:
    if args.password_file:
        try:
            text = Path(args.password_file).read_text()
        except OSError as exc:
            raise UsageError(f"--password-file {args.password_file}: {exc.strerror}") from None
        return text.rstrip("\r\n")
    if args.password_env:
        value = os.environ.get(args.password_env)
        if value is None:
            raise UsageError(f"--password-env {args.password_env}: the variable is not set")
        return value
    if args.password is not None:
        print(
            "routeros-sim: warning: --password is visible to every user in `ps`; "
            "prefer --password-file or --password-env",
            file=sys.stderr,
        )
        return args.password
    return None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="routeros-sim", description=__doc__.splitlines()[0])
    p.add_argument("--listen", default="127.0.0.1", metavar="ADDR", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=2222, metavar="N", help="SSH port (default 2222)")
    p.add_argument("--api-port", type=int, metavar="N", help="also serve the RouterOS API on this port (real: 8728)")
    p.add_argument(
        "--api-ssl-port",
        type=int,
        metavar="N",
        help="also serve the API over TLS on this port (real: 8729); the certificate is kept beside the host key",
    )
    p.add_argument(
        "--api-ssl-anonymous",
        action="store_true",
        help="api-ssl without a certificate: anonymous DH only (what a router offers before /certificate)",
    )
    p.add_argument("--user", default="admin", metavar="NAME", help="login name (default admin)")
    secret = p.add_mutually_exclusive_group()
    secret.add_argument("--password-file", metavar="FILE", help="file whose first line is the password")
    secret.add_argument("--password-env", metavar="VAR", help="environment variable holding the password")
    secret.add_argument("--password", metavar="PW", help=argparse.SUPPRESS)
    p.add_argument(
        "--authorized-key",
        action="append",
        default=[],
        metavar="FILE",
        help="OpenSSH public key file the user may log in with (repeatable); disables password login",
    )
    p.add_argument(
        "--policy", default="ssh,read,write", metavar="LIST", help="the user's group policies (default ssh,read,write)"
    )
    p.add_argument("--user-address", metavar="CIDR[,CIDR]", help="where the user may log in from (/user address=)")
    p.add_argument(
        "--host-key",
        metavar="FILE",
        type=Path,
        help=f"host private key; created if missing (default {default_host_key_path()})",
    )
    p.add_argument("--flavour", choices=("v6", "v7"), default="v7", help="RouterOS major version to imitate")
    p.add_argument("--identity", default="MikroTik", metavar="NAME", help="/system identity name")
    p.add_argument(
        "--parse-error-exit",
        type=int,
        choices=(0, 1),
        default=0,
        help="exit status for lines the router cannot parse (real routers give 0 or 1)",
    )
    p.add_argument("--latency", type=float, default=0.0, metavar="SECONDS", help="delay before each command")
    p.add_argument(
        "--replay",
        metavar="FILE",
        type=Path,
        help="pcap/pcapng (Ethernet) to pass through the router's firewall, as arriving on ether1: "
        "its filter rules log to /system logging (remote syslog, and /log in memory); by default once "
        "a logging rule sends firewall messages to a remote action (after `snort-bridge provision`), "
        "or once a filter rule logs and a client follows /log (snort-bridge's [scan] routers)",
    )
    p.add_argument(
        "--replay-after",
        type=float,
        metavar="SECONDS",
        help="replay that many seconds after start instead, whatever the logging set-up",
    )
    return p


def replay_when_ready(sim: SimRouter, path: Path, after: float | None, stop: threading.Event) -> None:
    """The --replay thread: wait (a fixed time, or until firewall log lines go to a remote host or
    a client follows /log, as snort-bridge's [scan] routers does), then replay."""
    from tzsp.capture_files import CaptureError

    if after is not None:
        if stop.wait(after):
            return
    else:
        while not (sim.logs_remotely() or sim.log_is_followed()):
            if stop.wait(0.5):
                return
    try:
        count = sim.receive_capture(path)
    except CaptureError as exc:
        print(f"routeros-sim: --replay: {exc}", file=sys.stderr, flush=True)
        return
    print(
        f"routeros-sim: replayed {count} packets of {path} through the firewall; "
        f"{sim.log_datagrams_sent} log line(s) sent to remote logging",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        password = read_password(args)
        if args.replay is not None and not args.replay.is_file():
            raise UsageError(f"--replay {args.replay}: no such file")
        host_key, created = load_or_create_host_key(args.host_key or default_host_key_path())
        keys = []
        for path in args.authorized_key:
            try:
                keys.extend(line for line in Path(path).read_text().splitlines() if line.strip())
            except OSError as exc:
                raise UsageError(f"--authorized-key {path}: {exc.strerror}") from None
        generated = password is None and not keys
        if generated:
            password = secrets.token_urlsafe(12)
        sim = SimRouter(
            flavour=args.flavour,
            host_key=host_key,
            identity=args.identity,
            parse_error_exit=args.parse_error_exit,
            latency=args.latency,
        )
        try:
            sim.add_user(
                args.user,
                password=password,
                authorized_keys=keys,
                policies=[p.strip() for p in args.policy.split(",") if p.strip()],
                address=args.user_address,
            )
        except Exception as exc:  # StateError from a bad policy/address/key, with RouterOS's text
            raise UsageError(f"user {args.user}: {getattr(exc, 'text', exc)}") from None
        if args.api_ssl_port is not None:
            sim.api_certificate = (
                None
                if args.api_ssl_anonymous
                else load_or_create_certificate(
                    api_certificate_path(args.host_key or default_host_key_path()), args.identity
                )
            )
        port = sim.start(args.listen, args.port)
        api_ports = {
            tls: sim.start_api(args.listen, wanted, tls=tls)
            for tls, wanted in ((False, args.api_port), (True, args.api_ssl_port))
            if wanted is not None
        }
    except UsageError as exc:
        print(f"routeros-sim: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"routeros-sim: cannot listen on {args.listen}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1

    key_path = args.host_key or default_host_key_path()
    host = f"[{args.listen}]" if ":" in args.listen else args.listen
    print(f'routeros-sim {args.flavour} "{args.identity}" listening on {host}:{port} (SSH)')
    print(
        f"host key: {host_key.get_name()} {host_key.get_bits()} {key_fingerprint(host_key)}"
        f" ({'created in' if created else 'from'} {key_path})"
    )
    for tls, api_port in api_ports.items():
        print(
            f"RouterOS API{'-SSL' if tls else ''} on {host}:{api_port} (user needs the api policy: --policy api,read,write)"
        )
    if api_ports.get(True):
        if sim.api_certificate is None:
            print("api-ssl certificate: none (anonymous DH only; verifying clients refuse it)")
        else:
            digest = sim.api_certificate.sha256.upper()
            print(
                "api-ssl certificate: SHA256:"
                + ":".join(digest[i : i + 2] for i in range(0, 64, 2))
                + f" ({api_certificate_path(key_path)})"
            )
    if generated:
        print(f"user {args.user}: generated password {password} (give --password-file or --authorized-key to choose)")
    print(f"try: ssh -p {port} {args.user}@{args.listen} '/ip firewall address-list print'")
    print(f"  or ssh -p {port} {args.user}@{args.listen} for its terminal (/quit leaves)")
    print("Ctrl-C stops.", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.replay is not None:
        when = (
            f"in {args.replay_after:g} s"
            if args.replay_after is not None
            else "once firewall logging goes to a remote host or /log is followed"
        )
        print(f"replaying {args.replay} through the firewall {when}", flush=True)
        threading.Thread(
            target=replay_when_ready, args=(sim, args.replay, args.replay_after, stop), name="replay", daemon=True
        ).start()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    sim.stop()
    print("routeros-sim: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
