"""The checker's typed getters: each checks one value, and a wrong one records a problem naming its key.

The table checks (policy, sources, watching, routers) are built from these. A getter gives the
default back for a wrong value, so one walk of the file finds every problem, not just the first.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import stat
from collections.abc import Callable, Mapping
from typing import Any

from bridge.config import DURATION_EXPECTED
from responder.routeros.duration import DurationError, parse_duration

_HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_SECRET_HINT = (
    "a password is not allowed in the configuration file; put it in a file of its own named by "
    "password_file (mode 0600) or in an environment variable named by password_env"
)


def _did_you_mean(key: str, known: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    return "unknown key; expected one of " + ", ".join(sorted(known))


class ValueChecks:
    """The problems found so far, and one getter per kind of value; the table checks extend it."""

    def __init__(self, base_dir: str, file_mode: int | None):
        self.problems: list[str] = []
        self.base_dir = base_dir
        self.file_mode = file_mode

    # -- small typed getters: each returns the default (and records a problem) when wrong ------

    def problem(self, key: str, text: str) -> None:
        self.problems.append(f"{key}: {text}")

    def table(self, data: Mapping[str, Any], name: str, key: str) -> Mapping[str, Any] | None:
        value = data.get(name)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.problem(key, f"expected a table ([{name}]), got {_kind(value)}")
            return None
        return value

    def unknown(self, table: Mapping[str, Any], known: tuple[str, ...], prefix: str) -> None:
        for name in table:
            if name in known:
                continue
            if name == "password":
                self.password_in_file(_join(prefix, name))
                continue
            self.problem(_join(prefix, name), _did_you_mean(name, known))

    def get(
        self, table: Mapping[str, Any], name: str, prefix: str, default: Any, check: Callable[[str, Any], Any]
    ) -> Any:
        if name not in table:
            return default
        result = check(_join(prefix, name), table[name])
        return default if result is _BAD else result

    def integer(self, low: int, high: int | None = None) -> Callable[[str, Any], Any]:
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

    def pattern(self, regex: re.Pattern[str], expected: str) -> Callable[[str, Any], Any]:
        def check(key: str, value: Any) -> Any:
            if not isinstance(value, str) or not regex.match(value):
                self.problem(key, f"expected {expected}, got {value!r}")
                return _BAD
            return value

        return check

    def choice(self, options: tuple[str, ...]) -> Callable[[str, Any], Any]:
        def check(key: str, value: Any) -> Any:
            if value not in options:
                self.problem(key, f"expected one of {' | '.join(options)}, got {value!r}")
                return _BAD
            return value

        return check

    def duration(self, minimum: float = 0.0, maximum: float | None = None) -> Callable[[str, Any], Any]:
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
            self.problem(key, f'expected a network such as "10.0.0.0/8" or "2001:db8::/32", got {_kind(value)}')
            return _BAD
        try:
            return ipaddress.ip_network(value.strip(), strict=True)
        except ValueError:
            try:
                loose = ipaddress.ip_network(value.strip(), strict=False)
            except ValueError:
                self.problem(key, f'expected a network such as "10.0.0.0/8" or "2001:db8::/32", got {value!r}')
                return _BAD
            self.problem(key, f'{value!r} has host bits set; did you mean "{loose}"?')
            return _BAD

    # -- shared by several tables: listen addresses, secrets ------------------------------------

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
            self.problem(
                key, f"cannot read {path}: {exc.strerror or exc}; expected a file holding {holding} (mode 0600)"
            )
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
