"""tzsp-replay: send the frames of a capture file as TZSP datagrams, the way a MikroTik does.

    tzsp-replay CAPTURE --to HOST:PORT [--rate PPS | --realtime] [--loop N] [--raw-tzsp]

Pure parts (what to send, when to send it) are plain functions and the Pacer; the socket
loop in send_all() and main() is the thin shell around them.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import itertools
import socket
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import dpkt

from tzsp import codec, linktypes
from tzsp.capture_files import CaptureError, read_capture

# Largest UDP payload per address family (65535 minus IP and UDP headers).
MAX_PAYLOAD = {socket.AF_INET: 65507, socket.AF_INET6: 65527}

_NS_PER_S = 1_000_000_000
_UINT32 = 0x1_0000_0000


# ---- what to send -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    """One datagram to send and the capture timestamp it came from (for --realtime)."""

    timestamp_ns: int
    payload: bytes


def parse_destination(text: str) -> tuple[str, int]:
    """'HOST:PORT', 'IPV4:PORT' or '[IPV6]:PORT' -> (host, port). ValueError says what is wrong."""
    text = text.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ValueError(f"{text!r}: write an IPv6 destination as [ADDRESS]:PORT")
        port_text = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise ValueError(f"{text!r}: {host!r} is not an IPv6 address") from exc
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon or not host:
            raise ValueError(f"{text!r}: expected HOST:PORT (e.g. 127.0.0.1:37008)")
        if ":" in host:
            raise ValueError(f"{text!r}: put an IPv6 address in brackets, e.g. [{host}]:{port_text}")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: port must be 1-65535, got {port_text!r}")
    return host, int(port_text)


def frame_tags(sequence: int, timestamp_ns: int, packet_ids: bool, time_tags: bool) -> tuple:
    """Optional tags: 40 (packet id, for loss checks) and 82 (original capture time)."""
    tags = []
    if packet_ids:
        tags.append(codec.Tag(codec.TAG_PACKET_ID, (sequence % _UINT32).to_bytes(4, "big")))
    if time_tags:
        seconds, nanoseconds = divmod(max(timestamp_ns, 0), _NS_PER_S)
        tags.append(codec.Tag(codec.TAG_TIME_STAMP, struct.pack("!II", seconds % _UINT32, nanoseconds)))
    return tuple(tags)


def tzsp_datagrams(
    records: Iterable[tuple[int, bytes]],
    encapsulation: int,
    *,
    packet_ids: bool = False,
    time_tags: bool = False,
    first_sequence: int = 0,
) -> Iterator[Outgoing]:
    """Each captured frame wrapped in TZSP, as RouterOS does (5-byte header unless tags asked)."""
    if not (packet_ids or time_tags):
        for timestamp_ns, frame in records:
            yield Outgoing(timestamp_ns, codec.encode_frame(frame, encapsulation))
        return
    for sequence, (timestamp_ns, frame) in enumerate(records, first_sequence):
        tags = frame_tags(sequence, timestamp_ns, packet_ids, time_tags)
        yield Outgoing(timestamp_ns, codec.encode_frame(frame, encapsulation, tags))


def udp_payload(linktype: int, frame: bytes) -> tuple[bytes | None, str]:
    """(UDP payload, "") for a frame holding an unfragmented UDP datagram, else (None, why not)."""
    try:
        if linktype == linktypes.LINKTYPE_ETHERNET:
            packet = dpkt.ethernet.Ethernet(frame).data
        elif linktype == linktypes.LINKTYPE_LINUX_SLL:
            packet = dpkt.sll.SLL(frame).data
        elif linktypes.encapsulation_for_linktype(linktype) == linktypes.ENCAP_RAW and frame:
            packet = (dpkt.ip6.IP6 if frame[0] >> 4 == 6 else dpkt.ip.IP)(frame)
        else:
            return None, "link-type"
    except (dpkt.UnpackError, struct.error, ValueError, IndexError):
        # dpkt raises assorted exceptions on junk; any of them just means "not UDP we can use".
        return None, "undecodable"
    if isinstance(packet, dpkt.ip.IP):
        if packet.mf or packet.offset:
            return None, "ip-fragment"
    elif not isinstance(packet, dpkt.ip6.IP6):
        return None, "not-ip"
    datagram = packet.data
    if not isinstance(datagram, dpkt.udp.UDP):
        return None, "not-udp"
    data = bytes(datagram.data)
    return data[: max(datagram.ulen - 8, 0)], ""


def raw_tzsp_datagrams(linktype: int, records: Iterable[tuple[int, bytes]], skipped: Counter) -> Iterator[Outgoing]:
    """UDP payloads (any port) of a capture of TZSP traffic that decode as TZSP, byte for byte."""
    for timestamp_ns, frame in records:
        payload, why = udp_payload(linktype, frame)
        if payload is None:
            skipped[why] += 1
            continue
        try:
            codec.decode(payload)
        except codec.TzspError as exc:
            skipped[f"not-tzsp ({exc.reason})"] += 1
            continue
        yield Outgoing(timestamp_ns, payload)


# ---- when to send it --------------------------------------------------------------------------


class Pacer:
    """Send times in seconds after the start, on a fixed schedule so delays don't accumulate.

    rate: datagram n is due at n / rate. realtime: the capture's own gaps (never negative;
    each new pass starts where the previous one ended). Neither: None, meaning "now".
    """

    def __init__(self, rate: float | None = None, realtime: bool = False) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive")
        if rate is not None and realtime:
            raise ValueError("choose either a rate or realtime pacing")
        self.rate, self.realtime = rate, realtime
        self.count = 0
        self._pass_base_ns: int | None = None
        self._pass_start = 0.0
        self._last = 0.0

    def new_pass(self) -> None:
        self._pass_base_ns = None
        self._pass_start = self._last

    def due(self, timestamp_ns: int) -> float | None:
        index = self.count
        self.count += 1
        if self.rate is not None:
            return index / self.rate
        if not self.realtime:
            return None
        if self._pass_base_ns is None:
            self._pass_base_ns = timestamp_ns
        offset = self._pass_start + (timestamp_ns - self._pass_base_ns) / _NS_PER_S
        self._last = max(self._last, offset)
        return self._last


# ---- the socket shell -------------------------------------------------------------------------


@dataclass
class Summary:
    sent: int = 0
    bytes: int = 0
    seconds: float = 0.0
    errors: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)

    def text(self, destination: str) -> str:
        seconds = max(self.seconds, 1e-9)
        line = (
            f"tzsp-replay: sent {self.sent} datagrams ({self.bytes} bytes) to {destination} "
            f"in {self.seconds:.3f} s: {self.sent / seconds:.0f} pps, "
            f"{self.bytes * 8 / seconds / 1e6:.2f} Mbit/s"
        )
        if self.errors:
            line += "; errors: " + ", ".join(f"{k} {v}" for k, v in sorted(self.errors.items()))
        if self.skipped:
            line += "; skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items()))
        return line


def send_all(
    send: Callable[[bytes], object],
    outgoing: Iterable[Outgoing],
    pacer: Pacer,
    summary: Summary,
    *,
    max_payload: int,
    count: int | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Send each datagram when the pacer says; errors are counted, never raised."""
    start = clock() - summary.seconds
    try:
        for item in outgoing:
            if count is not None and pacer.count >= count:
                return
            due = pacer.due(item.timestamp_ns)
            if due is not None:
                wait = due - (clock() - start)
                if wait > 0:
                    sleep(wait)
            if len(item.payload) > max_payload:
                summary.errors["too-big"] += 1
                continue
            try:
                send(item.payload)
            except OSError as exc:
                summary.errors[_error_label(exc)] += 1
                continue
            summary.sent += 1
            summary.bytes += len(item.payload)
    finally:
        summary.seconds = clock() - start


