"""Shared by the responder tests: a configuration file on disk, and simulated routers over real SSH."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterable, List, Sequence

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519


def write_config(tmp_path: Path, routers: Sequence[dict], *, protected: Iterable[str] = ("192.168.0.0/16",),
                 extra: str = "") -> str:
    """A snort-bridge TOML file with ``routers`` (dicts of router keys); returns its path."""
    lines = [f'state_dir = "{tmp_path / "state"}"', "", "[policy]", 'block_for = "5m"',
             "protected = [" + ", ".join(f'"{p}"' for p in protected) + "]", extra, ""]
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


def client_key(tmp_path: Path, name: str = "id_ed25519") -> tuple:
    """An ed25519 client key file (mode 0600, OpenSSH format) and its paramiko key."""
    private = ed25519.Ed25519PrivateKey.generate()
    path = tmp_path / name
    path.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                           serialization.NoEncryption()))
    os.chmod(path, 0o600)
    return str(path), paramiko.PKey.from_path(str(path))


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def commands_matching(log: List[tuple], word: str) -> List[str]:
    """Commands from a SimRouter's commands_log containing ``word``."""
    return [command for _, command in log if word in command]
