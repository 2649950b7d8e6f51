"""The project as a user gets it: an sdist and a wheel built from this tree (the wheel from the sdist,
so both must carry the package data), and a fresh virtual environment outside the tree with the wheel
installed.

Built from a copy of the tree as a clean clone has it, offline: ``python -m build --no-isolation`` with this environment's setuptools, and the wheel
installed with ``--no-deps``; the fresh environment finds the dependencies (scapy, paramiko, …) in
this environment's site-packages through a ``.pth`` line. Paths named in a ``.pth`` file are added to
``sys.path`` without processing their own ``.pth`` files, so this environment's editable install of
tzsp-ips stays invisible there: what the fresh environment imports of ours comes from the wheel.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from conftest import ROOT


@dataclass(frozen=True)
class Built:
    wheel: Path
    sdist: Path


@dataclass(frozen=True)
class Installed:
    prefix: Path

    @property
    def bin(self) -> Path:
        return self.prefix / "bin"

    def run(self, *argv: str, cwd: Path, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
        """One of the installed console scripts (``snort-bridge``, ``tzspd``, …) run from ``cwd``."""
        command = [str(self.bin / argv[0]), *argv[1:]]
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, **kwargs)


# Not copied to the build: what a clean clone lacks (a stale *.egg-info/SOURCES.txt would add files
# the package data no longer names, hiding a broken pyproject.toml) and what the package leaves out.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.so", "tests", "bench"
)


def build(out: Path) -> Built:
    source = out / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = out.glob("tzsp_ips-*.whl")
    (sdist,) = out.glob("tzsp_ips-*.tar.gz")
    return Built(wheel, sdist)


def install(wheel: Path, prefix: Path) -> Installed:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True, timeout=120)
    pip = [sys.executable, "-m", "pip", "--python", str(prefix / "bin" / "python"), "install", "-q", "--no-deps"]
    result = subprocess.run([*pip, str(wheel)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    site = prefix / "lib" / version / "site-packages"
    (site / "zz-test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return Installed(prefix)
