"""`snort-bridge notify test`: send a test message to every configured URL and say which worked."""

from __future__ import annotations

import argparse
import socket
import sys


def run_test(args: argparse.Namespace) -> int:
    from bridge.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, load_for
    from bridge.config import ConfigError
    from bridge.notify.delivery import make_endpoints, read_urls
    from bridge.notify.messages import test_message

    config, _ = load_for(args)
    if config.notify is None:
        raise ConfigError(["notify: no [notify] table; expected one with urls_file or urls_env to test"], config.path)
    try:
        urls, key = read_urls(config.notify)
        endpoints = make_endpoints(urls, key)
    except ConfigError as exc:
        exc.path = config.path
        raise
    message = test_message(socket.gethostname())
    failed = 0
    for number, endpoint in enumerate(endpoints, 1):
        outcome = endpoint.send(message)
        if outcome.ok:
            print(f"OK      {number}: {endpoint.label}", flush=True)
        else:
            failed += 1
            print(f"FAILED  {number}: {endpoint.label}: {outcome.error}", flush=True)
    if failed:
        print(f"snort-bridge: {failed} of {len(endpoints)} URL(s) failed", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK if endpoints else EXIT_USAGE


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("notify", help="notifications: `notify test` sends a test message to every URL")
    actions = parser.add_subparsers(dest="notify_command", metavar="ACTION")
    test = actions.add_parser(
        "test",
        help="send a test message to every [notify] URL and say which worked",
        description="Send one test message to every apprise URL of [notify] (urls_file or urls_env), one "
        "attempt each, and print OK or FAILED with the reason per URL (tokens masked). Exit status 1 if any failed.",
    )
    test.set_defaults(func=run_test)
    parser.set_defaults(func=lambda args: (parser.print_help(sys.stderr), 2)[1])
