"""Simulated routers for the benchmarks: a client key they accept, started in a child process, trusted.

The routers run in their own process so they do not share the measuring process's interpreter
lock; the child calls ``start_routers`` and the parent ``trust_routers`` with what it sent back.
"""

from __future__ import annotations

import os

from responder.transport import known_hosts

USER = "ips"
Identity = tuple[int, str, bytes]  # (SSH port on 127.0.0.1, host key type, host key blob)


def write_client_key(path: str) -> str:
    """A fresh ed25519 private key at ``path`` (OpenSSH format, mode 0600); returns its public key line."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private = ed25519.Ed25519PrivateKey.generate()
    with open(path, "wb") as handle:
        handle.write(
            private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
            )
        )
    os.chmod(path, 0o600)
    return (
        private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    )


def start_routers(count: int, public_key: str, conn) -> list:
    """In the child: ``count`` SimRouters on loopback, user ``ips`` logs in with ``public_key``.

    Sends their identities (a list of ``Identity``) to the parent over ``conn``; returns the routers.
    """
    from responder.sim import SimRouter

    sims = []
    for _ in range(count):
        sim = SimRouter()
        sim.add_user(USER, authorized_keys=(public_key,))
        sim.start("127.0.0.1", 0)
        sims.append(sim)
    conn.send([(sim.port, sim.host_key.get_name(), sim.host_key.asbytes()) for sim in sims])
    return sims


def trust_routers(known_hosts_path: str, identities: list[Identity]) -> None:
    """In the parent: record every router's host key in ``known_hosts_path``."""
    for port, key_type, blob in identities:
        known_hosts.record(known_hosts_path, known_hosts.host_name("127.0.0.1", port), key_type, blob)
