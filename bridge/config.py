"""The one TOML configuration file of snort-bridge (bridge and responder).

The keys are a contract (see README "Configuration"): extend, don't rename. ``load_config``
checks the whole file at start and raises ConfigError naming each bad key and what is expected.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import stat
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Literal, Mapping, Optional, Tuple, Union

from responder.config import RouterConfig
from responder.routeros.duration import MAX_TIMEOUT_SECONDS, DurationError, format_duration, parse_duration
from responder.routeros.commands import NAME_RE as ROUTEROS_NAME_RE

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

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
    # Repeat offenders (bridge/durations.py): the n-th block of an address within remember_for
    # lasts base * repeat_factor^(n-1), at most max_block_for. The base is the first that applies:
    # block_for_networks (longest prefix), block_for_rules ("gid:sid"), block_for.
    repeat_factor: float = 4.0  # 1 = no escalation
    max_block_for: float = 7 * 86400.0
    remember_for: float = 30 * 86400.0
    block_for_rules: Dict[str, float] = field(default_factory=dict)
    block_for_networks: Dict[Network, float] = field(default_factory=dict)


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
    # Who may send firewall log lines to the syslog listener; empty = the configured routers.
    # UDP is spoofable: a forged line could otherwise make the IPS block whom the forger likes.
    allow: Tuple[Network, ...] = ()


# Events [notify] can announce (see docs/bridge.md "Notifications"); DEFAULT_NOTIFY_EVENTS if unset.
NOTIFY_EVENTS = ("block", "unblock", "router_down", "router_up", "flood_guard", "sensor_silent", "snort_restarted")
DEFAULT_NOTIFY_EVENTS = ("block", "router_down", "router_up", "flood_guard", "sensor_silent")
# With tzspd_metrics and no events key, snort_restarted is told too: listing the endpoints asks for it.
DEFAULT_NOTIFY_EVENTS_WITH_TZSPD = DEFAULT_NOTIFY_EVENTS + ("snort_restarted",)
MAX_TZSPD_METRICS = 64  # endpoints polled by one bridge


@dataclass(frozen=True)
class NotifyConfig:
    urls_file: Optional[str] = None  # apprise URLs, one per line; mode 0600 (they hold tokens)
    urls_env: Optional[str] = None  # or: an environment variable holding them (whitespace-separated)
    events: Tuple[str, ...] = DEFAULT_NOTIFY_EVENTS
    min_interval: float = 60.0  # later events of a kind within this are sent as one digest
    silent_after: float = 3600.0  # sensor_silent: no line from an alert file for this long
    # snort_restarted: tzspd --metrics endpoints ("HOST:PORT" or an http(s):// URL) polled for consumer restarts
    tzspd_metrics: Tuple[str, ...] = ()


@dataclass(frozen=True)
class HttpConfig:
    """[http]: /metrics, /health and the status page (bridge.web)."""

    listen: str = "127.0.0.1:9470"
    token_file: Optional[str] = None  # mode 0600; required when listen is not loopback
    silent_after: Optional[float] = None  # /health complains when no alert line (or datagram) for this long
    tzspd: Optional[str] = None  # "host:port" of tzspd --metrics, shown on the page and checked by /health


@dataclass(frozen=True)
class Config:
    state_dir: str = "/var/lib/tzsp-ips"
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    alerts: Tuple[AlertSource, ...] = ()
    scan: Optional[ScanConfig] = None
    routers: Tuple[RouterConfig, ...] = ()
    path: str = ""  # the file it was read from
    notify: Optional[NotifyConfig] = None  # [notify]; None = no notifications
    http: Optional[HttpConfig] = None


# ---------------------------------------------------------------------------------------------
# Loading and checking
# ---------------------------------------------------------------------------------------------

MAX_BLOCK_SECONDS = 10 * 365 * 86400.0  # beyond RouterOS' timeouts the responder keeps a static entry
DURATION_EXPECTED = 'expected a duration such as "30s", "5m", "1d2h" or "00:05:00"'
_SID_RE = re.compile(r"^\d{1,10}:\d{1,10}$")
# Router names end up on our command line and in logs: a conservative alphabet. List and script
# names end up inside RouterOS commands: the renderer's own rule (ROUTEROS_NAME_RE) decides.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?$")
_USER_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FINGERPRINT_RE = re.compile(r"^(?:sha256:)?(?:[0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$")

_SECRET_HINT = (
    "a password is not allowed in the configuration file; put it in a file of its own named by "
    "password_file (mode 0600) or in an environment variable named by password_env"
)


def default_config_path() -> str:
    """--config is absent: $TZSP_IPS_CONFIG, else /etc/tzsp-ips/config.toml."""
    return os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH


def load_config(path: Optional[str] = None) -> Config:
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


def parse_config(text_or_dict: "str | Mapping[str, Any]", path: str = "") -> Config:
    """Check a TOML text (or an already-parsed table) and build the Config; ConfigError lists every problem."""
    return _parse(text_or_dict, path, file_mode=None)


def _parse(text_or_dict: "str | Mapping[str, Any]", path: str, file_mode: Optional[int]) -> Config:
    if isinstance(text_or_dict, str):
        try:
            data = tomllib.loads(text_or_dict)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"not valid TOML: {exc}"], path) from None
    elif isinstance(text_or_dict, Mapping):
        data = dict(text_or_dict)
    else:
        raise ConfigError([f"expected TOML text or a table, got {type(text_or_dict).__name__}"], path)
    checker = _Checker(base_dir=os.path.dirname(os.path.abspath(path)) if path else "", file_mode=file_mode)
    config = checker.config(data, path)
    if checker.problems:
        raise ConfigError(checker.problems, path)
    return config


def _did_you_mean(key: str, known: "Tuple[str, ...] | List[str]") -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    return "unknown key; expected one of " + ", ".join(sorted(known))


class _Checker:
    """Walks the parsed TOML once, collecting every problem instead of stopping at the first."""

    def __init__(self, base_dir: str, file_mode: Optional[int]):
        self.problems: List[str] = []
        self.base_dir = base_dir
        self.file_mode = file_mode

    # -- small typed getters: each returns the default (and records a problem) when wrong ------

    def problem(self, key: str, text: str) -> None:
        self.problems.append(f"{key}: {text}")

    def table(self, data: Mapping[str, Any], name: str, key: str) -> Optional[Mapping[str, Any]]:
        value = data.get(name)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.problem(key, f"expected a table ([{name}]), got {_kind(value)}")
            return None
        return value

    def unknown(self, table: Mapping[str, Any], known: Tuple[str, ...], prefix: str) -> None:
        for name in table:
            if name in known:
                continue
            if name == "password":
                self.password_in_file(_join(prefix, name))
                continue
            self.problem(_join(prefix, name), _did_you_mean(name, known))

    def get(self, table: Mapping[str, Any], name: str, prefix: str, default: Any, check: Callable[[str, Any], Any]) -> Any:
        if name not in table:
            return default
        result = check(_join(prefix, name), table[name])
        return default if result is _BAD else result

    def integer(self, low: int, high: Optional[int] = None) -> Callable[[str, Any], Any]:
        def check(key: str, value: Any) -> Any:
            if isinstance(value, bool) or not isinstance(value, int):
                self.problem(key, f"expected a whole number, got {_kind(value)}")
                return _BAD
            if value < low or (high is not None and value > high):
                span = f"{low}..{high}" if high is not None else f">= {low}"
                self.problem(key, f"{value} is out of range, expected {span}")
                return _BAD
            return value

        return check

    def boolean(self, key: str, value: Any) -> Any:
        if not isinstance(value, bool):
            self.problem(key, f"expected true or false, got {_kind(value)}")
            return _BAD
        return value

    def text(self, key: str, value: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            self.problem(key, f"expected a non-empty string, got {_kind(value)}")
            return _BAD
        if any(ord(ch) < 32 for ch in value):
            self.problem(key, "control characters are not allowed")
            return _BAD
        return value

    def pattern(self, regex: "re.Pattern[str]", expected: str) -> Callable[[str, Any], Any]:
        def check(key: str, value: Any) -> Any:
            if not isinstance(value, str) or not regex.match(value):
                self.problem(key, f"expected {expected}, got {value!r}")
                return _BAD
            return value

        return check

    def choice(self, options: Tuple[str, ...]) -> Callable[[str, Any], Any]:
        def check(key: str, value: Any) -> Any:
            if value not in options:
                self.problem(key, f"expected one of {' | '.join(options)}, got {value!r}")
                return _BAD
            return value

        return check

    def duration(self, minimum: float = 0.0, maximum: Optional[float] = None) -> Callable[[str, Any], Any]:
        def check(key: str, value: Any) -> Any:
            try:
                seconds = parse_duration(value)
            except DurationError:
                self.problem(key, f"{DURATION_EXPECTED}, got {value!r}")
                return _BAD
            if seconds <= minimum:
                self.problem(key, f"expected a duration longer than {minimum:g}s, got {value!r}")
                return _BAD
            if maximum is not None and seconds > maximum:
                self.problem(key, f"expected at most {maximum:g}s (RouterOS' longest timeout), got {value!r}")
                return _BAD
            return seconds

        return check

    def path(self, key: str, value: Any) -> Any:
        value = self.text(key, value)
        if value is _BAD:
            return _BAD
        value = os.path.expanduser(value)
        if self.base_dir and not os.path.isabs(value):
            value = os.path.join(self.base_dir, value)  # relative to the configuration file
        return value

    def string_list(self, each: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
        def check(key: str, value: Any) -> Any:
            if not isinstance(value, list):
                self.problem(key, f"expected a list [...], got {_kind(value)}")
                return _BAD
            items = [each(f"{key}[{i}]", item) for i, item in enumerate(value)]
            return tuple(item for item in items if item is not _BAD)

        return check

    def network(self, key: str, value: Any) -> Any:
        if not isinstance(value, str):
            self.problem(key, f"expected a network such as \"10.0.0.0/8\" or \"2001:db8::/32\", got {_kind(value)}")
            return _BAD
        try:
            return ipaddress.ip_network(value.strip(), strict=True)
        except ValueError:
            try:
                loose = ipaddress.ip_network(value.strip(), strict=False)
            except ValueError:
                self.problem(key, f"expected a network such as \"10.0.0.0/8\" or \"2001:db8::/32\", got {value!r}")
                return _BAD
            self.problem(key, f"{value!r} has host bits set; did you mean \"{loose}\"?")
            return _BAD

    # -- sections ----------------------------------------------------------------------------

    def config(self, data: Mapping[str, Any], path: str) -> Config:
        known = ("state_dir", "policy", "alerts", "scan", "routers", "http", "notify")
        self.unknown(data, known, "")
        state_dir = self.get(data, "state_dir", "", Config.state_dir, self.path)
        policy_table = self.table(data, "policy", "policy")
        policy = self.policy(policy_table) if policy_table is not None else PolicyConfig()
        scan_table = self.table(data, "scan", "scan")
        scan = self.scan(scan_table) if scan_table is not None else None
        alerts = self.array(data, "alerts", self.alert_source)
        routers = self.array(data, "routers", self.router)
        notify_table = self.table(data, "notify", "notify")
        notify = self.notify(notify_table) if notify_table is not None else None
        self.unique([(i, a.path) for i, a in alerts], "alerts", "path")
        self.unique([(i, r.name) for i, r in routers], "routers", "name")
        http_table = self.table(data, "http", "http")
        http = self.http(http_table) if http_table is not None else None
        return Config(
            state_dir=state_dir,
            policy=policy,
            alerts=tuple(a for _, a in alerts),
            scan=scan,
            routers=tuple(r for _, r in routers),
            path=path,
            http=http,
            notify=notify,
        )

    def array(self, data: Mapping[str, Any], name: str, build: Callable[[Mapping[str, Any], str], Any]) -> List[Tuple[int, Any]]:
        """The valid entries of an array of tables, each with its index (for error messages)."""
        value = data.get(name)
        if value is None:
            return []
        if isinstance(value, Mapping):
            value = [value]  # a single inline table is taken as a one-element array
        if not isinstance(value, list):
            self.problem(name, f"expected an array of tables ([[{name}]]), got {_kind(value)}")
            return []
        built = []
        for index, item in enumerate(value):
            key = f"{name}[{index}]"
            if not isinstance(item, Mapping):
                self.problem(key, f"expected a table, got {_kind(item)}")
                continue
            result = build(item, key)
            if result is not None:
                built.append((index, result))
        return built

    def unique(self, values: List[Tuple[int, str]], array: str, name: str) -> None:
        seen: Dict[str, int] = {}
        for index, value in values:
            if value in seen:
                self.problem(f"{array}[{index}].{name}", f"{value!r} is used twice (also {array}[{seen[value]}]); expected unique values")
            else:
                seen[value] = index

    def policy(self, table: Mapping[str, Any]) -> PolicyConfig:
        p = "policy"
        d = PolicyConfig()
        known = tuple(PolicyConfig.__dataclass_fields__)
        self.unknown(table, known, p)
        sid = self.pattern(_SID_RE, 'a "gid:sid" string such as "1:1000101"')
        block_for = self.get(table, "block_for", p, d.block_for, self.duration(0, MAX_TIMEOUT_SECONDS))
        return PolicyConfig(
            min_priority=self.get(table, "min_priority", p, d.min_priority, self.integer(0, 255)),
            portscan=self.get(table, "portscan", p, d.portscan, self.boolean),
            block_for=block_for,
            protected=self.get(table, "protected", p, d.protected, self.string_list(self.network)),
            threshold=self.get(table, "threshold", p, d.threshold, self.integer(1, 1_000_000)),
            window=self.get(table, "window", p, d.window, self.duration(0)),
            include_sids=self.get(table, "include_sids", p, d.include_sids, self.string_list(sid)),
            exclude_sids=self.get(table, "exclude_sids", p, d.exclude_sids, self.string_list(sid)),
            attacker=self.get(table, "attacker", p, {}, self.attacker_map),
            max_new_blocks_per_minute=self.get(table, "max_new_blocks_per_minute", p, d.max_new_blocks_per_minute, self.integer(1)),
            rollback=self.get(table, "rollback", p, d.rollback, self.integer(0, 100_000)),
            portscan_attribution=self.get(table, "portscan_attribution", p, d.portscan_attribution, self.choice(("evidence", "src"))),
            **self.escalation(table, p, d, block_for),
        )

    def escalation(self, table: Mapping[str, Any], p: str, d: PolicyConfig, block_for: float) -> Dict[str, Any]:
        """repeat_factor, max_block_for, remember_for and the per-rule / per-network durations."""
        longest = self.duration(0, MAX_BLOCK_SECONDS)
        values = {
            "repeat_factor": self.get(table, "repeat_factor", p, d.repeat_factor, self.factor),
            "max_block_for": self.get(table, "max_block_for", p, d.max_block_for, longest),
            "remember_for": self.get(table, "remember_for", p, d.remember_for, longest),
            "block_for_rules": self.get(table, "block_for_rules", p, {}, self.duration_map(self.rule_key, longest)),
            "block_for_networks": self.get(table, "block_for_networks", p, {}, self.duration_map(self.network, longest)),
        }
        if "max_block_for" not in table:  # not set: never shorter than a base the file asks for
            values["max_block_for"] = max([d.max_block_for, block_for, *values["block_for_rules"].values(),
                                           *values["block_for_networks"].values()])
        cap = values["max_block_for"]
        bases = [(f"{p}.block_for", table.get("block_for"), block_for)]
        bases += [(f'{p}.block_for_rules."{k}"', table["block_for_rules"][k], v) for k, v in values["block_for_rules"].items()]
        bases += [(f'{p}.block_for_networks."{k}"', table["block_for_networks"].get(str(k)), v)
                  for k, v in values["block_for_networks"].items()]
        for key, shown, seconds in bases:
            if shown is not None and seconds > cap:
                self.problem(key, f"{shown!r} is longer than {p}.max_block_for ({format_duration(cap)}); "
                                  "raise max_block_for or shorten this")
        return values

    def factor(self, key: str, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= 1000:
            self.problem(key, f"expected a number from 1 (no escalation) to 1000, got {_kind(value)}")
            return _BAD
        return float(value)

    def rule_key(self, key: str, value: Any) -> Any:
        if not _SID_RE.match(value):
            self.problem(key, 'expected a "gid:sid" key such as "1:1000101"')
            return _BAD
        return value

    def duration_map(self, each_key: Callable[[str, Any], Any], check: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
        """A table of key = duration; each key checked by ``each_key`` (problems named by key)."""

        def check_map(key: str, value: Any) -> Any:
            if not isinstance(value, Mapping):
                self.problem(key, f'expected a table such as {{ "1:1000101" = "1h" }}, got {_kind(value)}')
                return _BAD
            result: Dict[Any, float] = {}
            for name, text in value.items():
                entry = f'{key}."{name}"'
                parsed = each_key(entry, name)
                seconds = check(entry, text)
                if parsed is not _BAD and seconds is not _BAD:
                    result[parsed] = seconds
            return result

        return check_map

    def attacker_map(self, key: str, value: Any) -> Any:
        if not isinstance(value, Mapping):
            self.problem(key, f'expected a table such as {{ "1:1000001" = "dst" }}, got {_kind(value)}')
            return _BAD
        result: Dict[str, str] = {}
        for sid, end in value.items():
            entry = f'{key}."{sid}"'
            if not _SID_RE.match(sid):
                self.problem(entry, 'expected a "gid:sid" key such as "1:1000101"')
                continue
            if end not in ("src", "dst"):
                self.problem(entry, f'expected "src" or "dst", got {end!r}')
                continue
            result[sid] = end
        return result

    def alert_source(self, table: Mapping[str, Any], key: str) -> Optional[AlertSource]:
        self.unknown(table, ("path", "format"), key)
        if "path" not in table:
            self.problem(f"{key}.path", "missing; expected the alert file to follow")
        path = self.get(table, "path", key, _BAD, self.path)
        fmt = self.get(table, "format", key, "auto", self.choice(ALERT_FORMATS))
        return None if path is _BAD else AlertSource(path=path, format=fmt)

    def scan(self, table: Mapping[str, Any]) -> ScanConfig:
        p = "scan"
        d = ScanConfig()
        self.unknown(table, tuple(ScanConfig.__dataclass_fields__), p)
        return ScanConfig(
            ports=self.get(table, "ports", p, d.ports, self.integer(2, 65535)),
            window=self.get(table, "window", p, d.window, self.duration(0)),
            syslog=self.get(table, "syslog", p, d.syslog, self.listen_address),
            files=self.get(table, "files", p, d.files, self.string_list(self.path)),
            low_port_weight=self.get(table, "low_port_weight", p, d.low_port_weight, self.integer(1, 100)),
            allow=self.get(table, "allow", p, d.allow, self.string_list(self.network)),
        )

    def notify(self, table: Mapping[str, Any]) -> NotifyConfig:
        p = "notify"
        d = NotifyConfig()
        self.unknown(table, tuple(NotifyConfig.__dataclass_fields__), p)
        where = [name for name in ("urls_file", "urls_env") if name in table]
        if not where:
            self.problem("notify.urls_file", "missing; expected urls_file (apprise URLs, one per line, mode 0600) or urls_env")
        elif len(where) > 1:
            self.problem("notify.urls_env", "cannot be combined with urls_file; expected one of them")
        urls_file = self.get(table, "urls_file", p, None, self.path)
        if urls_file:
            self.secret_file("notify.urls_file", urls_file, "the apprise URLs")
        tzspd_metrics = self.get(table, "tzspd_metrics", p, d.tzspd_metrics, self.string_list(self.metrics_endpoint))
        if len(tzspd_metrics) > MAX_TZSPD_METRICS:
            self.problem(f"{p}.tzspd_metrics", f"{len(tzspd_metrics)} endpoints; expected at most {MAX_TZSPD_METRICS}")
        listed = [v.strip() if isinstance(v, str) else v for v in table.get("tzspd_metrics", ())] \
            if isinstance(table.get("tzspd_metrics"), list) else []
        for index, endpoint in enumerate(listed):
            if isinstance(endpoint, str) and endpoint in listed[:index]:
                self.problem(f"{p}.tzspd_metrics[{index}]", f"{endpoint!r} is listed twice; expected each endpoint once")
        events = self.get(table, "events", p, DEFAULT_NOTIFY_EVENTS_WITH_TZSPD if tzspd_metrics else d.events,
                          self.string_list(self.choice(NOTIFY_EVENTS)))
        if tzspd_metrics and "events" in table and "snort_restarted" not in events:
            # Polling for restarts nobody is told of is surely a mistake (e.g. events copied from the example).
            self.problem(f"{p}.tzspd_metrics", 'set, but notify.events leaves out "snort_restarted"; expected it in '
                                               "events (or no tzspd_metrics)")
        return NotifyConfig(
            urls_file=urls_file,
            urls_env=self.get(table, "urls_env", p, None, self.pattern(_ENV_RE, "the name of an environment variable")),
            events=events,
            min_interval=self.get(table, "min_interval", p, d.min_interval, self.duration(0)),
            silent_after=self.get(table, "silent_after", p, d.silent_after, self.duration(0)),
            tzspd_metrics=tzspd_metrics,
        )

    def metrics_endpoint(self, key: str, value: Any) -> Any:
        """tzspd's --metrics address: "HOST:PORT" (then /metrics over http) or an http(s):// URL."""
        expected = 'expected "HOST:PORT" of tzspd --metrics, or a URL such as "http://10.0.0.5:9471/metrics"'
        if not isinstance(value, str) or not value.strip():
            self.problem(key, f"{expected}, got {_kind(value)}")
            return _BAD
        text = value.strip()
        if "://" not in text:
            match = re.match(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]/]+)):(?P<port>\d{1,5})$", text)
            host = match and (match["v6"] or match["host"])
            if not match or not 1 <= int(match["port"]) <= 65535 or not (_is_ip(host) or _HOSTNAME_RE.match(host)):
                self.problem(key, f"{expected}, got {value!r}")
                return _BAD
            return text
        parts = urllib.parse.urlsplit(text)
        try:
            port = parts.port
        except ValueError:
            port = 0
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or port == 0 or not (_is_ip(host) or _HOSTNAME_RE.match(host)):
            self.problem(key, f"{expected}, got {value!r}")
        elif parts.username is not None or parts.password is not None:
            self.problem(key, "expected no user or password in the URL (it is shown in messages and logs); "
                              "tzspd's metrics need none")
        else:
            return text
        return _BAD

    def http(self, table: Mapping[str, Any]) -> HttpConfig:
        p = "http"
        d = HttpConfig()
        self.unknown(table, tuple(HttpConfig.__dataclass_fields__), p)
        listen = self.get(table, "listen", p, d.listen, self.listen_address)
        token_file = self.get(table, "token_file", p, None, self.path)
        if token_file:
            self.secret_file(f"{p}.token_file", token_file, "the token")
        elif not _loopback_listen(listen):
            self.problem(f"{p}.token_file", f"missing; http.listen = {listen!r} is reachable from other hosts, "
                                            "so every request must carry a token: expected a file holding it (mode 0600)")
        return HttpConfig(
            listen=listen,
            token_file=token_file,
            silent_after=self.get(table, "silent_after", p, None, self.duration(0)),
            tzspd=self.get(table, "tzspd", p, None, self.listen_address),
        )

    def listen_address(self, key: str, value: Any) -> Any:
        expected = 'expected "ADDRESS:PORT" such as "0.0.0.0:5514" or "[::]:5514"'
        if not isinstance(value, str):
            self.problem(key, f"{expected}, got {_kind(value)}")
            return _BAD
        match = re.match(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]+)):(?P<port>\d{1,5})$", value.strip())
        if not match or not 1 <= int(match["port"]) <= 65535:
            self.problem(key, f"{expected}, got {value!r}")
            return _BAD
        host = match["v6"] or match["host"]
        if not (_is_ip(host) or _HOSTNAME_RE.match(host)):
            self.problem(key, f"{expected}; {host!r} is not an address or host name")
            return _BAD
        return value.strip()

    def router(self, table: Mapping[str, Any], key: str) -> Optional[RouterConfig]:
        d = RouterConfig(name="-", host="-")
        known = tuple(RouterConfig.__dataclass_fields__)
        self.unknown(table, known, key)
        ok = True
        for required in ("name", "host"):
            if required not in table:
                self.problem(f"{key}.{required}", "missing; every [[routers]] table needs name and host")
                ok = False
        name = self.get(table, "name", key, _BAD, self.pattern(_NAME_RE, "a name of letters, digits, '_', '.', '-' (up to 64)"))
        host = self.get(table, "host", key, _BAD, self.host)
        secrets = [s for s in ("key_file", "password_file", "password_env") if s in table]
        if len(secrets) > 1:
            self.problem(f"{key}.{secrets[1]}", f"cannot be combined with {secrets[0]}; expected one of key_file, password_file, password_env")
        password_file = self.get(table, "password_file", key, None, self.path)
        if password_file:
            self.secret_file(f"{key}.password_file", password_file)
        durations = {name: self.get(table, name, key, getattr(d, name), self.duration(0)) for name in ("connect_timeout", "command_timeout", "keepalive", "reconcile_interval")}
        transport = self.get(table, "transport", key, d.transport, self.choice(("ssh", "api")))
        api_port = 8729 if table.get("tls") is True else 8728  # RouterOS's api-ssl / api service ports
        self.api_only(table, key, transport)
        router = RouterConfig(
            name=name if name is not _BAD else "-",
            host=host if host is not _BAD else "-",
            port=self.get(table, "port", key, api_port if transport == "api" else d.port, self.integer(1, 65535)),
            transport=transport,
            user=self.get(table, "user", key, d.user, self.pattern(_USER_RE, "a user name of letters, digits, '_', '.', '@', '-'")),
            key_file=self.get(table, "key_file", key, None, self.path),
            password_file=password_file,
            password_env=self.get(table, "password_env", key, None, self.pattern(_ENV_RE, "the name of an environment variable")),
            known_hosts=self.get(table, "known_hosts", key, d.known_hosts, self.path),
            list=self.get(table, "list", key, d.list, self.pattern(ROUTEROS_NAME_RE, "an address-list name of 1-63 letters, digits, '_', '.', '-'")),
            mode=self.get(table, "mode", key, d.mode, self.choice(("address-list", "script"))),
            script=self.get(table, "script", key, d.script, self.pattern(ROUTEROS_NAME_RE, "a script name of 1-63 letters, digits, '_', '.', '-'")),
            refresh_existing=self.get(table, "refresh_existing", key, d.refresh_existing, self.boolean),
            tls=self.get(table, "tls", key, d.tls, self.boolean),
            ca_file=self.get(table, "ca_file", key, None, self.path),
            fingerprint=self.get(table, "fingerprint", key, None, self.pattern(_FINGERPRINT_RE, "a SHA-256 fingerprint (64 hex digits, colons allowed)")),
            **durations,
        )
        if not ok or name is _BAD or host is _BAD:
            return None
        return router

    def api_only(self, table: Mapping[str, Any], key: str, transport: Any) -> None:
        """What the RouterOS API cannot do: log in with a key, or set a script's :global."""
        if transport != "api":
            return
        if "key_file" in table:
            self.problem(f"{key}.key_file", 'the RouterOS API logs in with a password; with transport = "api" '
                                            "use password_file or password_env")
        if table.get("mode") == "script":
            self.problem(f"{key}.mode", 'mode = "script" needs transport = "ssh"')

    def host(self, key: str, value: Any) -> Any:
        if isinstance(value, str) and (_is_ip(value) or _HOSTNAME_RE.match(value)):
            return value
        self.problem(key, f"expected an IP address or a host name, got {value!r}")
        return _BAD

    def password_in_file(self, key: str) -> None:
        text = _SECRET_HINT
        if self.file_mode is not None and self.file_mode & (stat.S_IRGRP | stat.S_IROTH):
            text += (
                f"; this file is readable by others (mode {stat.S_IMODE(self.file_mode):04o}), "
                "so consider that password seen and change it"
            )
        self.problem(key, text)

    def secret_file(self, key: str, path: str, holding: str = "the password") -> None:
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            self.problem(key, f"cannot read {path}: {exc.strerror or exc}; expected a file holding {holding} (mode 0600)")
            return
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            self.problem(
                key,
                f"{path} is readable by group/others (mode {stat.S_IMODE(mode):04o}); expected mode 0600 (chmod 600 {path})",
            )


