"""tzspd's receive path: the UDP socket, the per-datagram decisions, and the drain loop.

The decisions are pure functions (``AllowList.allows``, ``sender_address``, ``classify``),
tested without sockets. ``Receiver.drain`` is the thin, hot shell around them: a batcher
(tzsp.batcher: the optional C accelerator or its pure-Python twin) takes datagrams off the
non-blocking socket with recvmmsg(2), 64 at a time, and appends a pcap record for each
RouterOS datagram (``01 00 00 01 01`` + Ethernet frame) from an accepted sender to one
pre-allocated output buffer; everything else comes back to ``classify``, in arrival order.
The buffer goes to the sink in one write when the socket is empty (a batch came back short)
or when it passed its limit, so a live reader sees each packet promptly without one write
per packet.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Protocol

from .batcher import EMPTY, PENDING, PyBatcher, key_host, make_batcher
from .codec import TzspError, decode, frame_from_datagram
from .linktypes import linktype_for
from .pcap import RECORD_HEADER, record

log = logging.getLogger("tzspd")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

LINKTYPE_ETHERNET = 1
ENCAP_ETHERNET = 1
DEFAULT_PORT = 37008
DEFAULT_SNAPLEN = 262144
DEFAULT_RCVBUF = 32 * 1024 * 1024

# Linux socket option numbers (asm-generic; x86, arm, arm64, riscv). Python does not export them.
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)
MAX_DATAGRAM = 65535
RESERVE = RECORD_HEADER.size + MAX_DATAGRAM  # room for one more record past the flush limit
DEFAULT_BATCH_BYTES = 1 << 20
TIMEVAL = struct.Struct("@ll")
SENDER_CACHE_LIMIT = 4096  # spoofed floods must not grow the cache without bound
LOGGED_SENDERS_LIMIT = 16


# ---------------------------------------------------------------- pure decisions


def sender_address(host: str) -> Address:
    """The sender as the user thinks of it: ``::ffff:192.0.2.1`` is 192.0.2.1; a link-local
    ``fe80::1%eth0`` loses its zone. Raises ValueError for text that is no address."""
    address = ipaddress.ip_address(host.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class AllowList:
    """Senders whose datagrams are accepted. IPv4 networks match IPv4-mapped IPv6 senders."""

    networks: tuple[Network, ...]

    @classmethod
    def parse(cls, cidrs: Iterable[str]) -> AllowList:
        networks = []
        for text in cidrs:
            try:
                network = ipaddress.ip_network(text.strip(), strict=False)
            except ValueError as error:
                raise ValueError(f"--allow {text!r}: not an address or CIDR ({error})") from None
            if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
                mapped = network.network_address.ipv4_mapped
                if mapped is not None:  # ::ffff:a.b.c.d/n is written as the IPv4 network
                    network = ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}", strict=False)
            networks.append(network)
        return cls(tuple(networks))

    def allows(self, address: Address) -> bool:
        return any(address.version == n.version and address in n for n in self.networks)

    def allows_host(self, host: str) -> bool:
        try:
            address = sender_address(host)
        except ValueError:
            return False
        return self.allows(address)


@dataclass(frozen=True)
class Policy:
    """What one output stream accepts: a single pcap link type, resolution and snap length."""

    linktype: int = LINKTYPE_ETHERNET
    nanosecond: bool = False
    snaplen: int = DEFAULT_SNAPLEN


WRITTEN = "written"
MALFORMED = "malformed"
OTHER_LINKTYPE = "other_linktype"
NON_FRAME = "non_frame"


@dataclass(frozen=True)
class Classified:
    """The verdict on one datagram: a pcap record to write, or the counter that explains why not."""

    outcome: str
    record: bytes = b""
    reason: str = ""
    packet_id: int | None = None


def classify(data: bytes, received_ns: int, policy: Policy) -> Classified:
    """Decide what one UDP payload becomes. Never raises on any input bytes."""
    try:
        datagram = decode(data)
    except TzspError as error:
        return Classified(MALFORMED, reason=error.reason)
    if not datagram.carries_frame:
        return Classified(NON_FRAME)
    packet_id = datagram.packet_id
    if linktype_for(datagram.encapsulation, datagram.frame) != policy.linktype:
        return Classified(OTHER_LINKTYPE, packet_id=packet_id)
    frame = frame_from_datagram(datagram, received_ns)
    if len(frame.data) > policy.snaplen:
        frame = replace(frame, data=frame.data[: policy.snaplen])
    return Classified(WRITTEN, record(frame, policy.nanosecond), packet_id=packet_id)


# ---------------------------------------------------------------- socket


@dataclass(frozen=True)
class SocketInfo:
    family: int
    bound: tuple
    rcvbuf_requested: int
    rcvbuf_granted: int
    kernel_timestamps: bool
    drop_counter: bool


def open_socket(listen: str, port: int, rcvbuf: int) -> tuple[socket.socket, SocketInfo]:
    """A non-blocking UDP socket on listen:port. ``::`` is dual-stack (IPv4 senders arrive as
    ``::ffff:a.b.c.d``). Asks for ``rcvbuf`` bytes of receive buffer, first with
    SO_RCVBUFFORCE (ignores net.core.rmem_max; needs CAP_NET_ADMIN), then SO_RCVBUF."""
    host = listen.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            try:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            except OSError:  # a v6-only host: IPv6 senders still work
                log.warning("could not make the IPv6 socket dual-stack; IPv4 senders will not reach it")
        granted = set_receive_buffer(sock, rcvbuf)
        timestamps = _try_option(sock, SO_TIMESTAMPNS)
        drops = _try_option(sock, SO_RXQ_OVFL)
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    info = SocketInfo(family, sock.getsockname(), rcvbuf, granted, timestamps, drops)
    return sock, info


def set_receive_buffer(sock: socket.socket, size: int) -> int:
    """Set the receive buffer; returns what the kernel granted (it reports double, for overhead)."""
    if size > 0:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
        except OSError:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
            except OSError as error:
                log.warning("could not set the receive buffer to %d bytes: %s", size, error)
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2


def _try_option(sock: socket.socket, option: int) -> bool:
    try:
        sock.setsockopt(socket.SOL_SOCKET, option, 1)
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- the drain loop


class Sink(Protocol):
    def write(self, records: memoryview, count: int) -> None:
        """Deliver ``count`` whole pcap records (no global header)."""


class Receiver:
    """Reads datagrams in recvmmsg batches into one pre-allocated buffer of pcap records and
    flushes it to a sink: once per drained batch (when the socket is empty) or when full."""

    def __init__(
        self,
        sock: socket.socket,
        policy: Policy,
        allow: AllowList | None,
        stats,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        kernel_timestamps: bool = True,
        accelerated: bool | None = None,
        clock: Callable[[], int] = time.time_ns,
    ):
        self.sock = sock
        self.policy = policy
        self.allow = allow
        self.stats = stats
        self.kernel_timestamps = kernel_timestamps
        self.clock = clock
        self.batcher = make_batcher(sock.fileno(), control=kernel_timestamps, accelerated=accelerated)
        self.accelerated = not isinstance(self.batcher, PyBatcher)
        self._drain_into = self.batcher.drain_into
        self._nanosecond = policy.nanosecond
        self._snaplen = policy.snaplen
        self._fast = policy.linktype == LINKTYPE_ETHERNET
        self._buffer = bytearray(batch_bytes + RESERVE)
        self._view = memoryview(self._buffer)
        self._limit = batch_bytes  # flush once a record ends beyond this
        self._parts: bytearray | None = None  # --fanout: each consumer's share, made on first use
        # sender key -> verdict; None without --allow (everyone accepted, nothing to look up)
        self._senders: dict[bytes, bool] | None = None if allow is None else {}
        self._logged: set[str] = set()

    def wait_at_most(self, seconds: float) -> None:
        """Make the socket blocking with a receive timeout, for ``drain(wait=True)``: a signal
        interrupts the wait (EINTR), and the timeout bounds how late the caller looks at
        timers and at a signal that came just before the wait began."""
        self.sock.setblocking(True)
        whole = int(seconds)
        self.sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVTIMEO, TIMEVAL.pack(whole, int((seconds - whole) * 1_000_000))
        )

    def drain(self, sink: Sink, max_flushes: int = 4, wait: bool = False) -> int:
        """Receive until the socket is empty, writing whenever the buffer fills and once at the
        end. Stops after ``max_flushes`` full buffers so the caller can look at signals. With
        ``wait`` (after ``wait_at_most``) it first blocks for a datagram in the same system
        call that reads the batch: one call per wake-up instead of poll + receive.
        Returns the number of datagrams read."""
        pos, count, received, refused, drops, status = self._drain_into(
            self._buffer,
            0,
            self._limit,
            self.clock(),
            self._nanosecond,
            self._snaplen,
            self._fast,
            self._senders,
            wait,
        )
        if status == EMPTY and not refused and not drops:  # the common wake-up: one batch, all fast
            if count:
                sink.write(self._view[:pos], count)
            self.stats.received += received
            return received
        return self._drain_more(sink, max_flushes, pos, count, received, refused, drops, status)

    def pump(self, sink, seconds: float) -> int:
        """The receive loop for a sink with a plain descriptor (``sink.direct_fd``: stdout or one
        file): the batcher waits, drains and writes by itself for up to ``seconds`` (in C when
        the accelerator is built), so a wake-up costs no Python. Datagrams it leaves to Python
        go through ``drain``'s slow path. Returns the number of datagrams read."""
        records, nbytes, received, refused, drops, status, error = self.batcher.pump(
            sink.direct_fd,
            self._buffer,
            self._limit,
            self._nanosecond,
            self._snaplen,
            self._fast,
            self._senders,
            seconds,
        )
        self.stats.received += received
        if refused:
            self.stats.not_allowed += refused
        if drops:
            self.stats.note_kernel_drops(drops)
        sink.account(records, nbytes)
        if error:
            sink.fail(OSError(error, os.strerror(error)))
        if status == PENDING:
            received += self._drain_more(sink, 4, 0, 0, 0, 0, 0, PENDING)
        return received

    def pump_consumers(self, sink, fds, seconds: float) -> int:
        """``pump`` for ``--exec`` consumers while every one of them runs with nothing held
        (``sink.direct_fds``): the batcher writes each consumer's share to its pipe itself, cut
        by the flow hash when there are several. A failed write comes back as the shares not
        delivered, which the sink holds for the next process (``sink.deliver_leftovers``)."""
        parts = self._parts
        if parts is None and len(fds) > 1:
            parts = self._parts = bytearray(len(self._buffer))
        records, nbytes, received, refused, drops, status, error, leftovers = self.batcher.pump_split(
            fds,
            self._buffer,
            self._buffer if parts is None else parts,
            self._limit,
            self._nanosecond,
            self._snaplen,
            self._fast,
            self._senders,
            seconds,
            self.policy.linktype,
        )
        self.stats.received += received
        if refused:
            self.stats.not_allowed += refused
        if drops:
            self.stats.note_kernel_drops(drops)
        sink.account(records, nbytes)
        if leftovers:
            base = self._view if len(fds) == 1 else memoryview(parts)
            sink.deliver_leftovers(base, leftovers, OSError(error, os.strerror(error)))
        if status == PENDING:
            received += self._drain_more(sink, 4, 0, 0, 0, 0, 0, PENDING)
        return received

    def _drain_more(self, sink: Sink, max_flushes: int, pos, count, received, refused, drops, status) -> int:
        """The general loop, continuing from the first call's results: full buffers, datagrams
        left to Python, refused senders, kernel drops."""
        buffer = self._buffer
        view = self._view
        limit = self._limit
        stats = self.stats
        drain_into = self._drain_into
        nanosecond, snaplen, fast, senders = self._nanosecond, self._snaplen, self._fast, self._senders
        batch_ns = self.clock()
        flushes = 0
        while True:
            if refused:
                stats.not_allowed += refused
            if drops:
                stats.note_kernel_drops(drops)
            if status == PENDING:
                received += 1
                pos, added = self._slow_path(buffer, pos)
                count += added
            elif status == EMPTY:
                break
            if pos > limit:
                sink.write(view[:pos], count)
                pos = count = 0
                flushes += 1
                if flushes >= max_flushes:
                    break
                batch_ns = self.clock()
            pos, written, got, refused, drops, status = drain_into(
                buffer, pos, limit, batch_ns, nanosecond, snaplen, fast, senders, False
            )
            count += written
            received += got
        stats.received += received
        if count:
            sink.write(view[:pos], count)
        return received

    def _slow_path(self, buffer: bytearray, pos: int) -> tuple[int, int]:
        """The datagram the batcher left to Python: judge a new sender, then ``classify``.
        Returns the new write position and the number of records added (0 or 1)."""
        data, key, received_ns = self.batcher.take()
        senders = self._senders
        if senders is not None:
            ok = senders.get(key)
            if ok is None:
                ok = self._judge_sender(key)
            if not ok:
                self.stats.not_allowed += 1
                return pos, 0
        verdict = classify(data, received_ns, self.policy)
        if verdict.packet_id is not None:
            self.stats.note_packet_id(verdict.packet_id)
        if verdict.outcome != WRITTEN:
            _count_rejection(self.stats, verdict)
            return pos, 0
        length = len(verdict.record)  # at most 16 + 65535: the buffer keeps that much spare
        buffer[pos : pos + length] = verdict.record
        return pos + length, 1

    def _judge_sender(self, key: bytes) -> bool:
        host = key_host(key)
        ok = self.allow.allows_host(host) if self.allow is not None else True
        if len(self._senders) >= SENDER_CACHE_LIMIT:
            self._senders.clear()
        self._senders[key] = ok
        if not ok and host not in self._logged and len(self._logged) < LOGGED_SENDERS_LIMIT:
            self._logged.add(host)
            shown = host
            try:
                shown = str(sender_address(host))
            except ValueError:
                pass
            log.warning("dropping datagrams from %s: not in --allow", shown)
            if len(self._logged) == LOGGED_SENDERS_LIMIT:
                log.warning("further senders outside --allow are dropped without a message")
        return ok


def _count_rejection(stats, verdict: Classified) -> None:
    if verdict.outcome == MALFORMED:
        stats.count_malformed(verdict.reason)
    elif verdict.outcome == OTHER_LINKTYPE:
        stats.other_linktype += 1
    elif verdict.outcome == NON_FRAME:
        stats.non_frame += 1
