"""Hosts for the cross-host tests: Linux network namespaces joined by veth links, and the daemons in them.

Each namespace is a host with its own interfaces, addresses, routes, TCP settings and loopback;
the file system is shared, so every host gets a directory of its own. Processes are started with
``ip netns exec NS ...`` (which execs the command: the Popen pid is the daemon's own) and stopped
by that pid only. ``in_namespace`` runs a Python callable on a thread that joined a namespace, so
a socket it creates (a simulated router's listener) lives on that host.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

CLONE_NEWNET = 0x40000000
DEADLINE = 30.0


class NamespaceUnavailable(Exception):
    """Network namespaces cannot be made here (not root, no CAP_SYS_ADMIN, a container without them)."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=DEADLINE)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def probe_namespaces(name: str) -> None:
    """Make and remove one namespace, or say why that is impossible here."""
    if os.geteuid() != 0:
        raise NamespaceUnavailable("network namespaces need root (CI runs as root)")
    made = ip("netns", "add", name, check=False)
    if made.returncode != 0:
        raise NamespaceUnavailable(f"cannot make a network namespace: {made.stderr.strip()}")
    ip("netns", "del", name, check=False)


class Network:
    """Namespaces and veth links; removes them all (and so their interfaces) on close."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.namespaces: list[str] = []

    def host(self, role: str) -> str:
        name = f"{self.prefix}-{role}"
        ip("netns", "add", name)
        self.namespaces.append(name)
        ip("-n", name, "link", "set", "lo", "up")
        return name

    def link(self, a: str, a_if: str, a_addr: str, b: str, b_if: str, b_addr: str) -> None:
        """A veth pair: ``a_if`` in namespace ``a`` with ``a_addr`` (CIDR), ``b_if`` in ``b``."""
        ip("link", "add", a_if, "netns", a, "type", "veth", "peer", "name", b_if, "netns", b)
        for ns, ifname, addr in ((a, a_if, a_addr), (b, b_if, b_addr)):
            ip("-n", ns, "addr", "add", addr, "dev", ifname)
            ip("-n", ns, "link", "set", ifname, "up")

    def set_link(self, ns: str, ifname: str, up: bool) -> None:
        ip("-n", ns, "link", "set", ifname, "up" if up else "down")

    def sysctl(self, ns: str, key: str, value: str) -> None:
        subprocess.run(
            ["ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"{key}={value}"], check=True, timeout=DEADLINE
        )

    def close(self) -> None:
        for name in reversed(self.namespaces):
            ip("netns", "del", name, check=False)
        self.namespaces.clear()


_libc = ctypes.CDLL(None, use_errno=True)


def in_namespace(ns: str, function: Callable[[], object]) -> object:
    """``function()`` on a thread that joined network namespace ``ns`` (setns affects only that thread)."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    error = ctypes.get_errno()
                    raise OSError(error, f"setns {ns}: {os.strerror(error)}")
            finally:
                os.close(fd)
            outcome["value"] = function()
        except BaseException as exc:  # noqa: BLE001 -- handed to the caller
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=f"in-{ns}")
    thread.start()
    thread.join(DEADLINE)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome.get("value")


class Daemon:
    """One process in a namespace, its stdout and stderr in a log file."""

    def __init__(self, ns: str, argv: Sequence[str], log: Path, env: dict | None = None):
        self.ns = ns
        self.argv = list(argv)
        self.log = log
        self.env = env
        self.process: subprocess.Popen | None = None

    def start(self) -> Daemon:
        handle = open(self.log, "ab")
        try:
            self.process = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, *self.argv],
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
            )
        finally:
            handle.close()
        return self

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = DEADLINE) -> int | None:
        if not self.running():
            return self.process.returncode if self.process else None
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout)
