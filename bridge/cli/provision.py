"""snort-bridge provision ROUTER [--apply --admin USER [--admin-key FILE | --admin-password-file FILE] | --check].

Without a flag it prints the RouterOS script (safe to paste twice). ``--apply`` logs in once as an
administrator, runs the script, reads the router back and prints what changed (nothing on a second
run); the administrator's password comes from a private file or a prompt, never the command line.
``--check`` reads the router with the responder's own login and prints one line per item: exit 0
when the router is as provisioned, 1 with each drift and its fix.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import secrets as random_source
import socket
import sys
from collections.abc import Callable

from bridge.cli.command import EXIT_OK, EXIT_PARTIAL, CommandFailed, _config, _guarded, _router
from bridge.cli.trust import trust_host_key
from responder.config import RouterConfig
from responder.errors import RouterError
from responder.provision import (
    ProvisionPlan,
    PublicKey,
    parse_public_key,
    parse_this_host,
    password_source,
    render_provision,
    syslog_port_of,
)
from responder.provision.apply import ReadBackError, apply_plan, check_router, open_ssh, runner
from responder.routeros.printed import router_flavour
from responder.routeros.replies import ReplyParseError

EXIT_USAGE = 2


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "provision",
        help="set a router up: print the RouterOS script, --apply it, or --check the router against it",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help="configuration file")
    parser.set_defaults(func=_guarded(cmd_provision), command_name="provision")
    parser.add_argument("router", metavar="ROUTER")
    parser.add_argument(
        "--this-host",
        metavar="ADDR",
        help="address the router reaches this host at (default: the local address this host uses towards the router)",
    )
    parser.add_argument(
        "--tzsp",
        choices=("mangle", "sniffer", "none"),
        default="mangle",
        help="how the router streams traffic to tzspd (default: mangle sniff-tzsp)",
    )
    parser.add_argument("--tzsp-port", type=int, default=37008, metavar="N")
    parser.add_argument(
        "--flavour",
        choices=("v6", "v7"),
        help="RouterOS major version (default: the router's own with --apply and --check, else v7)",
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--apply", action="store_true", help="log in as --admin, run the script, say what changed")
    what.add_argument("--check", action="store_true", help="compare the router with the script; exit 1 on drift")
    parser.add_argument("--admin", metavar="USER", help="with --apply: an administrator of the router")
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument("--admin-key", metavar="FILE", help="the administrator's private key (mode 0600)")
    secret.add_argument(
        "--admin-password-file",
        metavar="FILE",
        help="a file holding the administrator's password (mode 0600); without either, a prompt asks for it",
    )
    parser.add_argument("--yes", action="store_true", help="with --apply: trust the router's host key without asking")


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


def build_plan(config, cfg: RouterConfig, args: argparse.Namespace) -> ProvisionPlan:
    this_host = parse_this_host(args.this_host or local_address_towards(cfg.host, cfg.port))
    key = _public_key(cfg)
    return ProvisionPlan(
        router=cfg.name,
        router_host=cfg.host,
        this_host=this_host,
        user=cfg.user,
        list_name=cfg.list,
        public_key=key,
        throwaway_password=random_source.token_urlsafe(24) if key is not None else None,
        password_source=password_source(cfg.password_file, cfg.password_env),
        flavour=args.flavour or "v7",
        tzsp=args.tzsp,
        tzsp_port=args.tzsp_port,
        syslog_port=syslog_port_of(config.scan.syslog if config.scan else None),
        memory_logging=bool(config.scan and cfg.name in config.scan.routers),
        scan_ports=config.scan.ports if config.scan else 15,
        transport=cfg.transport,
        api_tls=cfg.tls,
        block_in=cfg.block_in,
    )


def _admin_login(cfg: RouterConfig, args: argparse.Namespace, prompt: Callable[[str], str]) -> tuple:
    """The administrator's login as a RouterConfig (key or password file, checked like the
    responder's own secrets) and a prompted password when neither is given."""
    login = dataclasses.replace(cfg, user=args.admin, key_file=None, password_file=None, password_env=None)
    if args.admin_key:
        return dataclasses.replace(login, key_file=args.admin_key), None
    if args.admin_password_file:
        return dataclasses.replace(login, password_file=args.admin_password_file), None
    password = prompt(f"password of {args.admin} on {cfg.name} ({cfg.host}): ")
    if not password:
        raise CommandFailed("no password given")
    return login, password


def cmd_provision(
    args: argparse.Namespace,
    out=None,
    ask: Callable[[str], str] | None = None,
    prompt: Callable[[str], str] | None = None,
) -> int:
    out = out or sys.stdout
    ask = ask or input  # looked up now, so a test (or a wrapper) can replace them
    prompt = prompt or getpass.getpass
    config = _config(args)
    cfg = _router(config, args.router)
    plan = build_plan(config, cfg, args)
    if not (args.apply or args.check):
        if args.admin or args.admin_key or args.admin_password_file:
            raise CommandFailed("--admin, --admin-key and --admin-password-file go with --apply")
        out.write(render_provision(plan))
        return EXIT_OK
    if cfg.transport != "ssh":
        raise CommandFailed(f"router {cfg.name}: --apply and --check work over SSH; print the script and paste it")
    if args.apply and not args.admin:
        raise CommandFailed("--apply needs --admin USER (an administrator of the router)")
    try:
        if args.check:
            return _check(cfg, plan, out, args.flavour)
        return _apply(cfg, plan, args, out, ask, prompt)
    except (RouterError, ReadBackError, ReplyParseError) as exc:
        print(f"router {cfg.name}: {exc}", file=out)
        return EXIT_PARTIAL


def _with_flavour(plan: ProvisionPlan, run, given: str | None) -> ProvisionPlan:
    """The plan for the router's own RouterOS version unless --flavour named one."""
    if given:
        return plan
    return dataclasses.replace(plan, flavour=router_flavour(run("/system resource print")))


def _check(cfg: RouterConfig, plan: ProvisionPlan, out, flavour: str | None = None) -> int:
    connection = open_ssh(cfg)
    try:
        run = runner(connection, cfg.command_timeout)
        findings = check_router(run, _with_flavour(plan, run, flavour))
    finally:
        connection.close()
    for finding in findings:
        print(finding.line, file=out)
    drift = [f for f in findings if f.drift]
    if drift:
        print(f"router {cfg.name}: {len(drift)} of {len(findings)} items drifted from the provisioning", file=out)
        return EXIT_PARTIAL
    print(f"router {cfg.name}: as provisioned ({len(findings)} items)", file=out)
    return EXIT_OK


def _apply(cfg: RouterConfig, plan: ProvisionPlan, args, out, ask, prompt) -> int:
    login, password = _admin_login(cfg, args, prompt)
    if trust_host_key(cfg, args.yes, out, ask) != EXIT_OK:
        print("not applied: the router's host key is not trusted", file=out)
        return EXIT_PARTIAL
    connection = open_ssh(cfg, login, password)
    try:
        run = runner(connection, cfg.command_timeout)
        result = apply_plan(run, _with_flavour(plan, run, args.flavour))
    finally:
        connection.close()
    for line in result.changed:
        print(line, file=out)
    if not result.changed:
        print(f"router {cfg.name}: no change, it already was as provisioned", file=out)
    for error in result.errors:
        print(f"refused: {error}", file=out)
    for finding in result.drift:
        print(finding.line, file=out)
    if result.errors or result.drift:
        return EXIT_PARTIAL
    print(f"router {cfg.name}: as provisioned ({len(result.findings)} items)", file=out)
    return EXIT_OK
