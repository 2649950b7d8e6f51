"""[notify] and [http]: how people learn what the bridge does (notifications, /metrics, /health, the page)."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

from bridge.config import DEFAULT_NOTIFY_EVENTS_WITH_TZSPD, MAX_TZSPD_METRICS, NOTIFY_EVENTS, HttpConfig, NotifyConfig
from bridge.config.check.values import _BAD, _ENV_RE, _HOSTNAME_RE, ValueChecks, _is_ip, _kind
from plumbing.httpserver import is_loopback


class WatchingChecks(ValueChecks):
    def notify(self, table: Mapping[str, Any]) -> NotifyConfig:
        p = "notify"
        d = NotifyConfig()
        self.unknown(table, tuple(NotifyConfig.__dataclass_fields__), p)
        where = [name for name in ("urls_file", "urls_env") if name in table]
        if not where:
            self.problem(
                "notify.urls_file", "missing; expected urls_file (apprise URLs, one per line, mode 0600) or urls_env"
            )
        elif len(where) > 1:
            self.problem("notify.urls_env", "cannot be combined with urls_file; expected one of them")
        urls_file = self.get(table, "urls_file", p, None, self.path)
        if urls_file:
            self.secret_file("notify.urls_file", urls_file, "the apprise URLs")
        tzspd_metrics = self.get(table, "tzspd_metrics", p, d.tzspd_metrics, self.string_list(self.metrics_endpoint))
        if len(tzspd_metrics) > MAX_TZSPD_METRICS:
            self.problem(f"{p}.tzspd_metrics", f"{len(tzspd_metrics)} endpoints; expected at most {MAX_TZSPD_METRICS}")
        listed = (
            [v.strip() if isinstance(v, str) else v for v in table.get("tzspd_metrics", ())]
            if isinstance(table.get("tzspd_metrics"), list)
            else []
        )
        for index, endpoint in enumerate(listed):
            if isinstance(endpoint, str) and endpoint in listed[:index]:
                self.problem(
                    f"{p}.tzspd_metrics[{index}]", f"{endpoint!r} is listed twice; expected each endpoint once"
                )
        events = self.get(
            table,
            "events",
            p,
            DEFAULT_NOTIFY_EVENTS_WITH_TZSPD if tzspd_metrics else d.events,
            self.string_list(self.choice(NOTIFY_EVENTS)),
        )
        if tzspd_metrics and "events" in table and "snort_restarted" not in events:
            # Polling for restarts nobody is told of is surely a mistake (e.g. events copied from the example).
            self.problem(
                f"{p}.tzspd_metrics",
                'set, but notify.events leaves out "snort_restarted"; expected it in events (or no tzspd_metrics)',
            )
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
            self.problem(
                key,
                "expected no user or password in the URL (it is shown in messages and logs); tzspd's metrics need none",
            )
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
            self.problem(
                f"{p}.token_file",
                f"missing; http.listen = {listen!r} is reachable from other hosts, "
                "so every request must carry a token: expected a file holding it (mode 0600)",
            )
        return HttpConfig(
            listen=listen,
            token_file=token_file,
            silent_after=self.get(table, "silent_after", p, None, self.duration(0)),
            tzspd=self.get(table, "tzspd", p, None, self.listen_address),
            provision_check=self.get(table, "provision_check", p, d.provision_check, self.interval_or_off),
        )

    def interval_or_off(self, key: str, value: Any) -> Any:
        """A duration, or false: never."""
        if value is False:
            return 0.0
        return self.duration(0)(key, value)


def _loopback_listen(listen: str) -> bool:
    return is_loopback(listen.rpartition(":")[0].strip("[]"))
