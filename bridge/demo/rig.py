"""The demo's rig: keys, two routeros-sim routers, the snort-bridge configuration that points at them,
their address lists; and the small helpers (free ports, polling, log files) the run uses.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from plumbing.loopback import free_port, wait_until

from .capture import LAN

LIST = "tzsp-ips-blocked"
ROUTERS = ("core1", "edge2")


def _write_key(path: Path) -> object:
    """A fresh ed25519 key in OpenSSH format (mode 0600), with its .pub beside it; returns the paramiko key."""
    import paramiko
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    )
    os.chmod(path, 0o600)
    key = paramiko.PKey.from_path(str(path))
    Path(f"{path}.pub").write_text(f"{key.get_name()} {key.get_base64()} tzsp-ips-demo\n")
    return key


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


class Demo:
    def __init__(self, workdir: Path):
        self.dir = workdir
        self.processes: list[subprocess.Popen] = []
        self.handles: list = []
        self.routers: dict[str, int] = {}
        self.fingerprints: dict[str, str] = {}

    def spawn(self, argv: list[str], log_name: str, **kwargs) -> subprocess.Popen:
        handle = open(self.dir / log_name, "ab")
        self.handles.append(handle)
        process = subprocess.Popen(argv, stdout=kwargs.pop("stdout", handle), stderr=handle, **kwargs)
        self.processes.append(process)
        return process

    def cleanup(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in reversed(self.processes):
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for handle in self.handles:
            handle.close()

    # the parts

    def start_routers(self) -> None:
        from responder.transport import known_hosts
        from responder.transport.ssh import key_fingerprint

        _write_key(self.dir / "id_ed25519")
        known = self.dir / "known_hosts"
        for name in ROUTERS:
            host_key = _write_key(self.dir / f"{name}_host_key")
            port = free_port(socket.SOCK_STREAM)
            process = self.spawn(
                [
                    sys.executable,
                    "-m",
                    "responder.sim.cli",
                    "--listen",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--user",
                    "ips",
                    "--authorized-key",
                    str(self.dir / "id_ed25519.pub"),
                    "--host-key",
                    str(self.dir / f"{name}_host_key"),
                    "--identity",
                    name,
                ],
                f"{name}.log",
            )
            if not wait_until(
                lambda name=name, process=process: (
                    "listening on" in _text(self.dir / f"{name}.log") or process.poll() is not None
                ),
                15,
            ):
                raise RuntimeError(f"routeros-sim {name} did not start")
            if process.poll() is not None:
                raise RuntimeError(f"routeros-sim {name} stopped: {_text(self.dir / f'{name}.log')}")
            known_hosts.record(
                str(known), known_hosts.host_name("127.0.0.1", port), host_key.get_name(), host_key.asbytes()
            )
            self.routers[name] = port
            self.fingerprints[name] = key_fingerprint(host_key)

    def write_config(self, alerts: list[tuple[str, str]]) -> Path:
        lines = [
            "# written by the tzsp-ips demo",
            f'state_dir = "{self.dir / "state"}"',
            "",
            "[policy]",
            f'protected = ["{LAN}"]',
            'block_for = "10m"',
            "",
            "[scan]",
            "ports = 15",
            'window = "10s"',
            "",
        ]
        for path, fmt in alerts:
            lines += ["[[alerts]]", f'path = "{path}"', f'format = "{fmt}"', ""]
        for name, port in self.routers.items():
            lines += [
                "[[routers]]",
                f'name = "{name}"',
                'host = "127.0.0.1"',
                f"port = {port}",
                'user = "ips"',
                f'key_file = "{self.dir / "id_ed25519"}"',
                f'known_hosts = "{self.dir / "known_hosts"}"',
                f'list = "{LIST}"',
                'connect_timeout = "3s"',
                "",
            ]
        path = self.dir / "config.toml"
        path.write_text("\n".join(lines))
        os.chmod(path, 0o600)
        return path

    def address_lists(self, config) -> dict[str, tuple[set, str]]:
        """Per router: the addresses in the list, and the list as the router prints it."""
        from responder.transport.ssh_session import RouterSession

        result = {}
        for router in config.routers:
            with RouterSession(router) as session:
                addresses = {str(address) for address in session.list_blocks()}
                printed = session.run(f"/ip firewall address-list print where list={LIST}")
            result[router.name] = (addresses, printed)
        return result
