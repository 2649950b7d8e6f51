"""[[alerts]] and [scan]: where detections come from (Snort's alert files, the built-in port-scan detector)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge.config import ALERT_FORMATS, AlertSource, ScanConfig
from bridge.config.check.values import _BAD, ValueChecks


class SourceChecks(ValueChecks):
    def alert_source(self, table: Mapping[str, Any], key: str) -> AlertSource | None:
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
            routers=self.get(table, "routers", p, d.routers, self.string_list(self.text)),
        )

    def scan_routers(self, scan: ScanConfig | None, routers) -> None:
        """Each name in scan.routers is a configured [[routers]] table, once."""
        if scan is None:
            return
        names = {router.name for router in routers}
        for index, name in enumerate(scan.routers):
            if name not in names:
                self.problem(f"scan.routers[{index}]", f"no [[routers]] table has name = {name!r}")
            elif name in scan.routers[:index]:
                self.problem(f"scan.routers[{index}]", f"{name!r} is listed twice")
