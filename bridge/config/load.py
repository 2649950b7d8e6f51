"""Reading the configuration file: TOML in, a checked ``Config`` out, or ``ConfigError`` naming each bad key.

The dataclasses are in ``bridge.config``, the checks of each table in ``bridge.config.check``; this
module ties them together (and so imports both, while neither imports it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from bridge.config import Config, ConfigError, default_config_path
from bridge.config.check import Checker

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


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
    checker = Checker(base_dir=os.path.dirname(os.path.abspath(path)) if path else "", file_mode=file_mode)
    config = checker.config(data, path)
    if checker.problems:
        raise ConfigError(checker.problems, path)
    return config
