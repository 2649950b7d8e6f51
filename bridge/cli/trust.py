"""snort-bridge trust ROUTER [--yes]: show a router's SSH host key and record it in known_hosts, or
(transport api) pin its TLS certificate in <known_hosts>.tls. routers.py registers the subcommand;
provision.py uses ``trust_host_key`` before ``--apply``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from bridge.cli.command import EXIT_OK, EXIT_PARTIAL, CommandFailed, _config, _router
from responder.config import RouterConfig
from responder.errors import RouterError
from responder.transport import known_hosts


def cmd_trust(args: argparse.Namespace, out=None, ask: Callable[[str], str] = input) -> int:
    out = out or sys.stdout
    config = _config(args)
    cfg = _router(config, args.router)
    if cfg.transport == "api":
        return _trust_certificate(cfg, args.yes, out, ask)
    return trust_host_key(cfg, args.yes, out, ask)


def trust_host_key(cfg: RouterConfig, yes: bool, out, ask: Callable[[str], str] = input) -> int:
    """Show the router's SSH host key and record it in known_hosts once the user confirms it
    (EXIT_OK: trusted now or already; EXIT_PARTIAL: not confirmed)."""
    from responder.transport.ssh import fetch_host_key, key_fingerprint

    try:
        key = fetch_host_key(cfg.host, cfg.port, timeout=cfg.connect_timeout)
    except RouterError as exc:
        raise CommandFailed(str(exc)) from None
    name = cfg.known_hosts_key
    fingerprint = key_fingerprint(key)
    verdict = known_hosts.check(known_hosts.load(cfg.known_hosts), name, key.asbytes())
    print(f"router {cfg.name} ({name}) offers a {key.get_name()} host key {fingerprint}", file=out)
    if verdict == known_hosts.OK:
        print(f"already trusted in {cfg.known_hosts}", file=out)
        return EXIT_OK
    if verdict == known_hosts.REVOKED:
        raise CommandFailed(f"that key is marked @revoked in {cfg.known_hosts}; not recording it")
    if verdict == known_hosts.CHANGED:
        print(
            f"WARNING: {cfg.known_hosts} holds a DIFFERENT key for {name}. If the router was not "
            "reinstalled or re-keyed, someone may be intercepting the connection.",
            file=out,
        )
    if not _confirmed(
        yes,
        ask,
        out,
        "Compare it with the router's own: /ip ssh print (or the key on its console).",
        f"Record this key for {name} in {cfg.known_hosts}? [y/N] ",
    ):
        return EXIT_PARTIAL
    try:
        known_hosts.record(cfg.known_hosts, name, key.get_name(), key.asbytes())
    except OSError as exc:
        raise CommandFailed(f"cannot write {cfg.known_hosts}: {exc.strerror or exc}") from None
    print(f"recorded in {cfg.known_hosts}", file=out)
    return EXIT_OK


def _confirmed(yes: bool, ask: Callable[[str], str], out, hint: str, question: str) -> bool:
    """True if ``--yes`` was given or the user answers y; otherwise says "not recorded"."""
    if yes:
        return True
    print(hint, file=out)
    out.flush()
    try:
        answer = ask(question)
    except EOFError:
        answer = ""
    if answer.strip().lower() in ("y", "yes"):
        return True
    print("not recorded", file=out)
    return False


def _trust_certificate(cfg: RouterConfig, yes: bool, out, ask: Callable[[str], str]) -> int:
    """transport = "api": pin the api-ssl certificate's SHA-256 in <known_hosts>.tls (see responder/transport/tls.py)."""
    import ssl

    from responder.transport import tls

    where = f"{cfg.host}:{cfg.port}"
    if not cfg.tls:
        raise CommandFailed(
            f"router {cfg.name} uses the plain API (tls = false): there is no certificate to "
            "trust, and the password crosses the network unencrypted; set tls = true (port 8729)"
        )
    try:
        der = tls.fetch_certificate(cfg.host, cfg.port, cfg.connect_timeout)
    except (OSError, ssl.SSLError, ValueError) as exc:
        if tls.offers_only_anonymous(cfg.host, cfg.port, cfg.connect_timeout):
            raise CommandFailed(
                f"router {cfg.name}: api-ssl on {where} has no certificate; {tls.CERTIFICATE_HOWTO}"
            ) from None
        raise CommandFailed(f"router {cfg.name}: cannot fetch the certificate of {where}: {exc}") from None
    digest = tls.certificate_digest(der)
    path = tls.pin_path(cfg)
    print(f"router {cfg.name} ({where}) offers a certificate {tls.show_fingerprint(digest)}", file=out)
    print(f"  {tls.describe_certificate(der)}", file=out)
    if cfg.fingerprint or cfg.ca_file:
        print(
            "note: the configuration sets "
            + ("fingerprint" if cfg.fingerprint else "ca_file")
            + f"; the pin file {path} is used only when neither is set",
            file=out,
        )
    verdict = tls.pin_verdict(cfg, digest)
    if verdict == known_hosts.OK:
        print(f"already pinned in {path}", file=out)
        return EXIT_OK
    if verdict == known_hosts.REVOKED:
        raise CommandFailed(f"that certificate is marked @revoked in {path}; not recording it")
    if verdict == known_hosts.CHANGED:
        print(
            f"WARNING: {path} pins a DIFFERENT certificate for {tls.pin_name(cfg)}. If the router's certificate "
            "was not replaced, someone may be intercepting the connection.",
            file=out,
        )
    if not _confirmed(
        yes,
        ask,
        out,
        "Compare it with the router's own: /certificate print detail (fingerprint).",
        f"Pin this certificate for {tls.pin_name(cfg)} in {path}? [y/N] ",
    ):
        return EXIT_PARTIAL
    try:
        tls.record_pin(cfg, digest)
    except OSError as exc:
        raise CommandFailed(f"cannot write {path}: {exc.strerror or exc}") from None
    print(f"recorded in {path}", file=out)
    return EXIT_OK