class _Bad:
    def __repr__(self) -> str:
        return "<bad value>"


_BAD: Any = _Bad()


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _loopback_listen(listen: str) -> bool:
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a table"
    return type(value).__name__


# ---------------------------------------------------------------------------------------------
# The example (`snort-bridge config example`)
# ---------------------------------------------------------------------------------------------

_EXAMPLE = '''\
# tzsp-ips configuration: snort-bridge reads this file at start (--config FILE, else
# $TZSP_IPS_CONFIG, else /etc/tzsp-ips/config.toml) and refuses it, naming each bad key,
# when anything is wrong. Durations are RouterOS-style: "30s", "5m", "1d2h" or "00:05:00".

state_dir = "/var/lib/tzsp-ips"        # ledger, follower positions, pending queue

[policy]
min_priority = 1                       # block alerts with priority <= this (1 = "Priority 1")
portscan = true                        # block port-scan events (gid 122 and the built-in detector)
block_for = "5m"                       # address-list timeout on the routers
protected = ["192.168.0.0/16"]         # never blocked, on either end; IPv4 and IPv6 networks
                                       # (always protected besides: loopback, link-local, multicast,
                                       # unspecified, broadcast, the routers below and this host)
threshold = 1                          # alerts from one address ...
window = "60s"                         # ... within this window before it is blocked
include_sids = []                      # "gid:sid" acted on; empty = all
exclude_sids = []                      # "gid:sid" never acted on, e.g. ["1:2100498"]
attacker = { }                         # per "gid:sid": "src" (default) or "dst", e.g. { "1:1000200" = "dst" }
max_new_blocks_per_minute = 100        # flood guard: above this, stop blocking and say so
rollback = 0                           # when the guard trips, undo this many latest blocks
portscan_attribution = "evidence"      # Snort 3 port scans without the packet's direction (alert_fast,
                                       # syslog): "evidence" blocks only when the bridge can tell the
                                       # scanner from its victim; "src" trusts the source as Snort 2 does
repeat_factor = 4                      # the n-th block of an address within remember_for lasts
max_block_for = "1w"                   #   base * repeat_factor^(n-1), at most max_block_for (1 = no escalation)
remember_for = "30d"                   # how long offences are remembered (the ledger keeps them)
block_for_rules = { }                  # base duration per "gid:sid", e.g. { "1:1000122" = "1h" }
block_for_networks = { }               # base per attacker network, e.g. { "203.0.113.0/24" = "1d" }; the
                                       # longest prefix wins, and a network wins over a rule, a rule over block_for

[[alerts]]                             # one table per followed file
path = "/var/log/snort/alert_json.txt" # Snort 3 alert_json carries dir/tcp_flags/icmp_type: best attribution
format = "json"                        # auto | fast | syslog | json | csv | eve

[[alerts]]
path = "/var/log/snort/alert_fast.txt"
format = "auto"

# Several sensors (README "Several sensors"): on the central host, one table per sensor file that
# rsyslog writes; a file that does not exist yet is followed as soon as it appears.
# [[alerts]]
# path = "/var/log/tzsp-ips/sensors/sensor1/alert_json.txt"
# format = "json"

[scan]                                 # built-in distinct-port detector (optional table)
ports = 15                             # distinct destination ports from one source ...
window = "10s"                         # ... within this window
low_port_weight = 1                    # ports below 1024 count this many times (psd-style; 1 = off)
syslog = "0.0.0.0:5514"                # optional: UDP listener for RouterOS firewall log lines
allow = []                             # senders the listener accepts; empty = the routers below
files = []                             # optional: files of RouterOS firewall log lines

[http]                                 # optional: /metrics (Prometheus), /health, / (status page)
listen = "127.0.0.1:9470"              # beyond loopback only with token_file
# token_file = "/etc/tzsp-ips/http.token"  # mode 0600; then every request needs the token:
                                       # "Authorization: Bearer <token>", or open /?token=<token> once
silent_after = "10m"                   # /health: a problem when no alert line (or TZSP datagram) for this long
# tzspd = "127.0.0.1:9471"             # tzspd --metrics: its counters on the page, its silence in /health
[notify]                               # optional: notifications through apprise (Telegram, Slack, Teams,
                                       # Matrix, ntfy, e-mail, JSON webhooks ...); `snort-bridge notify test`
urls_env = "TZSP_IPS_NOTIFY_URLS"     # environment variable holding apprise URLs (whitespace-separated),
# urls_file = "/etc/tzsp-ips/notify.urls"   # or a file of them, one per line, mode 0600 (they hold tokens)
events = ["block", "router_down", "router_up", "flood_guard", "sensor_silent"]   # also: "unblock", and
                                       # "snort_restarted" with tzspd_metrics (the default then, when unset)
min_interval = "60s"                   # later events of a kind within this are sent as one digest
silent_after = "1h"                    # sensor_silent: no line from an [[alerts]] file for this long
# tzspd_metrics = ["127.0.0.1:9471"]   # snort_restarted: each sensor's tzspd --metrics, read every 15 s for
                                       # Snort restarts ("HOST:PORT" or "http://10.0.0.5:9471/metrics")

[[routers]]                            # one table per router
name = "core1"
host = "192.0.2.1"
port = 22                              # default 22; with transport = "api" 8728, or 8729 with tls
transport = "ssh"                      # ssh | api (RouterOS API: password login, no key_file)
user = "ips"
key_file = "/etc/tzsp-ips/id_ed25519"  # or password_file = "/etc/tzsp-ips/core1.password" (mode 0600),
                                       # or password_env = "CORE1_PASSWORD"; never a password here
known_hosts = "/etc/tzsp-ips/known_hosts"   # OpenSSH format, [host]:port entries for non-22 ports
list = "blacklist"                     # address list to add to
mode = "address-list"                  # address-list | script
script = "filter"                      # with mode = "script": `:global ip <addr>; /system script run filter`
refresh_existing = true                # an address already listed gets its timeout re-armed
connect_timeout = "5s"
command_timeout = "5s"
keepalive = "15s"                      # SSH keepalive interval
reconcile_interval = "60s"             # how often the routers' lists are compared with the ledger
tls = false                            # transport = "api" only: API over TLS (port 8729)
# ca_file = "/etc/tzsp-ips/router-ca.pem"   # api + tls: CA that signed the router's certificate
# fingerprint = "sha256:..."                # api + tls: or pin the certificate's SHA-256
                                           # (neither: the pin `snort-bridge trust` writes to <known_hosts>.tls)

[[routers]]
name = "edge2"
host = "edge2.example.net"
port = 2222
user = "ips"
password_env = "EDGE2_PASSWORD"
known_hosts = "/etc/tzsp-ips/known_hosts"
list = "blacklist"
'''


def example_config() -> str:
    """The commented example TOML (what `snort-bridge config example` prints); parse_config accepts it."""
    return _EXAMPLE
