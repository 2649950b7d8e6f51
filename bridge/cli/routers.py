"""snort-bridge subcommands of the responder: block, unblock, list, routers, trust, provision.

bridge/cli/__init__.py builds the ``snort-bridge`` parser and calls ``register(subparsers)``; each
subcommand sets ``func(args) -> int`` (the exit status) and takes ``--config FILE``.
Exit statuses: 0 done; 1 done only in part (a router unreachable or refusing: the rest stays
queued in the ledger for ``snort-bridge run``); 2 bad input or configuration.
"""

from __future__ import annotations

import argparse
import json
import secrets as random_source
import socket
import sys
import threading
import time
from collections.abc import Callable

from bridge.config import ConfigError, load_config
from responder.config import RouterConfig
from responder.errors import RouterError
from responder.events import BlockRequest
from responder.ledger import Ledger, LedgerError, RouterState
from responder.provision import (
    ProvisionError,
    ProvisionPlan,
    PublicKey,
    parse_public_key,
    parse_this_host,
    password_source,
    render_provision,
    syslog_port_of,
)
from responder.responder import Responder, TargetRefused, check_target, default_session_factory, parse_address
from responder.routeros.duration import DurationError, format_duration, parse_duration
from responder.transport import known_hosts

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2


class CommandFailed(Exception):
    """A problem the user must fix; printed as one line on stderr, exit status 2."""


