"""``snort-bridge check [--json] [FILE|-]``: how each alert line parses and what the policy decides
(the work is bridge/check.py's; here the command line)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import IO

from bridge.check import Tally, as_json, as_text, check_lines
from bridge.cli import EXIT_FAILED, EXIT_OK, load_for
from bridge.decide.hostaddrs import host_addresses, router_addresses
from bridge.decide.policy import Policy
from bridge.parsers import FORMATS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check",
        help="show how alert lines parse and what the policy decides",
        description=(
            "Read alert lines (FILE, or - for stdin) and print for each how it parsed and what the "
            "policy decides and why. Without a configuration file the built-in defaults are used."
        ),
    )
    parser.add_argument("file", nargs="?", default="-", metavar="FILE|-", help="alert lines to check (default: stdin)")
    parser.add_argument("--json", action="store_true", help="one JSON object per alert line")
    parser.add_argument("--format", choices=FORMATS, default="auto", help="alert format (default: auto, per line)")
    parser.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    config, note = load_for(args, optional=True)
    if note:
        print(f"snort-bridge check: {note}", file=sys.stderr)
    policy = Policy(
        config.policy, always_protected=[*router_addresses(config.routers, resolve=False), *host_addresses()]
    )
    try:
        stream: IO[bytes] = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")
    except OSError as exc:
        print(f"snort-bridge check: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    tally = Tally()
    with stream:
        for item in check_lines(stream, policy, source=args.file, fmt=args.format):
            tally.add(item)
            if args.json:
                if item.decision is not None:
                    print(json.dumps(as_json(item), ensure_ascii=False))
                else:
                    print(as_text(item), file=sys.stderr)
            else:
                print(as_text(item))
    print(tally, file=sys.stderr if args.json else sys.stdout)
    sys.stdout.flush()
    return EXIT_OK
