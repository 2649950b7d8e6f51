"""snort-bridge subcommands of the responder: block, unblock, list, routers, trust (trust: trust.py;
provision: provision.py; what they share: command.py).

bridge/cli/__init__.py builds the ``snort-bridge`` parser and calls ``register(subparsers)``; each
subcommand sets ``func(args) -> int`` (the exit status) and takes ``--config FILE``.
Exit statuses: 0 done; 1 done only in part (a router unreachable or refusing: the rest stays
queued in the ledger for ``snort-bridge run``); 2 bad input or configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable

from bridge.cli.command import EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, CommandFailed, _config, _guarded
from bridge.cli.trust import cmd_trust
from plumbing.statelock import SERVICE, StateDirBusy, StateDirLock
from responder.config import RouterConfig
from responder.errors import RouterError
from responder.events import BlockRequest
from responder.ledger import Ledger, RouterState
from responder.responder import Responder, check_target, default_session_factory, parse_address
from responder.routeros.duration import format_duration, parse_duration
from responder.sync.worker import POLL_INTERVAL


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
    """Start workers, ``act``, wait until every router answered or failed to connect, report, stop.

    Beside a running ``snort-bridge run`` (it holds the state_dir's lock), only the ledger is
    written, in the same transactions the service uses, and the service's workers (which look
    at the ledger every few seconds) do the rest: two sets of workers never edit one router's list.
    """
    lock = StateDirLock(config.state_dir, "snort-bridge block")
    try:
        lock.acquire()
    except StateDirBusy as exc:
        if SERVICE not in exc.holder:  # another command: it is done within its settle time
            lock.acquire(wait=_settle_timeout(config))
        else:
            return _through_running_service(config, address, act, done, out, exc.holder)
    try:
        responder = Responder(config)
        responder.start()
        try:
            print(act(responder), file=out)
            states = responder.wait_settled(address, _settle_timeout(config))
            return _report(states, responder, done, out)
        finally:
            responder.stop(timeout=1.0)
    finally:
        lock.release()


def _through_running_service(config, address, act, done: str, out, holder: str) -> int:
    ledger = Ledger.in_state_dir(config.state_dir)  # as it is: checking and setting aside is the service's
    responder = Responder(config, ledger=ledger)  # not started: the ledger only; the service's workers apply it
    try:
        print(f"{act(responder)}; {holder} sends it to the routers", file=out)
        # its workers poll the ledger every POLL_INTERVAL, then connect and send
        states = responder.wait_settled(address, _settle_timeout(config) + 2 * POLL_INTERVAL)
        return _report(states, responder, done, out)
    finally:
        responder.stop(timeout=1.0)
        ledger.close()


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
