"""tzspd's command line: the argument parser, its value types (sizes, link types, addresses) and
the checks between options; tzsp.daemon runs what it describes.
"""

from __future__ import annotations

import argparse
import re
import shlex

from plumbing.httpserver import parse_listen

from .linktypes import parse_linktype
from .receiver import DEFAULT_PORT, DEFAULT_RCVBUF, DEFAULT_SNAPLEN

DEFAULT_EXEC_BUFFER = 16 * 1024 * 1024
MAX_FANOUT = 64


def version() -> str:
    try:
        from importlib.metadata import version as package_version

        return package_version("tzsp-ips")
    except Exception:  # not installed (running from a source tree)
        return "0.1.0"


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_size(text: str) -> int:
    """Bytes from ``33554432``, ``32M``, ``32MiB``, ``512k`` (binary multiples)."""
    match = _SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (examples: 33554432, 32M, 512k)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be above 0")
        return value

    return parse


def _linktype(text: str) -> int:
    try:
        return parse_linktype(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _listen(text: str) -> str:
    try:
        parse_listen(text, 0)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tzspd",
        description="Receive TZSP (MikroTik /tool sniffer streaming, sniff-tzsp) and write a "
        "classic pcap stream that snort -r /dev/stdin or tcpdump -r - can read live.",
        epilog="Counters go to stderr on SIGUSR1, every --stats-interval and at exit. "
        "SIGHUP with --exec: each consumer is replaced by a fresh one (new rules) without losing a packet. "
        "Exit status: 0 stopped by SIGINT/SIGTERM, 1 output failed (e.g. the reader went away), "
        "2 bad usage or cannot start.",
    )
    add = parser.add_argument
    add(
        "--listen",
        default="::",
        metavar="ADDR",
        help="address to listen on (default ::, which also takes IPv4 senders)",
    )
    add("--port", type=int, default=DEFAULT_PORT, metavar="N", help=f"UDP port (default {DEFAULT_PORT})")
    add(
        "--allow",
        action="append",
        default=[],
        metavar="CIDR",
        help="accept datagrams only from this sender network (repeatable, IPv4 or IPv6); "
        "TZSP has no authentication, so set this",
    )
    add(
        "--linktype",
        type=_linktype,
        default=1,
        metavar="NAME",
        help="link type of the stream: ethernet (default), raw, ppp, ieee802_11, prism, radiotap, "
        "avs, token_ring, fddi or a LINKTYPE number; frames of other encapsulations are dropped and counted",
    )
    add("-o", "--output", default="-", metavar="FILE", help="write the pcap stream here (default - = stdout)")
    add(
        "-C",
        "--rotate-size",
        type=_positive(float),
        metavar="MB",
        help="start a new file once the current one holds this many million bytes (needs -o FILE)",
    )
    add(
        "-G",
        "--rotate-interval",
        type=_positive(float),
        metavar="SECS",
        help="start a new file once the current one is this old (needs -o FILE); with rotation the "
        "name goes through strftime and gets an index ({index} or -NNN before the extension)",
    )
    add(
        "--nanosecond",
        action="store_true",
        help="nanosecond timestamps (pcap magic a1b23c4d; readers need libpcap >= 1.5)",
    )
    add(
        "--snaplen",
        type=_positive(int),
        default=DEFAULT_SNAPLEN,
        metavar="N",
        help=f"cut frames to N bytes (default {DEFAULT_SNAPLEN})",
    )
    add(
        "--rcvbuf",
        type=parse_size,
        default=DEFAULT_RCVBUF,
        metavar="BYTES",
        help="socket receive buffer (default 32M); a warning says when the kernel grants less",
    )
    add(
        "--exec",
        metavar="CMD",
        dest="exec_command",
        help="run CMD (split like a shell would, but no shell) with its stdin on the stream, and "
        "restart it when it ends; {consumer} in CMD (and TZSPD_CONSUMER in its environment) is its "
        "number, 1..N with --fanout",
    )
    add(
        "--exec-buffer",
        type=parse_size,
        default=DEFAULT_EXEC_BUFFER,
        metavar="BYTES",
        help="with --exec: hold up to this much while the consumer restarts (default 16M); the rest is dropped and counted",
    )
    add(
        "--exec-backoff",
        type=_positive(float),
        default=0.5,
        metavar="SECS",
        help="with --exec: first restart delay, doubling up to 30 s while the consumer keeps failing (default 0.5)",
    )
    add(
        "--fanout",
        type=_positive(int),
        default=1,
        metavar="N",
        help="with --exec: run N consumers (e.g. one Snort per core); each frame goes to one of "
        "them by a symmetric hash of its flow, so both directions of a flow reach the same one",
    )
    add("--stats-interval", type=_positive(float), metavar="S", help="also print the counters every S seconds")
    add("--stats-json", action="store_true", help="print counters as one JSON object per line")
    add(
        "--metrics",
        type=_listen,
        metavar="HOST:PORT",
        help="serve /metrics (Prometheus) and /health over HTTP here, e.g. 127.0.0.1:9471; "
        "read from the counters at scrape time, so the receive path does not pay for it",
    )
    add(
        "-q", "--quiet", action="store_true", help="only errors (and counters asked for by SIGUSR1 or --stats-interval)"
    )
    add("-v", "--verbose", action="store_true", help="more detail on stderr")
    add("--version", action="version", version=f"%(prog)s {version()}")
    return parser


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    rotating = args.rotate_size is not None or args.rotate_interval is not None
    if args.exec_command is not None:
        if not shlex.split(args.exec_command):
            parser.error("--exec: empty command")
        if args.output != "-":
            parser.error("--exec and -o are alternatives: the stream goes to the command")
    if rotating and (args.output == "-" or args.exec_command is not None):
        parser.error("-C/-G rotate files: give -o FILE")
    if args.fanout > 1 and args.exec_command is None:
        parser.error("--fanout N needs --exec CMD: it runs N consumers")
    if args.fanout > MAX_FANOUT:
        parser.error(f"--fanout above {MAX_FANOUT} is not supported")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port}: not a UDP port")
    if args.snaplen > DEFAULT_SNAPLEN:
        parser.error(f"--snaplen above {DEFAULT_SNAPLEN} is not read by libpcap")
