"""Batch receiving for tzspd: recvmmsg(2) into pre-allocated slots, fast-path pcap records.

Two implementations of one contract, chosen by ``make_batcher``:

- ``tzsp._fastrecv.Batcher``: the optional C accelerator (built by setup.py when a compiler is
  present);
- ``PyBatcher`` below: pure Python over ctypes, the fallback, giving byte-identical output.
  ``TZSPD_PURE_PYTHON=1`` in the environment forces it.

Contract: ``drain_into(out, pos, limit, batch_ns, nanosecond, snaplen, fast, senders)`` appends
a pcap record to ``out`` for each RouterOS datagram (``01 00 00 01 01`` + Ethernet frame) from
an accepted sender, in arrival order, and returns ``(pos, count, received, not_allowed, drops,
status)``; with ``wait=True`` its first receive blocks (until a datagram, a signal, or the
socket's SO_RCVTIMEO; ``batch_ns`` is then the time the wait ended). It stops when the
socket is empty (``EMPTY``; a batch that came back short counts as
empty, so no extra system call), when a record ends past ``limit`` (``FULL``), or at a datagram
it leaves to Python (``PENDING``: a sender not judged yet, tags, another header) which
``take()`` then returns as ``(data, sender_key, received_ns)``. ``senders`` maps sender keys
(4 or 16 address bytes) to True/False, or is None to accept everyone. The receive time is the
kernel's SCM_TIMESTAMPNS when control messages are on, else ``batch_ns``; ``drops`` is the
largest SO_RXQ_OVFL total seen.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import select
import socket
import struct
import time

from tzsp.fanout import consumer_for, split_by_consumer
from tzsp.native import native_module
from tzsp.pcap import whole_records_within

EMPTY, FULL, PENDING = 0, 1, 2
FULL_BEFORE = -1  # internal: no room for this record, it stays for the next call
SLOT = 65536  # no UDP payload is larger: never truncated
CONTROL_SPACE = 128
DEFAULT_VLEN = 64
FAST_HEADER = b"\x01\x00\x00\x01\x01"
NANO = 1_000_000_000
MAX_TS = 0xFFFFFFFF * NANO + NANO - 1
MSG_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0x40)
MSG_WAITFORONE = getattr(socket, "MSG_WAITFORONE", 0x10000)
SCM_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)
SOL_SOCKET = socket.SOL_SOCKET
MAX_CONSUMERS = 1024


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint)]


NAME_SPACE = 32  # sockaddr_in6 is 28 bytes
_CMSG_HEADER = struct.Struct("@nii")  # cmsg_len (size_t), cmsg_level, cmsg_type
_CMSG_ALIGN = ctypes.sizeof(ctypes.c_size_t)
_TIMESPEC = struct.Struct("@qq")
_TIMESTAMP_ONLY = struct.Struct("@niiqq")  # one cmsghdr + timespec: 32 bytes on LP64
_U32 = struct.Struct("@I")
_RECORD_HEADER = struct.Struct("<IIII")
_FAMILY = struct.Struct("@H")

_libc = None


def _recvmmsg():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.recvmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
        _libc.recvmmsg.restype = ctypes.c_int
    return _libc.recvmmsg


class PyBatcher:
    """The pure-Python batcher (see the module docstring for the contract)."""

    def __init__(self, fd: int, vlen: int = DEFAULT_VLEN, control: bool = True):
        if not 1 <= vlen <= 1024:
            raise ValueError("vlen must be 1..1024")
        self.fd = fd
        self.vlen = vlen
        self.control = control
        self._call = _recvmmsg()
        # mmap: pages are only touched (and count towards RSS) where datagrams land
        self._slots = mmap.mmap(-1, vlen * SLOT)
        self._slot_view = memoryview(self._slots)
        self._names = ctypes.create_string_buffer(vlen * NAME_SPACE)
        self._controls = ctypes.create_string_buffer(vlen * CONTROL_SPACE)
        self._iovs = (_Iovec * vlen)()
        self._msgs = (_Mmsghdr * vlen)()
        slots_base = ctypes.addressof(ctypes.c_char.from_buffer(self._slots))
        for i in range(vlen):
            self._iovs[i].iov_base = slots_base + i * SLOT
            self._iovs[i].iov_len = SLOT
            header = self._msgs[i].msg_hdr
            header.msg_name = ctypes.addressof(self._names) + i * NAME_SPACE
            header.msg_namelen = NAME_SPACE
            header.msg_iov = ctypes.addressof(self._iovs[i])
            header.msg_iovlen = 1
            header.msg_control = ctypes.addressof(self._controls) + i * CONTROL_SPACE if control else None
            header.msg_controllen = CONTROL_SPACE if control else 0
        # the kernel rewrites lengths and flags; one copy restores every header before a call
        self._pristine = bytes(self._msgs)
        self._msgs_view = memoryview(self._msgs).cast("B")
        self._stride = ctypes.sizeof(_Mmsghdr)
        self._len_at = _Mmsghdr.msg_len.offset
        self._namelen_at = _Msghdr.msg_namelen.offset
        self._controllen_at = _Msghdr.msg_controllen.offset
        self._lengths: list[int] = []
        self._namelens: list[int] = []
        self._controllens: list[int] = []
        self._name_bytes = b""
        self._control_bytes = b""
        self._count = 0
        self._cursor = 0
        self._short = False
        self._pending_ns = 0
        self._last_key: bytes | None = None
        self._last_ok = False

    def _receive(self, wait: bool = False) -> int:
        """One recvmmsg call (blocking for the first datagram if ``wait``; ctypes releases the
        GIL); fills the per-batch lists the loop reads (lengths, control lengths, sender names)
        with a few bulk copies instead of per-message ctypes access."""
        self._msgs_view[:] = self._pristine
        flags = MSG_WAITFORONE if wait else MSG_DONTWAIT
        got = self._call(self.fd, ctypes.addressof(self._msgs), self.vlen, flags, None)
        if got < 0:
            code = ctypes.get_errno()
            if code in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                return 0
            raise OSError(code, os.strerror(code))
        if got:
            words = self._stride // 4
            u32 = self._msgs_view.cast("I")
            self._lengths = u32[self._len_at // 4 :: words][:got].tolist()
            self._namelens = u32[self._namelen_at // 4 :: words][:got].tolist()
            sizes = self._msgs_view.cast("N")
            self._controllens = sizes[self._controllen_at // _CMSG_ALIGN :: self._stride // _CMSG_ALIGN][:got].tolist()
            self._name_bytes = self._names.raw[: got * NAME_SPACE]
            if self.control:
                self._control_bytes = self._controls.raw[: got * CONTROL_SPACE]
        return got

    def _key(self, i: int) -> bytes:
        names = self._name_bytes
        base = i * NAME_SPACE
        family = _FAMILY.unpack_from(names, base)[0]
        if family == socket.AF_INET and self._namelens[i] >= 16:
            return names[base + 4 : base + 8]
        if family == socket.AF_INET6 and self._namelens[i] >= 28:
            return names[base + 8 : base + 24]
        return b""

    def _read_control(self, i: int, ts: int, drops: int) -> tuple[int, int]:
        data = self._control_bytes
        length = self._controllens[i]
        base = i * CONTROL_SPACE
        offset = 0
        header = _CMSG_HEADER.size
        while offset + header <= length:
            cmsg_len, level, kind = _CMSG_HEADER.unpack_from(data, base + offset)
            if cmsg_len < header or offset + cmsg_len > length:
                break
            data_at = base + offset + header
            if level == socket.SOL_SOCKET:
                if kind == SCM_TIMESTAMPNS and cmsg_len >= header + _TIMESPEC.size:
                    seconds, nanoseconds = _TIMESPEC.unpack_from(data, data_at)
                    ts = seconds * NANO + nanoseconds
                elif kind == SO_RXQ_OVFL and cmsg_len >= header + _U32.size:
                    drops = max(drops, _U32.unpack_from(data, data_at)[0])
            offset += (cmsg_len + _CMSG_ALIGN - 1) & ~(_CMSG_ALIGN - 1)
        return ts, drops

    def drain_into(self, out, pos, limit, batch_ns, nanosecond, snaplen, fast, senders, wait=False):
        slots = self._slots
        slot_view = self._slot_view
        divisor = 1 if nanosecond else 1000
        pack_into = _RECORD_HEADER.pack_into
        unpack_timestamp = _TIMESTAMP_ONLY.unpack_from
        timestamp_size = _TIMESTAMP_ONLY.size
        control = self.control
        room = len(out)
        count = received = not_allowed = drops = 0
        last_key, last_ok = self._last_key, self._last_ok
        while True:
            if self._cursor >= self._count:
                if self._short:  # the last receive emptied the socket: write now
                    self._short = False
                    self._count = self._cursor = 0
                    status = EMPTY
                    break
                got = self._receive(wait)
                if wait:  # at most one blocking receive per call
                    wait = False
                    batch_ns = time.time_ns()
                self._count, self._cursor = got, 0
                self._short = 0 < got < self.vlen
                if got == 0:
                    status = EMPTY
                    break
            lengths = self._lengths
            controllens = self._controllens
            control_bytes = self._control_bytes
            status = None
            i = self._cursor
            for i in range(self._cursor, self._count):
                ts = batch_ns
                if control:
                    # the usual control data is the timestamp alone: one unpack reads it
                    if controllens[i] == timestamp_size:
                        cmsg_len, level, kind, seconds, nanoseconds = unpack_timestamp(control_bytes, i * CONTROL_SPACE)
                        if cmsg_len == timestamp_size and kind == SCM_TIMESTAMPNS and level == SOL_SOCKET:
                            ts = seconds * NANO + nanoseconds
                        else:
                            ts, drops = self._read_control(i, ts, drops)
                    elif controllens[i]:
                        ts, drops = self._read_control(i, ts, drops)
                if senders is not None:
                    key = self._key(i)
                    if key == last_key:
                        ok = last_ok
                    else:
                        ok = senders.get(key)
                        if ok is None:
                            status = PENDING
                            break
                        last_key, last_ok = key, ok
                    if not ok:
                        not_allowed += 1
                        received += 1
                        continue
                start = i * SLOT
                size = lengths[i]
                if not fast or size < 5 or slots[start : start + 5] != FAST_HEADER:
                    status = PENDING
                    break
                frame_len = size - 5
                incl = frame_len if frame_len <= snaplen else snaplen
                end = pos + 16 + incl
                if end > room:
                    if pos == 0:
                        raise ValueError("output buffer has no room for one record")
                    status = FULL_BEFORE
                    break
                if not 0 <= ts <= MAX_TS:
                    ts = 0 if ts < 0 else MAX_TS
                seconds, rest = divmod(ts, NANO)
                pack_into(out, pos, seconds, rest // divisor, incl, frame_len)
                out[pos + 16 : end] = slot_view[start + 5 : start + 5 + incl]
                pos = end
                count += 1
                received += 1
                if pos > limit:
                    status = FULL
                    break
            else:
                self._cursor = self._count
                continue
            if status == PENDING:
                self._cursor = i
                self._pending_ns = ts
            elif status == FULL_BEFORE:
                self._cursor = i
                status = FULL
            else:
                self._cursor = i + 1
            break
        self._last_key, self._last_ok = last_key, last_ok
        return pos, count, received, not_allowed, drops, status

    def pump(self, fd, out, limit, nanosecond, snaplen, fast, senders, seconds):
        """The whole receive loop for a plain output descriptor (see the C ``pump``): wait,
        drain, write once per drained batch, for up to ``seconds``; returns early when a wait
        ends with nothing, at a datagram left to Python (everything before it written), or when
        a write fails. -> (records, bytes, received, not_allowed, drops, status, errno)."""
        written = nbytes = received = not_allowed = drops = error = 0
        deadline = time.monotonic() + seconds
        view = memoryview(out)
        while True:
            pos, count, got, refused, seen_drops, status = self.drain_into(
                out, 0, limit, time.time_ns(), nanosecond, snaplen, fast, senders, True
            )
            received += got
            not_allowed += refused
            drops = max(drops, seen_drops)
            if pos:
                done, error = _write_all(fd, view[:pos])
                if error:  # whole records written before the error still count
                    size, whole = whole_records_within(view[:pos], done)
                    written += whole
                    nbytes += size
                    break
                written += count
                nbytes += pos
            if status == PENDING or (status == EMPTY and got == 0) or time.monotonic() >= deadline:
                break
        return written, nbytes, received, not_allowed, drops, status, error

    def pump_split(self, fds, out, parts, limit, nanosecond, snaplen, fast, senders, seconds, linktype):
        """``pump`` for --exec consumers, one pipe per consumer (see the C ``pump_split``):
        several consumers get each batch cut by the flow hash into ``parts``, each share written
        to its pipe. -> (records, bytes, received, not_allowed, drops, status, errno, leftovers)
        where leftovers are (consumer, offset, length, count, done) shares not delivered."""
        fds = list(fds)
        n = len(fds)
        if not 1 <= n <= MAX_CONSUMERS:
            raise ValueError(f"fds must hold 1..{MAX_CONSUMERS} descriptors")
        if n > 1 and len(parts) < len(out):
            raise ValueError("parts must be at least as long as out")
        written = nbytes = received = not_allowed = drops = error = 0
        leftovers = []
        deadline = time.monotonic() + seconds
        out_view = memoryview(out)
        parts_view = memoryview(parts)
        while True:
            pos, count, got, refused, seen_drops, status = self.drain_into(
                out, 0, limit, time.time_ns(), nanosecond, snaplen, fast, senders, True
            )
            received += got
            not_allowed += refused
            drops = max(drops, seen_drops)
            if pos:
                if n == 1:
                    base, shares = out_view, [(0, pos, count)]
                else:  # consumer c's share at its offset in parts, in arrival order
                    base, shares, at = parts_view, [], 0
                    cut = split_by_consumer(out_view[:pos], lambda frame: consumer_for(frame, linktype, n), n)
                    for data, part_count in cut:
                        parts_view[at : at + len(data)] = data
                        shares.append((at, len(data), part_count))
                        at += len(data)
                for c, (start, length, part_count) in enumerate(shares):
                    if not part_count:
                        continue
                    done, error = _write_all(fds[c], base[start : start + length])
                    if not error:
                        written += part_count
                        nbytes += length
                        continue
                    leftovers = [
                        (k, shares[k][0], shares[k][1], shares[k][2], done if k == c else 0)
                        for k in range(c, n)
                        if shares[k][2]
                    ]
                    break
                if error:
                    break
            if status == PENDING or (status == EMPTY and got == 0) or time.monotonic() >= deadline:
                break
        return written, nbytes, received, not_allowed, drops, status, error, leftovers

    def take(self) -> tuple[bytes, bytes, int]:
        if self._cursor >= self._count:
            raise RuntimeError("no pending datagram")
        i = self._cursor
        self._cursor += 1
        start = i * SLOT
        return self._slots[start : start + self._lengths[i]], self._key(i), self._pending_ns


def _write_all(fd: int, data) -> tuple[int, int]:
    """Write all of ``data`` (waiting out EAGAIN); returns (bytes written, errno or 0)."""
    done = 0
    while done < len(data):
        try:
            done += os.write(fd, data[done:])
        except BlockingIOError:
            select.select([], [fd], [], 1.0)
        except InterruptedError:
            continue
        except OSError as failure:
            return done, failure.errno or errno.EIO
    return done, 0


def accelerator():
    """The C Batcher class, or None when it is not built or TZSPD_PURE_PYTHON is set."""
    module = native_module()
    return None if module is None else module.Batcher


def make_batcher(fd: int, control: bool = True, vlen: int = DEFAULT_VLEN, accelerated: bool | None = None):
    """A batcher for ``fd``: the C one when available (or when ``accelerated`` is True, which
    fails without it), the pure-Python one when it is not (or ``accelerated`` is False)."""
    module = native_module(accelerated)
    if module is not None:
        return module.Batcher(fd, vlen, control)
    return PyBatcher(fd, vlen, control)


def key_host(key: bytes) -> str:
    """The sender address text for a sender key (as recvfrom would show it)."""
    if len(key) == 4:
        return socket.inet_ntop(socket.AF_INET, key)
    if len(key) == 16:
        return socket.inet_ntop(socket.AF_INET6, key)
    return ""
