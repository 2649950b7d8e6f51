"""How to reach one router and what to do there. Filled by bridge.config from the TOML file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class RouterConfig:
    name: str
    host: str
    port: int = 22
    transport: Literal["ssh", "api"] = "ssh"
    user: str = "ips"
    key_file: str | None = None
    password_file: str | None = None  # mode 0600; never a password on the command line
    password_env: str | None = None  # name of an environment variable holding the password
    known_hosts: str = "/etc/tzsp-ips/known_hosts"  # OpenSSH format; [host]:port for port != 22
    list: str = "blacklist"
    mode: Literal["address-list", "script"] = "address-list"
    script: str = "filter"  # with mode = "script": `:global ip <addr>; /system script run <script>`
    block_in: Literal["filter", "raw"] = "filter"  # where provision puts the drop rules (raw: before conntrack)
    refresh_existing: bool = True  # on "already have such entry", re-arm its timeout
    connect_timeout: float = 5.0
    command_timeout: float = 5.0
    keepalive: float = 15.0  # seconds between SSH keepalives
    reconcile_interval: float = 60.0  # seconds between desired/actual comparisons
    # API transport (issue 6); unused with ssh
    tls: bool = False
    ca_file: str | None = None
    fingerprint: str | None = None  # pinned SHA-256 of the router's certificate

    @property
    def known_hosts_key(self) -> str:
        """The host name as OpenSSH writes it in known_hosts."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"
