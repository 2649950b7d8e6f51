"""What the responder's subcommands share (routers.py, trust.py, provision.py): the exit statuses,
``CommandFailed``, the guard that turns a known failure into one line on stderr, the configuration
and a router looked up by name.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Callable

from bridge.config import ConfigError
from bridge.config.load import load_config
from plumbing.statelock import StateDirBusy
from responder.config import RouterConfig
from responder.ledger import LedgerError
from responder.provision import ProvisionError
from responder.responder import TargetRefused
from responder.routeros.duration import DurationError

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2


class CommandFailed(Exception):
    """A problem the user must fix; printed as one line on stderr, exit status 2."""


def _guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (
            CommandFailed,
            ConfigError,
            LedgerError,
            TargetRefused,
            DurationError,
            ProvisionError,
            StateDirBusy,
        ) as exc:
            print(f"snort-bridge {args.command_name}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except OSError as exc:  # a state file (known_hosts, the ledger's directory) cannot be read or written
            print(f"snort-bridge {args.command_name}: {exc}", file=sys.stderr)
            return EXIT_PARTIAL
        except sqlite3.DatabaseError as exc:  # found while reading: damage, or a full disk while writing
            config = getattr(args, "config", None) or "the configuration"
            print(
                f"snort-bridge {args.command_name}: the ledger in the state_dir of {config} cannot be used: {exc} "
                "(`snort-bridge ledger check` says more)",
                file=sys.stderr,
            )
            return EXIT_PARTIAL

    return run


def _config(args: argparse.Namespace):
    return load_config(getattr(args, "config", None))


def _router(config, name: str) -> RouterConfig:
    for router in config.routers:
        if router.name == name:
            return router
    known = ", ".join(r.name for r in config.routers) or "none configured"
    raise CommandFailed(f"no router named {name!r} in {config.path} (routers: {known})")
