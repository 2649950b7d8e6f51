"""Shared by the responder tests: a configuration file on disk, and simulated routers over real SSH."""

from __future__ import annotations

import functools
import ipaddress
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from bridge.config.load import parse_config
from plumbing.loopback import wait_until  # noqa: F401 -- the responder tests import it from here
from responder.responder import Responder
from responder.sim import SimRouter
from responder.transport import known_hosts


def write_config(
    tmp_path: Path, routers: Sequence[dict], *, protected: Iterable[str] = ("192.168.0.0/16",), extra: str = ""
) -> str:
    """A snort-bridge TOML file with ``routers`` (dicts of router keys); returns its path."""
    lines = [
        f'state_dir = "{tmp_path / "state"}"',
        "",
        "[policy]",
        'block_for = "5m"',
        "protected = [" + ", ".join(f'"{p}"' for p in protected) + "]",
        extra,
        "",
    ]
    for router in routers:
        lines.append("[[routers]]")
        for key, value in router.items():
            if isinstance(value, bool):
                lines.append(f"{key} = {'true' if value else 'false'}")
            elif isinstance(value, (int, float)):
                lines.append(f"{key} = {value}")
            else:
                lines.append(f'{key} = "{value}"')
        lines.append("")
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines))
    os.chmod(path, 0o600)
    return str(path)


def write_ed25519(path: Path) -> paramiko.PKey:
    """A fresh ed25519 private key file at ``path`` (OpenSSH format, mode 0600), read back by paramiko."""
    private = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    )
    os.chmod(path, 0o600)
    return paramiko.PKey.from_path(str(path))


def client_key(tmp_path: Path, name: str = "id_ed25519") -> tuple:
    """An ed25519 client key file in ``tmp_path``: its path and its paramiko key."""
    path = tmp_path / name
    return str(path), write_ed25519(path)


LIST = "blacklist"
_GUARDED_RE = re.compile(r':do \{(.*?)\} on-error=\{:put "tzsp-ips-failed \d+"\}')


def unbatch(line: str) -> list[str]:
    """The commands in one exec line: those of a batch of guarded adds, else the line itself."""
    return _GUARDED_RE.findall(line) or [line]


class FakeClock:
    """A clock for RouterState/SimRouter that moves only when told to."""

    def __init__(self, start: float = 1_790_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@functools.cache
def shared_host_key() -> paramiko.RSAKey:
    """One RSA host key for the whole test run: generating a 2048-bit key is the slow part of a SimRouter."""
    return paramiko.RSAKey.generate(2048)


class Lab:
    """Simulated routers with our key authorised, their host keys in known_hosts, and a config.

    Every router has the same host key, ``shared_host_key()``; a test about a changed or unknown
    host key makes its impostor with ``SimRouter()``, which generates a key of its own.
    """

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.key_path, self.key = client_key(tmp_path)
        self.known_hosts = str(tmp_path / "known_hosts")
        self.sims = {}
        self.ports = {}
        self.responders = []

    def add(self, name, *, policies=("ssh", "read", "write"), start=True, port=None):
        sim = SimRouter(host_key=shared_host_key())
        sim.add_user("ips", authorized_keys=(self.key,), policies=policies)
        self.sims[name] = sim
        if start:
            self.ports[name] = sim.start("127.0.0.1", port or 0)
        else:
            self.ports[name] = port
        known_hosts.record(
            self.known_hosts,
            known_hosts.host_name("127.0.0.1", self.ports[name]),
            sim.host_key.get_name(),
            sim.host_key.asbytes(),
        )
        return sim

    def router_table(self, name, port, **extra):
        table = dict(
            name=name,
            host="127.0.0.1",
            port=port,
            user="ips",
            key_file=self.key_path,
            known_hosts=self.known_hosts,
            list=LIST,
            connect_timeout="3s",
            command_timeout="3s",
            reconcile_interval="60s",
        )
        table.update(extra)
        return table

    def config(self, extra_routers=(), **router_extra):
        routers = [self.router_table(name, port, **router_extra) for name, port in self.ports.items()]
        routers += list(extra_routers)
        return parse_config({"state_dir": str(self.tmp_path / "state"), "routers": routers})

    def responder(self, config=None, **kwargs):
        kwargs.setdefault("backoff_base", 0.05)
        kwargs.setdefault("backoff_cap", 0.3)
        kwargs.setdefault("poll_interval", 0.1)
        responder = Responder(config or self.config(), **kwargs)
        self.responders.append(responder)
        responder.start()
        return responder

    def entries(self, name, family=4):
        """The router's list keyed by host address (v6 hosts are shown as /128)."""
        return {str(ipaddress.ip_interface(e.address).ip): e for e in self.sims[name].address_list(LIST, family)}

    def sent(self, name, word):
        """Commands our responder (user ips) sent to router ``name`` containing ``word``; a batched
        SSH line (commands.render_batches) counts as the commands in it."""
        return [c for user, line in self.sims[name].commands_log if user == "ips" for c in unbatch(line) if word in c]

    def adds(self, name):
        return self.sent(name, " add ")

    def close(self):
        for responder in self.responders:
            responder.stop(timeout=5.0)
        for sim in self.sims.values():
            sim.stop()
