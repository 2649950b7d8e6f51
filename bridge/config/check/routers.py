"""[[routers]]: where blocks go, how the bridge logs in, and the names it puts into RouterOS commands."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bridge.config.check.values import _BAD, _ENV_RE, _HOSTNAME_RE, ValueChecks, _is_ip
from responder.config import RouterConfig
from responder.routeros.commands import NAME_RE as ROUTEROS_NAME_RE

# Router names end up on our command line and in logs: a conservative alphabet. List and script
# names end up inside RouterOS commands: the renderer's own rule (ROUTEROS_NAME_RE) decides.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_USER_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_FINGERPRINT_RE = re.compile(r"^(?:sha256:)?(?:[0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$")


class RouterChecks(ValueChecks):
    def router(self, table: Mapping[str, Any], key: str) -> RouterConfig | None:
        d = RouterConfig(name="-", host="-")
        known = tuple(RouterConfig.__dataclass_fields__)
        self.unknown(table, known, key)
        ok = True
        for required in ("name", "host"):
            if required not in table:
                self.problem(f"{key}.{required}", "missing; every [[routers]] table needs name and host")
                ok = False
        name = self.get(
            table, "name", key, _BAD, self.pattern(_NAME_RE, "a name of letters, digits, '_', '.', '-' (up to 64)")
        )
        host = self.get(table, "host", key, _BAD, self.host)
        secrets = [s for s in ("key_file", "password_file", "password_env") if s in table]
        if len(secrets) > 1:
            self.problem(
                f"{key}.{secrets[1]}",
                f"cannot be combined with {secrets[0]}; expected one of key_file, password_file, password_env",
            )
        password_file = self.get(table, "password_file", key, None, self.path)
        if password_file:
            self.secret_file(f"{key}.password_file", password_file)
        durations = {
            name: self.get(table, name, key, getattr(d, name), self.duration(0))
            for name in ("connect_timeout", "command_timeout", "keepalive", "reconcile_interval")
        }
        transport = self.get(table, "transport", key, d.transport, self.choice(("ssh", "api")))
        api_port = 8729 if table.get("tls") is True else 8728  # RouterOS's api-ssl / api service ports
        self.api_only(table, key, transport)
        router = RouterConfig(
            name=name if name is not _BAD else "-",
            host=host if host is not _BAD else "-",
            port=self.get(table, "port", key, api_port if transport == "api" else d.port, self.integer(1, 65535)),
            transport=transport,
            user=self.get(
                table, "user", key, d.user, self.pattern(_USER_RE, "a user name of letters, digits, '_', '.', '@', '-'")
            ),
            key_file=self.get(table, "key_file", key, None, self.path),
            password_file=password_file,
            password_env=self.get(
                table, "password_env", key, None, self.pattern(_ENV_RE, "the name of an environment variable")
            ),
            known_hosts=self.get(table, "known_hosts", key, d.known_hosts, self.path),
            list=self.get(
                table,
                "list",
                key,
                d.list,
                self.pattern(ROUTEROS_NAME_RE, "an address-list name of 1-63 letters, digits, '_', '.', '-'"),
            ),
            mode=self.get(table, "mode", key, d.mode, self.choice(("address-list", "script"))),
            script=self.get(
                table,
                "script",
                key,
                d.script,
                self.pattern(ROUTEROS_NAME_RE, "a script name of 1-63 letters, digits, '_', '.', '-'"),
            ),
            block_in=self.get(table, "block_in", key, d.block_in, self.choice(("filter", "raw"))),
            refresh_existing=self.get(table, "refresh_existing", key, d.refresh_existing, self.boolean),
            tls=self.get(table, "tls", key, d.tls, self.boolean),
            ca_file=self.get(table, "ca_file", key, None, self.path),
            fingerprint=self.get(
                table,
                "fingerprint",
                key,
                None,
                self.pattern(_FINGERPRINT_RE, "a SHA-256 fingerprint (64 hex digits, colons allowed)"),
            ),
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
            self.problem(
                f"{key}.key_file",
                'the RouterOS API logs in with a password; with transport = "api" use password_file or password_env',
            )
        if table.get("mode") == "script":
            self.problem(f"{key}.mode", 'mode = "script" needs transport = "ssh"')

    def host(self, key: str, value: Any) -> Any:
        if isinstance(value, str) and (_is_ip(value) or _HOSTNAME_RE.match(value)):
            return value
        self.problem(key, f"expected an IP address or a host name, got {value!r}")
        return _BAD
