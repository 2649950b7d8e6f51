"""`snort-bridge health`: ask the running bridge's /health (the [http] section) and exit 0 only on
200 -- the container image's HEALTHCHECK, and a monitoring probe that needs no curl."""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request

from plumbing.httpserver import parse_listen

TIMEOUT = 5.0  # seconds; a healthy bridge answers in milliseconds


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("health", help="ask the running bridge's /health ([http]); exit 0 only if healthy")
    parser.set_defaults(func=run_health)


def health_url(listen: str) -> str:
    host, port = parse_listen(listen, 9470)
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}/health" if ":" in host else f"http://{host}:{port}/health"


def run_health(args: argparse.Namespace) -> int:
    from bridge.cli import EXIT_FAILED, EXIT_OK, load_for
    from bridge.watching.web import TokenError, read_token

    config, _ = load_for(args)
    if config.http is None:
        print("snort-bridge health: no [http] section in the configuration: nothing to ask", file=sys.stderr)
        return EXIT_FAILED
    request = urllib.request.Request(health_url(config.http.listen))
    if config.http.token_file:
        try:
            request.add_header("Authorization", f"Bearer {read_token(config.http.token_file)}")
        except TokenError as exc:
            print(f"snort-bridge health: http.token_file: {exc}", file=sys.stderr)
            return EXIT_FAILED
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            print(response.read(4096).decode("utf-8", "replace").strip())
            return EXIT_OK
    except urllib.error.HTTPError as exc:
        print(f"{exc.code}: {exc.read(4096).decode('utf-8', 'replace').strip()}")
    except (OSError, ValueError) as exc:
        print(f"snort-bridge health: {request.full_url}: {exc}", file=sys.stderr)
    return EXIT_FAILED
