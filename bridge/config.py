"""The one TOML configuration file of snort-bridge (bridge and responder).

The keys are a contract (see README "Configuration"): extend, don't rename. ``load_config``
checks the whole file at start and raises ConfigError naming each bad key and what is expected.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Dict, List, Literal, Optional, Tuple, Union

from responder.config import RouterConfig

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

DEFAULT_CONFIG_PATH = "/etc/tzsp-ips/config.toml"
CONFIG_ENV = "TZSP_IPS_CONFIG"

ALERT_FORMATS = ("auto", "fast", "syslog", "json", "csv", "eve")


class ConfigError(ValueError):
    """A configuration problem; ``problems`` lists each as "key: what is wrong"."""

    def __init__(self, problems: List[str], path: str = ""):
        self.problems = list(problems)
        self.path = path
        where = f"{path}: " if path else ""
        super().__init__(where + "; ".join(self.problems))


@dataclass(frozen=True)
class PolicyConfig:
    min_priority: int = 1
    portscan: bool = True
    block_for: float = 300.0  # seconds
    protected: Tuple[Network, ...] = (ipaddress.ip_network("192.168.0.0/16"),)
    threshold: int = 1
    window: float = 60.0
    include_sids: Tuple[str, ...] = ()  # "gid:sid"; empty = all
    exclude_sids: Tuple[str, ...] = ()
    attacker: Dict[str, Literal["src", "dst"]] = field(default_factory=dict)  # per "gid:sid"
    max_new_blocks_per_minute: int = 100
    rollback: int = 0
    # Where the alert format cannot show whether a gid-122 alert sits on a reply packet,
    # "evidence" blocks only with supporting evidence, "src" trusts the source (Snort 2 style).
    portscan_attribution: Literal["evidence", "src"] = "evidence"


@dataclass(frozen=True)
class AlertSource:
    path: str
    format: str = "auto"


@dataclass(frozen=True)
class ScanConfig:
    ports: int = 15
    window: float = 10.0
    syslog: Optional[str] = None  # "host:port" UDP listener for RouterOS firewall log lines
    files: Tuple[str, ...] = ()
    low_port_weight: int = 1  # psd-style: ports < 1024 count this many times (1 = off)


@dataclass(frozen=True)
class Config:
    state_dir: str = "/var/lib/tzsp-ips"
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    alerts: Tuple[AlertSource, ...] = ()
    scan: Optional[ScanConfig] = None
    routers: Tuple[RouterConfig, ...] = ()
    path: str = ""  # the file it was read from
