"""The files tzsp-ips ships besides its code, and where an installation puts them.

``snort/`` (the Snort 3 and Snort 2 configurations with their local rules, the rsyslog snippets for
several sensors) and ``systemd/`` (units, sysusers, sysctl, /etc/default/tzspd) travel inside the
wheel as package data. They are read through ``importlib.resources`` -- never by a path relative to
the source tree -- so a wheel, an sdist and a git checkout behave alike.

``CATALOGUE`` says where each file goes (the places the README names); ``tzsp_ips_data.install``
plans and performs ``snort-bridge files install``. Imports nothing from the rest of the project.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

# The one documented install location: a virtual environment (Debian's Python refuses a system-wide
# `pip install`, PEP 668). The shipped units start the commands from here; `files install` writes
# them with the scripts directory of the installation it runs from, which is this one by default.
INSTALL_PREFIX = "/opt/tzsp-ips"
UNIT_BIN_DIR = f"{INSTALL_PREFIX}/bin"
CONFIG_TARGET = "/etc/tzsp-ips/config.toml"

CORE = "core"
# Optional groups: each is a role a host may have; installing all of them on one box would be wrong.
GROUPS = {
    CORE: "the Snort configurations, the systemd units, sysusers, sysctl and /etc/default/tzspd",
    "snort-syslog": "rsyslog: Snort's alert_syslog lines into /var/log/snort/alert.syslog",
    "sensor": "rsyslog on a sensor: forward the alert files to the central host over RELP (+ its sysctl)",
    "central": "rsyslog on the central host: receive the sensors' alert lines over RELP",
}


@dataclass(frozen=True)
class Shipped:
    source: str  # path inside the package, e.g. "snort/snort3/tzsp-ips.lua"
    target: str  # absolute path on the installed system
    group: str = CORE
    mode: int = 0o644
    unit: bool = False  # a systemd unit: its ExecStart names the installation's scripts directory


CATALOGUE: tuple[Shipped, ...] = (
    Shipped("snort/home-net.conf", "/etc/tzsp-ips/home-net.conf"),  # HOME_NET, read by both engines' configs
    Shipped("snort/snort3/tzsp-ips.lua", "/etc/tzsp-ips/snort3/tzsp-ips.lua"),
    Shipped("snort/snort3/local.rules", "/etc/tzsp-ips/snort3/local.rules"),
    Shipped("snort/snort2/tzsp-ips.conf", "/etc/tzsp-ips/snort2/tzsp-ips.conf"),
    Shipped("snort/snort2/local.rules", "/etc/tzsp-ips/snort2/local.rules"),
    Shipped("snort/snort2/rulesets.conf", "/etc/tzsp-ips/snort2/rulesets.conf"),  # what public rule sets expect
    Shipped("snort/snort2/unicode.map", "/etc/tzsp-ips/snort2/unicode.map"),
    Shipped("systemd/tzspd.service", "/etc/systemd/system/tzspd.service", unit=True),
    Shipped("systemd/snort-bridge.service", "/etc/systemd/system/snort-bridge.service", unit=True),
    Shipped("systemd/tzsp-ips.sysusers.conf", "/usr/lib/sysusers.d/tzsp-ips.conf"),
    Shipped("systemd/99-tzsp-ips.conf", "/etc/sysctl.d/99-tzsp-ips.conf"),
    Shipped("systemd/tzspd.default", "/etc/default/tzspd"),
    Shipped("snort/rsyslog/30-snort-tzsp-ips.conf", "/etc/rsyslog.d/30-snort-tzsp-ips.conf", "snort-syslog"),
    Shipped("snort/rsyslog/40-tzsp-ips-sensor.conf", "/etc/rsyslog.d/40-tzsp-ips-sensor.conf", "sensor"),
    Shipped("snort/rsyslog/60-tzsp-ips-sensor.sysctl.conf", "/etc/sysctl.d/60-tzsp-ips-sensor.conf", "sensor"),
    Shipped("snort/rsyslog/40-tzsp-ips-central.conf", "/etc/rsyslog.d/40-tzsp-ips-central.conf", "central"),
)


def data_root() -> Path:
    """The directory holding the shipped files (``snort/``, ``systemd/``) of this installation.

    Snort and systemd need real files, so a package imported from a zip is refused with the reason."""
    found = resources.files(__name__)
    if not isinstance(found, Path):
        raise RuntimeError(f"tzsp_ips_data is not installed as files on disk ({found!r}); install the wheel with pip")
    return found


def shipped_path(source: str) -> Path:
    """The installed copy of one shipped file, e.g. ``shipped_path("snort/snort3/tzsp-ips.lua")``."""
    return data_root().joinpath(*source.split("/"))


def read_shipped(source: str) -> bytes:
    return resources.files(__name__).joinpath(*source.split("/")).read_bytes()