def register(subparsers) -> None:
    def add(name: str, func: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(name, help=help_text, description=help_text)
        # SUPPRESS: never overwrite a --config given to the main parser
        parser.add_argument(
            "--config",
            metavar="FILE",
            default=argparse.SUPPRESS,
            help="configuration file (default: $TZSP_IPS_CONFIG, else /etc/tzsp-ips/config.toml)",
        )
        parser.set_defaults(func=_guarded(func), command_name=name)
        return parser

    block = add("block", cmd_block, "block an address on every router now")
    block.add_argument("address", metavar="ADDR", help="IPv4 or IPv6 address")
    block.add_argument(
        "--for",
        dest="duration",
        metavar="DURATION",
        help="how long, e.g. 30m, 1d2h, 00:05:00 (default: policy.block_for)",
    )
    block.add_argument("--reason", default="manual block", help="comment on the router entry")

    unblock = add("unblock", cmd_unblock, "remove an address from every router")
    unblock.add_argument("address", metavar="ADDR")
    unblock.add_argument(
        "--keep-offences", action="store_true", help="keep its earlier offences, so its next block is still escalated"
    )

    listing = add("list", cmd_list, "blocks in force and their state on each router (from the ledger)")
    listing.add_argument("--json", action="store_true", help="one JSON document for scripts")

    add("routers", cmd_routers, "try every router now: reachable, last error, blocks pending")

    trust = add(
        "trust",
        cmd_trust,
        "show a router's SSH host key fingerprint and record it in known_hosts "
        "(transport api: pin its TLS certificate in <known_hosts>.tls)",
    )
    trust.add_argument("router", metavar="ROUTER", help="router name from the configuration")
    trust.add_argument("--yes", action="store_true", help="record without asking (for scripts)")

    provision = add("provision", cmd_provision, "print the RouterOS script that sets a router up")
    provision.add_argument("router", metavar="ROUTER")
    provision.add_argument(
        "--this-host",
        metavar="ADDR",
        help="address the router reaches this host at (default: the local address this host uses towards the router)",
    )
    provision.add_argument(
        "--tzsp",
        choices=("mangle", "sniffer", "none"),
        default="mangle",
        help="how the router streams traffic to tzspd (default: mangle sniff-tzsp)",
    )
    provision.add_argument("--tzsp-port", type=int, default=37008, metavar="N")
    provision.add_argument("--flavour", choices=("v6", "v7"), default="v7", help="RouterOS major version")


def _guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (CommandFailed, ConfigError, LedgerError, TargetRefused, DurationError, ProvisionError) as exc:
            print(f"snort-bridge {args.command_name}: {exc}", file=sys.stderr)
            return EXIT_USAGE

    return run


def _config(args: argparse.Namespace):
    return load_config(getattr(args, "config", None))


def _router(config, name: str) -> RouterConfig:
    for router in config.routers:
        if router.name == name:
            return router
    known = ", ".join(r.name for r in config.routers) or "none configured"
    raise CommandFailed(f"no router named {name!r} in {config.path} (routers: {known})")


def _settle_timeout(config) -> float:
    """Long enough for a connect, a listing and an add on the slowest configured router."""
    return max((r.connect_timeout + 4 * r.command_timeout for r in config.routers), default=0.0) + 1.0


def _report(states: dict[str, RouterState | None], responder: Responder, done: str, out) -> int:
    errors = {s.name: s.last_error for s in responder.status()}
    complete = True
    for name, state in states.items():
        status = state.status if state else "unknown"
        if status == done:
            print(f"  {name}: {status}", file=out)
            continue
        complete = False
        why = (state.last_error if state and state.last_error else None) or errors.get(name) or "no answer yet"
        queued = "; queued for snort-bridge run" if status in ("pending", "removing") else ""
        print(f"  {name}: {status} ({why}){queued}", file=out)
    return EXIT_OK if complete else EXIT_PARTIAL


# -- block / unblock ------------------------------------------------------------------------


def cmd_block(args: argparse.Namespace, out=None) -> int:
    out = out or sys.stdout
    config = _config(args)
    address = check_target(args.address)
    for network in config.policy.protected:
        if address.version == network.version and address in network:
            raise CommandFailed(f"{address} is in policy.protected ({network}); it is never blocked")
    duration = parse_duration(args.duration) if args.duration else config.policy.block_for
    if duration <= 0:
        raise CommandFailed("--for must be longer than 0s")
    why = f"by hand (--for {args.duration})" if args.duration else f"by hand (block_for {format_duration(duration)})"
    request = BlockRequest(address, duration, args.reason, "", requested_at=time.time(), duration_why=why)

    def act(responder: Responder) -> str:
        outcome = responder.block(request)
        return f"{address}: blocked for {max(0.0, outcome.expires_at - time.time()):.0f}s ({outcome.kind})"

    return _on_every_router(config, address, act, "applied", out)


def cmd_unblock(args: argparse.Namespace, out=None) -> int:
    out = out or sys.stdout
    config = _config(args)
    address = parse_address(args.address)

    def act(responder: Responder) -> str:
        keep = getattr(args, "keep_offences", False)
        was_active = responder.unblock(address, keep_offences=keep)
        offences = "; its offences are kept" if keep else ""
        return f"{address}: {'unblocked' if was_active else 'was not blocked here; removing it anyway'}{offences}"

    return _on_every_router(config, address, act, "removed", out)


def _on_every_router(config, address, act: Callable[[Responder], str], done: str, out) -> int:
    """Start workers, ``act``, wait until every router answered or failed to connect, report, stop."""
    responder = Responder(config)
    responder.start()
    try:
        print(act(responder), file=out)
        states = responder.wait_settled(address, _settle_timeout(config))
        return _report(states, responder, done, out)
    finally:
        responder.stop(timeout=1.0)


# -- list -----------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace, out=None) -> int:
    out = out or sys.stdout
    config = _config(args)
    ledger = Ledger.in_state_dir(config.state_dir)
    try:
        now = time.time()
        records = ledger.blocks(now, offences_since=now - config.policy.remember_for)
    finally:
        ledger.close()
    if args.json:
        json.dump(
            {
                "now": now,
                "blocks": [
                    {
                        "address": str(r.address),
                        "reason": r.reason,
                        "sid": r.sid,
                        "source": r.source,
                        "state": r.state,
                        "first_seen": r.first_seen,
                        "last_seen": r.last_seen,
                        "expires_at": r.expires_at,
                        "expires_in": max(0.0, round(r.expires_at - now, 1)) if r.state == "active" else 0.0,
                        "offences": r.offences,  # blocks of this address within policy.remember_for, this one included
                        "duration": r.duration,
                        "duration_from": r.duration_why,
                        "routers": {
                            name: {
                                "status": s.status,
                                "expires_at": s.expires_at,
                                "last_error": s.last_error,
                                "attempts": s.attempts,
                                "static": s.static,
                            }
                            for name, s in r.routers.items()
                        },
                    }
                    for r in records
                ],
            },
            out,
            indent=2,
        )
        out.write("\n")
        return EXIT_OK
    if not records:
        print("no blocks in force", file=out)
        return EXIT_OK
    rows = [("ADDRESS", "EXPIRES IN", "OFFENCES", "DURATION", "REASON", "ROUTERS")]
    for r in records:
        expires = f"{max(0, r.expires_at - now):.0f}s" if r.state == "active" else "unblocked"
        routers = " ".join(
            f"{name}={s.status}{'(static)' if s.static else ''}" for name, s in sorted(r.routers.items())
        )
        reason = (f"[{r.sid}] " if r.sid else "") + r.reason + (f" [{r.source}]" if r.source else "")
        duration = (
            format_duration(r.duration) + (f" ({r.duration_why})" if r.duration_why else "") if r.duration else "-"
        )
        rows.append((str(r.address), expires, str(r.offences), duration, reason, routers))
    _table(rows, out)
    return EXIT_OK


def _table(rows: list[tuple], out) -> None:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)] + [str(row[-1])]
        print("  ".join(cells).rstrip(), file=out)


