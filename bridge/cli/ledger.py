"""snort-bridge ledger check | rebuild-from-routers: the ledger file by hand.

``check`` reads only (it works beside a running ``snort-bridge run``): SQLite's quick check, and
what the ledger holds. ``rebuild-from-routers`` sets the ledger aside (never deletes it) and fills
a new one from the entries the routers hold with our comment; it needs the state_dir to itself,
so it refuses while the service runs (which does the same on its own when it finds the ledger
damaged at start).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import sys
import time

from bridge.config import ConfigError
from bridge.config.load import load_config
from plumbing.statelock import StateDirBusy, StateDirLock
from responder.ledger import LEDGER_FILE, Ledger, LedgerError
from responder.ledger.adoption import request_adoption, routers_to_adopt
from responder.ledger.damage import move_aside, problem_of, what_it_held

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "ledger", help="check the ledger, or rebuild it from the routers", description=__doc__.split("\n\n")[0]
    )
    actions = parser.add_subparsers(dest="ledger_command", metavar="ACTION")
    check = actions.add_parser("check", help="SQLite's quick check of the ledger, and what it holds (read-only)")
    check.set_defaults(func=_guarded(cmd_check))
    rebuild = actions.add_parser(
        "rebuild-from-routers",
        help="set the ledger aside and fill a new one from our entries on the routers (snort-bridge run stopped)",
    )
    rebuild.set_defaults(func=_guarded(cmd_rebuild))
    parser.set_defaults(func=lambda args: (parser.print_help(sys.stderr), EXIT_USAGE)[1])


def _guarded(func):
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (LedgerError, StateDirBusy, OSError, sqlite3.Error) as exc:
            print(f"snort-bridge ledger {args.ledger_command}: {exc}", file=sys.stderr)
            return EXIT_FAILED

    return run


def _path(config) -> str:
    return os.path.join(config.state_dir, LEDGER_FILE)


def cmd_check(args: argparse.Namespace, out=None) -> int:
    out = out or sys.stdout
    config = load_config(getattr(args, "config", None))
    path = _path(config)
    if not os.path.exists(path):
        print(f"{path}: no ledger yet (snort-bridge run or block starts one)", file=out)
        return EXIT_OK
    now = time.time()
    problem = problem_of(path)
    if problem is not None:
        print(f"{path}: DAMAGED: {problem}", file=out)
        print(f"  it holds {what_it_held(path, now)}", file=out)
        print(
            "  snort-bridge run sets it aside and rebuilds it from the routers at its next start; "
            "by hand: stop it, then snort-bridge ledger rebuild-from-routers",
            file=out,
        )
        return EXIT_FAILED
    print(f"{path}: OK (quick_check), {what_it_held(path, now)}", file=out)
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)) as conn:
        waiting = [row[0] for row in conn.execute("SELECT router FROM adoption ORDER BY router")]
    if waiting:
        print(f"  entries still to take back from: {', '.join(waiting)}", file=out)
    return EXIT_OK


def cmd_rebuild(args: argparse.Namespace, out=None) -> int:
    out = out or sys.stdout
    config = load_config(getattr(args, "config", None))
    if not config.routers:
        raise ConfigError(["routers: no [[routers]] to rebuild the ledger from"], config.path)
    try:
        lock = StateDirLock(config.state_dir, "snort-bridge ledger").acquire()
    except StateDirBusy as exc:
        print(
            f"snort-bridge ledger rebuild-from-routers: {exc}; stop it first (it sets a damaged ledger aside "
            "and rebuilds it by itself at start)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    try:
        return _rebuild(config, out)
    finally:
        lock.release()


def _rebuild(config, out) -> int:
    from responder.responder import Responder  # paramiko only when there is a router to talk to

    path = _path(config)
    now = time.time()
    if os.path.exists(path):
        held = what_it_held(path, now)
        moved = move_aside(path, now)
        print(f"{path} moved aside to {moved} (it held {held})", file=out)
    ledger = Ledger(path)
    names = [router.name for router in config.routers]
    request_adoption(ledger, names, now)
    responder = Responder(config, ledger=ledger)
    responder.start()
    try:
        deadline = time.monotonic() + max(r.connect_timeout + 4 * r.command_timeout for r in config.routers) + 1.0
        while routers_to_adopt(ledger) and time.monotonic() < deadline:
            time.sleep(0.2)
        waiting = set(routers_to_adopt(ledger))
        for status in responder.status():
            if status.name in waiting:
                why = status.last_error or "no answer yet"
                print(
                    f"  {status.name}: not read ({why}); snort-bridge run takes its entries back when it reaches it",
                    file=out,
                )
                continue
            rows = ledger.router_blocks(status.name, ("applied",))
            static = sum(1 for row in rows if row.static)
            print(
                f"  {status.name}: {len(rows)} entr{'y' if len(rows) == 1 else 'ies'} taken back ({static} static)",
                file=out,
            )
    finally:
        responder.stop(timeout=2.0)
        ledger.close()
    return EXIT_FAILED if waiting else EXIT_OK
