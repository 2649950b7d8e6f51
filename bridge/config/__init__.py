"""The one TOML configuration file of snort-bridge (bridge and responder).

The keys are a contract (see README "Configuration"): extend, don't rename. ``load_config``
checks the whole file at start and raises ConfigError naming each bad key and what is expected.
Here: the sections as dataclasses and the entry points. The checks of each table are in
bridge/config/check/, the commented example in bridge/config/example.py.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bridge.config.example import example_config  # noqa: F401 -- re-exported
from responder.config import RouterConfig

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_CONFIG_PATH = "/etc/tzsp-ips/config.toml"
CONFIG_ENV = "TZSP_IPS_CONFIG"

ALERT_FORMATS = ("auto", "fast", "syslog", "json", "csv", "eve")


class ConfigError(ValueError):
    """A configuration problem; ``problems`` lists each as "key: what is wrong"."""

    def __init__(self, problems: list[str], path: str = ""):
        self.problems = list(problems)
        self.path = path
        where = f"{path}: " if path else ""
        super().__init__(where + "; ".join(self.problems))


@dataclass(frozen=True)
class PolicyConfig:
    min_priority: int = 1
    portscan: bool = True
    block_for: float = 300.0  # seconds
    protected: tuple[Network, ...] = (ipaddress.ip_network("192.168.0.0/16"),)
    threshold: int = 1
    window: float = 60.0
    include_sids: tuple[str, ...] = ()  # "gid:sid"; empty = all
    exclude_sids: tuple[str, ...] = ()
    attacker: dict[str, Literal["src", "dst"]] = field(default_factory=dict)  # per "gid:sid"
    max_new_blocks_per_minute: int = 100
    rollback: int = 0
    # Where the alert format cannot show whether a gid-122 alert sits on a reply packet,
    # "evidence" blocks only with supporting evidence, "src" trusts the source (Snort 2 style).
    portscan_attribution: Literal["evidence", "src"] = "evidence"
    # Repeat offenders (bridge/decide/durations.py): the n-th block of an address within remember_for
    # lasts base * repeat_factor^(n-1), at most max_block_for. The base is the first that applies:
    # block_for_networks (longest prefix), block_for_rules ("gid:sid"), block_for.
    repeat_factor: float = 4.0  # 1 = no escalation
    max_block_for: float = 7 * 86400.0
    remember_for: float = 30 * 86400.0
    block_for_rules: dict[str, float] = field(default_factory=dict)
    block_for_networks: dict[Network, float] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertSource:
    path: str
    format: str = "auto"


@dataclass(frozen=True)
class ScanConfig:
    ports: int = 15
    window: float = 10.0
    syslog: str | None = None  # "host:port" UDP listener for RouterOS firewall log lines
    files: tuple[str, ...] = ()
    low_port_weight: int = 1  # psd-style: ports < 1024 count this many times (1 = off)
    # Who may send firewall log lines to the syslog listener; empty = the configured routers.
    # UDP is spoofable: a forged line could otherwise make the IPS block whom the forger likes.
    allow: tuple[Network, ...] = ()
    # [[routers]] names whose own firewall log is followed over their connection (API /log/listen,
    # SSH /log print follow): no syslog listener to open, no remote logging to set up.
    routers: tuple[str, ...] = ()


# Events [notify] can announce (see docs/bridge.md "Notifications"); DEFAULT_NOTIFY_EVENTS if unset.
NOTIFY_EVENTS = ("block", "unblock", "router_down", "router_up", "flood_guard", "sensor_silent", "snort_restarted")
DEFAULT_NOTIFY_EVENTS = ("block", "router_down", "router_up", "flood_guard", "sensor_silent")
# With tzspd_metrics and no events key, snort_restarted is told too: listing the endpoints asks for it.
DEFAULT_NOTIFY_EVENTS_WITH_TZSPD = DEFAULT_NOTIFY_EVENTS + ("snort_restarted",)
MAX_TZSPD_METRICS = 64  # endpoints polled by one bridge


@dataclass(frozen=True)
class NotifyConfig:
    urls_file: str | None = None  # apprise URLs, one per line; mode 0600 (they hold tokens)
    urls_env: str | None = None  # or: an environment variable holding them (whitespace-separated)
    events: tuple[str, ...] = DEFAULT_NOTIFY_EVENTS
    min_interval: float = 60.0  # later events of a kind within this are sent as one digest
    silent_after: float = 3600.0  # sensor_silent: no line from an alert file for this long
    # snort_restarted: tzspd --metrics endpoints ("HOST:PORT" or an http(s):// URL) polled for consumer restarts
    tzspd_metrics: tuple[str, ...] = ()


@dataclass(frozen=True)
class HttpConfig:
    """[http]: /metrics, /health and the status page (bridge.watching.web)."""

    listen: str = "127.0.0.1:9470"
    token_file: str | None = None  # mode 0600; required when listen is not loopback
    silent_after: float | None = None  # /health complains when no alert line (or datagram) for this long
    tzspd: str | None = None  # "host:port" of tzspd --metrics, shown on the page and checked by /health


@dataclass(frozen=True)
class Config:
    state_dir: str = "/var/lib/tzsp-ips"
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    alerts: tuple[AlertSource, ...] = ()
    scan: ScanConfig | None = None
    routers: tuple[RouterConfig, ...] = ()
    path: str = ""  # the file it was read from
    notify: NotifyConfig | None = None  # [notify]; None = no notifications
    http: HttpConfig | None = None


# ---------------------------------------------------------------------------------------------
# Loading (the checks themselves: bridge/config/check/)
# ---------------------------------------------------------------------------------------------

MAX_BLOCK_SECONDS = 10 * 365 * 86400.0  # beyond RouterOS' timeouts the responder keeps a static entry
DURATION_EXPECTED = 'expected a duration such as "30s", "5m", "1d2h" or "00:05:00"'


def default_config_path() -> str:
    """--config is absent: $TZSP_IPS_CONFIG, else /etc/tzsp-ips/config.toml."""
    return os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH


def load_config(path: str | None = None) -> Config:
    """Read and check the file at ``path`` (else $TZSP_IPS_CONFIG, else the default path)."""
    path = path or default_config_path()
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
            mode = os.fstat(handle.fileno()).st_mode
    except OSError as exc:
        raise ConfigError([f"cannot read the configuration file: {exc.strerror or exc}"], path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"not UTF-8 text (byte {exc.start}); TOML files are UTF-8"], path) from None
    return _parse(text, path, file_mode=mode)


def parse_config(text_or_dict: str | Mapping[str, Any], path: str = "") -> Config:
    """Check a TOML text (or an already-parsed table) and build the Config; ConfigError lists every problem."""
    return _parse(text_or_dict, path, file_mode=None)


def _parse(text_or_dict: str | Mapping[str, Any], path: str, file_mode: int | None) -> Config:
    if isinstance(text_or_dict, str):
        try:
            data = tomllib.loads(text_or_dict)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"not valid TOML: {exc}"], path) from None
    elif isinstance(text_or_dict, Mapping):
        data = dict(text_or_dict)
    else:
        raise ConfigError([f"expected TOML text or a table, got {type(text_or_dict).__name__}"], path)
    # bridge.configcheck builds the dataclasses above, so it imports this module: importing it
    # here, at the first parse, keeps the two from importing each other while they load.
    from bridge.config.check import Checker

    checker = Checker(base_dir=os.path.dirname(os.path.abspath(path)) if path else "", file_mode=file_mode)
    config = checker.config(data, path)
    if checker.problems:
        raise ConfigError(checker.problems, path)
    return config
