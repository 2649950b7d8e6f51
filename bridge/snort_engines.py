"""Which Snort is installed here, and the command lines that run it with the configurations we ship.

Used by the demo, the live tests and the live benchmark; users follow the same lines in the README.
Snort is found through $SNORT3 / $SNORT2 (a path), then the names ``snort3``, ``snort2`` and ``snort``
on PATH; ``snort -V`` says which engine a binary is. Parsing the banner is a pure function; running
the binary is the only side effect.

Snort 3's configuration includes the stock ``snort.lua`` of the installation. It looks in
``$SNORT_LUA_PATH`` (the directory holding snort.lua, Snort's own convention) and then in the usual
places; when the variable is unset, ``snort_env`` sets it from the binary's own prefix
(``<prefix>/bin/snort`` -> ``<prefix>/etc/snort``), so a Snort under /opt works with nothing to set.
Snort 2's configuration is self-contained and needs nothing from the installation.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "snort"
PATH_NAMES = ("snort3", "snort2", "snort")
ENV_NAMES = {3: "SNORT3", 2: "SNORT2"}
STOCK_LUA_VARIABLE = "SNORT_LUA_PATH"

_VERSION = re.compile(r"Version (\d+)\.(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(banner: str) -> str | None:
    """'3.12.2.0' from the banner of ``snort -V`` (Snort 3 and 2 both print "Version X.Y.Z[.W]")."""
    match = _VERSION.search(banner)
    if not match:
        return None
    return ".".join(part for part in match.groups() if part is not None)


@dataclass(frozen=True)
class Snort:
    path: str  # as found: a name on PATH resolved to its path, or the value of $SNORT3/$SNORT2
    version: str  # e.g. "3.12.2.0"
    found_as: str  # "snort3 on PATH", "$SNORT2", ...

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def engine(self) -> str:
        return f"snort{self.major}"

    def shipped_config(self, shipped: Path = SHIPPED) -> Path:
        return shipped / "snort3" / "tzsp-ips.lua" if self.major == 3 else shipped / "snort2" / "tzsp-ips.conf"

    def read_stdin_args(self) -> list[str]:
        """How this engine reads a pcap stream from a pipe, packet by packet as it arrives.

        Snort 3 refuses "-r -" and waits for 64 packets per batch unless told otherwise."""
        if self.major == 3:
            return ["-r", "/dev/stdin", "--daq-batch-size", "1"]
        return ["-r", "-"]

    def command(self, config: Path, log_dir: str, *extra: str) -> list[str]:
        return [self.path, "-c", str(config), *self.read_stdin_args(), "-l", log_dir, "-q", *extra]

    def alert_file(self) -> tuple[str, str]:
        """(file name inside -l, snort-bridge format) of what our configuration writes for the bridge."""
        return ("alert_json.txt", "json") if self.major == 3 else ("alert.fast", "fast")


def stock_lua_dir(snort_path: str) -> Path | None:
    """<prefix>/etc/snort of the installation a Snort 3 binary belongs to, if snort.lua is there."""
    prefix = Path(os.path.realpath(snort_path)).parent.parent
    for candidate in (prefix / "etc" / "snort", Path("/etc/snort") if prefix == Path("/usr") else None):
        if candidate is not None and (candidate / "snort.lua").is_file():
            return candidate
    return None


def snort_env(snort: Snort, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment to run ``snort`` in: $SNORT_LUA_PATH from its prefix when not already set."""
    env = dict(os.environ if base is None else base)
    if snort.major == 3 and not env.get(STOCK_LUA_VARIABLE):
        found = stock_lua_dir(snort.path)
        if found is not None:
            env[STOCK_LUA_VARIABLE] = str(found)
    return env


def probe(path: str, found_as: str, timeout: float = 20.0) -> Snort | None:
    try:
        result = subprocess.run([path, "-V"], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    version = parse_version(result.stdout + result.stderr)
    return Snort(path, version, found_as) if version else None


def find_snorts(environ: Mapping[str, str] | None = None) -> dict[int, Snort]:
    """{major version: Snort} of every engine found; the variables win over PATH, then PATH order."""
    environ = os.environ if environ is None else environ
    candidates: list[tuple[str, str]] = []
    for _major, variable in ENV_NAMES.items():
        if environ.get(variable):
            candidates.append((environ[variable], f"${variable}"))
    for name in PATH_NAMES:
        path = shutil.which(name, path=environ.get("PATH"))
        if path:
            candidates.append((path, f"{name} on PATH"))
    found: dict[int, Snort] = {}
    seen = set()
    for path, found_as in candidates:
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        snort = probe(path, found_as)
        if snort is not None and snort.major in (2, 3) and snort.major not in found:
            found[snort.major] = snort
    return found


def check_config(
    snort: Snort, config: Path, env: Mapping[str, str] | None = None, timeout: float = 120.0
) -> tuple[bool, str]:
    """``snort -c CONFIG -T``: (loads, last line of its output)."""
    try:
        with tempfile.TemporaryDirectory(prefix="snort-T-") as logs:  # Snort 2 opens its alert file in -T
            result = subprocess.run(
                [snort.path, "-c", str(config), "-T", "-q", "-l", logs],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=dict(env) if env is not None else snort_env(snort),
            )
    except (OSError, subprocess.SubprocessError) as exc:
        return False, str(exc)
    lines = (result.stderr + result.stdout).strip().splitlines()
    return result.returncode == 0, (lines[-1] if lines else f"exit status {result.returncode}")


def prepare_config(snort: Snort, workdir: Path, *, syslog: bool = False, shipped: Path = SHIPPED) -> Path:
    """The shipped configuration for ``snort``, ready to run from ``workdir``.

    Snort 3: the shipped file itself. Snort 2: a copy of snort/snort2 in ``workdir`` (its includes are
    relative to the configuration's directory), without the alert_syslog output unless ``syslog``, so
    a demo or a test does not write into the system log."""
    config = snort.shipped_config(shipped)
    if snort.major == 3 or syslog:
        return config
    target = workdir / "snort2-config"
    shutil.copytree(config.parent, target, dirs_exist_ok=True)
    copy = target / config.name
    text = config.read_text()
    copy.write_text("\n".join(line for line in text.splitlines() if not line.startswith("output alert_syslog")) + "\n")
    return copy


def describe(snort: Snort, env: Mapping[str, str]) -> str:
    """One line saying which Snort runs, how it was found, and with what (for the demo and the logs)."""
    text = f"Snort {snort.version} ({snort.found_as}: {snort.path}) with {snort.shipped_config().name}"
    if snort.major == 3:
        text += f", stock snort.lua from {env.get(STOCK_LUA_VARIABLE) or 'the usual places'}"
    return text
