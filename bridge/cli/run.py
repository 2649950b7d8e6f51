"""``snort-bridge run``: the service, with the signals systemd sends it (see bridge/service/)."""

from __future__ import annotations

import argparse
import logging
import signal

from bridge.cli import config_path
from bridge.config.load import load_config
from bridge.service.service import Service
from bridge.service.stderr_log import setup_logging
from plumbing.statelock import StateDirBusy
from responder.ledger import LedgerError

log = logging.getLogger("snort-bridge")


def run_service(args: argparse.Namespace) -> int:
    setup_logging(verbose=getattr(args, "verbose", False), buffered=True)
    config = load_config(config_path(args))  # ConfigError -> exit 2 with every problem, by cli.main
    service = Service(config)
    signal.signal(signal.SIGTERM, service.request_stop)
    signal.signal(signal.SIGINT, service.request_stop)
    signal.signal(signal.SIGHUP, service.request_reload)
    signal.signal(signal.SIGUSR1, service.request_report)  # before start(): its log line means "ready"
    try:
        service.start()
    except StateDirBusy as exc:
        log.error("cannot start: %s; one snort-bridge run per state_dir (stop that one first)", exc)
        return 1
    except (OSError, LedgerError) as exc:
        log.error("cannot start: %s", exc)
        return 1
    return service.run()


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "run",
        help="follow the alerts and block on the routers",
        description="The service: follow the alert files (and RouterOS firewall logs for the scan detector), "
        "decide, and block on every router. SIGHUP reloads the configuration, SIGTERM stops cleanly.",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="also log every decision that does not block")
    run.set_defaults(func=run_service)
