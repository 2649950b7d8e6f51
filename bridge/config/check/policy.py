"""[policy]: what is blocked and for how long (base durations, repeat offenders, the attacker end per rule)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from bridge.config import MAX_BLOCK_SECONDS, PolicyConfig
from bridge.config.check.values import _BAD, ValueChecks, _kind
from responder.routeros.duration import MAX_TIMEOUT_SECONDS, format_duration

_SID_RE = re.compile(r"^\d{1,10}:\d{1,10}$")


class PolicyChecks(ValueChecks):
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
            max_new_blocks_per_minute=self.get(
                table, "max_new_blocks_per_minute", p, d.max_new_blocks_per_minute, self.integer(1)
            ),
            rollback=self.get(table, "rollback", p, d.rollback, self.integer(0, 100_000)),
            portscan_attribution=self.get(
                table, "portscan_attribution", p, d.portscan_attribution, self.choice(("evidence", "src"))
            ),
            block_client_sweeps=self.get(table, "block_client_sweeps", p, d.block_client_sweeps, self.boolean),
            standard_exclusions=self.get(table, "standard_exclusions", p, d.standard_exclusions, self.boolean),
            **self.escalation(table, p, d, block_for),
        )

    def escalation(self, table: Mapping[str, Any], p: str, d: PolicyConfig, block_for: float) -> dict[str, Any]:
        """repeat_factor, max_block_for, remember_for and the per-rule / per-network durations."""
        longest = self.duration(0, MAX_BLOCK_SECONDS)
        values = {
            "repeat_factor": self.get(table, "repeat_factor", p, d.repeat_factor, self.factor),
            "max_block_for": self.get(table, "max_block_for", p, d.max_block_for, longest),
            "remember_for": self.get(table, "remember_for", p, d.remember_for, longest),
            "block_for_rules": self.get(table, "block_for_rules", p, {}, self.duration_map(self.rule_key, longest)),
            "block_for_networks": self.get(
                table, "block_for_networks", p, {}, self.duration_map(self.network, longest)
            ),
        }
        if "max_block_for" not in table:  # not set: never shorter than a base the file asks for
            values["max_block_for"] = max(
                [
                    d.max_block_for,
                    block_for,
                    *values["block_for_rules"].values(),
                    *values["block_for_networks"].values(),
                ]
            )
        cap = values["max_block_for"]
        bases = [(f"{p}.block_for", table.get("block_for"), block_for)]
        bases += [
            (f'{p}.block_for_rules."{k}"', table["block_for_rules"][k], v) for k, v in values["block_for_rules"].items()
        ]
        bases += [
            (f'{p}.block_for_networks."{k}"', table["block_for_networks"].get(str(k)), v)
            for k, v in values["block_for_networks"].items()
        ]
        for key, shown, seconds in bases:
            if shown is not None and seconds > cap:
                self.problem(
                    key,
                    f"{shown!r} is longer than {p}.max_block_for ({format_duration(cap)}); "
                    "raise max_block_for or shorten this",
                )
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

    def duration_map(
        self, each_key: Callable[[str, Any], Any], check: Callable[[str, Any], Any]
    ) -> Callable[[str, Any], Any]:
        """A table of key = duration; each key checked by ``each_key`` (problems named by key)."""

        def check_map(key: str, value: Any) -> Any:
            if not isinstance(value, Mapping):
                self.problem(key, f'expected a table such as {{ "1:1000101" = "1h" }}, got {_kind(value)}')
                return _BAD
            result: dict[Any, float] = {}
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
        result: dict[str, str] = {}
        for sid, end in value.items():
            entry = f'{key}."{sid}"'
            if self.rule_key(entry, sid) is _BAD:
                continue
            if end not in ("src", "dst"):
                self.problem(entry, f'expected "src" or "dst", got {end!r}')
                continue
            result[sid] = end
        return result
