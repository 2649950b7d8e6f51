"""A UDP listener for RouterOS remote logging (firewall log lines), thin: datagram in, text out.

RouterOS sends one message per datagram, in its default ``<topics> <message>`` form or as BSD
syslog (``remote-log-format=syslog``); telling them apart is ``bridge.scan.routeros_log``'s job. This
only binds, receives, decodes and hands each line to ``deliver(text, peer, received_at)`` from
its own thread. UDP has no sender authentication, so only senders on the allow-list are heard
(a spoofed log line could make the IPS block whom the spoofer likes); others are counted and
named once in the log.
"""

from __future__ import annotations

import logging
import re
import select
import socket
import threading
import time
from collections.abc import Callable

from tzsp.receiver import AllowList

log = logging.getLogger("snort-bridge")
MAX_NAMED_SENDERS = 16  # refused senders named in the log; a spoofed flood names no more

MAX_DATAGRAM = 65535
_LISTEN_RE = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]+)):(?P<port>\d{1,5})$")

Deliver = Callable[[str, tuple[str, int], float], None]


def split_listen_address(text: str) -> tuple[str, int]:
    """``"0.0.0.0:5514"`` / ``"[::]:5514"`` / ``"name:5514"`` -> (host, port); ValueError otherwise."""
    match = _LISTEN_RE.match(text.strip())
    if not match or not 1 <= int(match["port"]) <= 65535:
        raise ValueError(f'expected "ADDRESS:PORT" such as "0.0.0.0:5514" or "[::]:5514", got {text!r}')
    return match["v6"] or match["host"], int(match["port"])


def datagram_lines(data: bytes) -> list:
    """The log lines in one datagram (normally one; NULs and blank lines dropped)."""
    text = data.decode("utf-8", errors="replace").replace("\x00", "")
    return [line for line in text.splitlines() if line.strip()]


class SyslogListener:
    def __init__(self, address: str, deliver: Deliver, allow: AllowList):
        self.address = address
        self.host, self.port = split_listen_address(address)
        self.deliver = deliver
        self.allow = allow  # replaced on reload; read by the listener thread
        self.received = 0
        self.not_allowed = 0
        self._named: set[str] = set()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def bound(self) -> tuple[str, int]:
        assert self._sock is not None
        return self._sock.getsockname()[:2]

    def start(self) -> SyslogListener:
        """Bind now (so a port in use fails at start, with the address in the message)."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise OSError(
                exc.errno, f"cannot listen for firewall log lines on {self.address}: {exc.strerror}"
            ) from None
        self._sock = sock
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="syslog-listener", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _run(self) -> None:
        sock = self._sock
        assert sock is not None
        while not self._stop.is_set():
            ready, _, _ = select.select([sock], [], [], 0.2)
            if not ready:
                continue
            try:
                data, peer = sock.recvfrom(MAX_DATAGRAM)
            except OSError:
                continue
            received_at = time.time()
            if not self.allow.allows_host(peer[0]):
                self._refuse(peer[0])
                continue
            self.received += 1
            for line in datagram_lines(data):
                self.deliver(line, (peer[0], peer[1]), received_at)

    def _refuse(self, sender: str) -> None:
        self.not_allowed += 1
        if sender not in self._named and len(self._named) < MAX_NAMED_SENDERS:
            self._named.add(sender)
            log.warning("firewall log lines from %s ignored: not a configured router nor in scan.allow", sender)