def _error_label(exc: OSError) -> str:
    if exc.errno == errno.EMSGSIZE:
        return "too-big"
    return errno.errorcode.get(exc.errno or 0, type(exc).__name__).lower()


def _open_socket(host: str, port: int) -> tuple[socket.socket, str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise SystemExit(f"tzsp-replay: cannot resolve {host!r}: {exc.strerror}") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        # Connected: the kernel looks the route up once, and refusals are reported.
        sock.connect(address)
    except OSError as exc:
        sock.close()
        raise SystemExit(f"tzsp-replay: cannot send to {host}:{port}: {exc.strerror}") from exc
    host_shown = f"[{address[0]}]" if family == socket.AF_INET6 else address[0]
    shown = f"{host_shown}:{address[1]}"
    return sock, shown


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tzsp-replay",
        description="Send the frames of a pcap/pcapng file as TZSP/UDP datagrams (like a MikroTik "
        "sniffer stream). Only to the destination given with --to.",
    )
    add = parser.add_argument
    add("capture", metavar="CAPTURE", help="pcap or pcapng file")
    add(
        "--to",
        required=True,
        metavar="HOST:PORT",
        help="destination, e.g. 127.0.0.1:37008 or [::1]:37008 (there is no default)",
    )
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument(
        "--rate", type=_positive_float, metavar="PPS", help="datagrams per second (default: as fast as possible)"
    )
    pace.add_argument("--realtime", action="store_true", help="keep the capture's original gaps between frames")
    add(
        "--loop",
        type=_non_negative_int,
        default=1,
        metavar="N",
        help="send the capture N times; 0 = until interrupted (default 1)",
    )
    add("--count", type=_positive_int, metavar="N", help="stop after N datagrams in total")
    add(
        "--raw-tzsp",
        action="store_true",
        help="the capture already holds TZSP: re-send its UDP payloads (any port) byte for byte",
    )
    add(
        "--encapsulation",
        type=_encapsulation,
        metavar="NAME|N",
        help="TZSP encapsulation to claim instead of the one derived from the file's link type ("
        + ", ".join(linktypes.ENCAPSULATION_BY_NAME)
        + ")",
    )
    add("--packet-id", action="store_true", help="add tag 40 with a running counter (lets the receiver spot loss)")
    add("--time-tag", action="store_true", help="add tag 82 with the frame's original capture time")
    add("-q", "--quiet", action="store_true", help="no summary unless something went wrong")
    return parser


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _encapsulation(text: str) -> int:
    try:
        return linktypes.parse_encapsulation(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def main(argv: list | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.raw_tzsp and (args.encapsulation is not None or args.packet_id or args.time_tag):
        parser.error(
            "--raw-tzsp re-sends datagrams unchanged; it cannot be combined with "
            "--encapsulation, --packet-id or --time-tag"
        )
    try:
        host, port = parse_destination(args.to)
    except ValueError as exc:
        parser.error(f"--to: {exc}")

    try:
        linktype, first_records = read_capture(args.capture)
    except CaptureError as exc:
        print(f"tzsp-replay: {exc}", file=sys.stderr)
        return 1
    encapsulation = args.encapsulation
    if not args.raw_tzsp and encapsulation is None:
        encapsulation = linktypes.encapsulation_for_linktype(linktype)
        if encapsulation is None:
            print(
                f"tzsp-replay: {args.capture}: link type {linktype} "
                f"({linktypes.linktype_name(linktype)}) has no TZSP encapsulation; "
                "give --encapsulation, or --raw-tzsp if it holds TZSP",
                file=sys.stderr,
            )
            return 1

    sock, shown = _open_socket(host, port)
    summary = Summary()
    pacer = Pacer(args.rate, args.realtime)

    def one_pass(records, first_sequence: int) -> Iterator[Outgoing]:
        if args.raw_tzsp:
            return raw_tzsp_datagrams(linktype, records, summary.skipped)
        return tzsp_datagrams(
            records, encapsulation, packet_ids=args.packet_id, time_tags=args.time_tag, first_sequence=first_sequence
        )

    passes = itertools.count() if args.loop == 0 else range(args.loop)
    status = 0
    try:
        with sock:
            for number in passes:
                records = first_records if number == 0 else read_capture(args.capture)[1]
                before = pacer.count
                pacer.new_pass()
                outgoing = one_pass(records, pacer.count)
                send_all(sock.send, outgoing, pacer, summary, max_payload=MAX_PAYLOAD[sock.family], count=args.count)
                finished = args.count is not None and pacer.count >= args.count
                if finished or pacer.count == before:  # done, or nothing to send (don't spin on --loop 0)
                    break
    except CaptureError as exc:
        print(f"tzsp-replay: {exc}", file=sys.stderr)
        status = 1
    except KeyboardInterrupt:
        status = 130
    if summary.errors:
        status = status or 1
    if status or not args.quiet:
        print(summary.text(shown), file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
