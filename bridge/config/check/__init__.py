"""Checking the configuration file: ``Checker`` walks the parsed TOML once and collects every problem.

Each table has its checks in a module of its own (policy; sources: [[alerts]] and [scan];
watching: [notify] and [http]; routers), all built on the typed getters of ``values``. They are
mixed into one Checker because the walk is one: every problem lands in one list, reported at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bridge.config import Config, PolicyConfig
from bridge.config.check.policy import PolicyChecks
from bridge.config.check.routers import RouterChecks
from bridge.config.check.sources import SourceChecks
from bridge.config.check.values import _kind
from bridge.config.check.watching import WatchingChecks


class Checker(PolicyChecks, SourceChecks, WatchingChecks, RouterChecks):
    """Walks the parsed TOML once, collecting every problem instead of stopping at the first."""

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
        self.scan_routers(scan, [r for _, r in routers])
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

    def array(
        self, data: Mapping[str, Any], name: str, build: Callable[[Mapping[str, Any], str], Any]
    ) -> list[tuple[int, Any]]:
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

    def unique(self, values: list[tuple[int, str]], array: str, name: str) -> None:
        seen: dict[str, int] = {}
        for index, value in values:
            if value in seen:
                self.problem(
                    f"{array}[{index}].{name}",
                    f"{value!r} is used twice (also {array}[{seen[value]}]); expected unique values",
                )
            else:
                seen[value] = index