# -- routers --------------------------------------------------------------------------------


def probe(cfg: RouterConfig) -> str | None:
    """None if the router answers a command now, else what went wrong."""
    session = default_session_factory(cfg)
    try:
        session.connect()
        session.uptime()
        return None
    except RouterError as exc:
        return str(exc)
    finally:
        session.close()


def cmd_routers(args: argparse.Namespace, out=None, probe_router: Callable[[RouterConfig], str | None] = probe) -> int:
    out = out or sys.stdout
    config = _config(args)
    results: dict[str, str | None] = {}

    def run(cfg: RouterConfig) -> None:
        results[cfg.name] = probe_router(cfg)

    threads = [threading.Thread(target=run, args=(cfg,), daemon=True) for cfg in config.routers]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + _settle_timeout(config)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    ledger = Ledger.in_state_dir(config.state_dir)
    try:
        now = time.time()
        rows = [("ROUTER", "ADDRESS", "REACHABLE", "PENDING", "LAST ERROR")]
        all_ok = True
        for cfg in config.routers:
            if cfg.name in results:
                error = results[cfg.name]
            else:
                error = f"router {cfg.name}: no answer within {_settle_timeout(config):.0f}s"
            all_ok = all_ok and error is None
            recorded = ledger.router_meta(cfg.name).last_error
            shown = error or (f"(earlier) {recorded}" if recorded else "-")
            rows.append(
                (
                    cfg.name,
                    f"{cfg.host}:{cfg.port}",
                    "yes" if error is None else "no",
                    str(ledger.pending_count(cfg.name, now)),
                    shown,
                )
            )
    finally:
        ledger.close()
    if not config.routers:
        print("no routers configured", file=out)
        return EXIT_USAGE
    _table(rows, out)
    return EXIT_OK if all_ok else EXIT_PARTIAL


# -- trust ----------------------------------------------------------------------------------


def cmd_trust(args: argparse.Namespace, out=None, ask: Callable[[str], str] = input) -> int:
    from responder.transport.ssh import fetch_host_key, key_fingerprint

    out = out or sys.stdout
    config = _config(args)
    cfg = _router(config, args.router)
    if cfg.transport == "api":
        return _trust_certificate(cfg, args.yes, out, ask)
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
        args.yes,
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


# -- provision ------------------------------------------------------------------------------


def local_address_towards(host: str, port: int) -> str:
    """The source address this host would use to reach ``host`` (a UDP connect sends nothing)."""
    try:
        family, _, _, _, target = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect(target)
            return sock.getsockname()[0]
    except (OSError, IndexError) as exc:
        raise CommandFailed(f"cannot tell which address reaches {host} ({exc}); give --this-host ADDR") from None


def _public_key(cfg: RouterConfig) -> PublicKey | None:
    if not cfg.key_file:
        return None
    try:
        with open(cfg.key_file + ".pub", encoding="ascii", errors="replace") as handle:
            return parse_public_key(handle.read())
    except FileNotFoundError:
        pass
    from responder.transport.secrets import load_private_key

    try:
        pkey = load_private_key(cfg)
    except RouterError as exc:
        raise CommandFailed(str(exc)) from None
    return parse_public_key(f"{pkey.get_name()} {pkey.get_base64()}")


def cmd_provision(args: argparse.Namespace, out=None) -> int:
    out = out or sys.stdout
    config = _config(args)
    cfg = _router(config, args.router)
    this_host = parse_this_host(args.this_host or local_address_towards(cfg.host, cfg.port))
    key = _public_key(cfg)
    plan = ProvisionPlan(
        router=cfg.name,
        router_host=cfg.host,
        this_host=this_host,
        user=cfg.user,
        list_name=cfg.list,
        public_key=key,
        throwaway_password=random_source.token_urlsafe(24) if key is not None else None,
        password_source=password_source(cfg.password_file, cfg.password_env),
        flavour=args.flavour,
        tzsp=args.tzsp,
        tzsp_port=args.tzsp_port,
        syslog_port=syslog_port_of(config.scan.syslog if config.scan else None),
        scan_ports=config.scan.ports if config.scan else 15,
        transport=cfg.transport,
        api_tls=cfg.tls,
    )
    out.write(render_provision(plan))
    return EXIT_OK
