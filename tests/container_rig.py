"""Podman for the container tests: a per-run storage root, the settings these machines need, the
``debian:bookworm-slim`` base made locally (no registry is reachable), builds that reach apt and pip,
and containers that are always removed.

The facts behind every setting are in tests/containers/README.md.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bridge.demo.rig import Demo

CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
"""
BASE = "debian:bookworm-slim"
SOURCES = "/etc/apt/sources.list.d/debian.sources"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# Inside a build: apt reads the host's sources; the host's CA bundle joins the image's through
# ca-certificates' own hook (mounted over ca-certificates.crt itself, that package's postinst fails).
BUILD_MOUNTS = (f"{SOURCES}:{SOURCES}:ro", f"{CA_BUNDLE}:/usr/local/share/ca-certificates/build-host.crt:ro")
_names = itertools.count(1)
BRIDGE_IMAGE = "localhost/tzsp-ips-bridge:test"
SERVICE_UID = 990  # the images' tzsp-ips user (Containerfile)


def debian_mirror(sources: str = SOURCES) -> str:
    """The Debian mirror apt uses here (the ``URIs:`` of the entry for bookworm), read at run time."""
    text = Path(sources).read_text()
    for entry in text.split("\n\n"):
        uris = re.search(r"^URIs:\s*(\S+)", entry, re.M)
        suites = re.search(r"^Suites:(.*)$", entry, re.M)
        if uris and suites and "bookworm" in suites.group(1).split():
            return uris.group(1)
    raise RuntimeError(f"no bookworm entry in {sources}")


@dataclass
class Podman:
    home: Path
    executable: str
    containers: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        conf = self.home / "containers.conf"
        conf.write_text(CONTAINERS_CONF)
        self.env = dict(os.environ, CONTAINERS_CONF=str(conf))
        self.argv = [self.executable, "--root", str(self.home / "storage"), "--runroot", str(self.home / "run")]
        self.argv += ["--storage-driver", "overlay"]

    def __call__(
        self, *args: str, timeout: float = 300, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [*self.argv, *args], capture_output=True, text=True, timeout=timeout, env=self.env, input=input
        )
        if check and result.returncode != 0:
            raise AssertionError(f"podman {' '.join(args[:3])}…: exit {result.returncode}\n{result.stderr[-4000:]}")
        return result

    def has_image(self, tag: str) -> bool:
        return self("image", "exists", tag, check=False).returncode == 0

    def image_size(self, tag: str) -> int:
        return int(self("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())

    def make_base(self, workdir: Path) -> None:
        """debian:bookworm-slim from the mirror apt uses (mmdebstrap minbase), imported under its usual name."""
        started = time.monotonic()
        rootfs = workdir / "bookworm.tar"
        subprocess.run(
            ["mmdebstrap", "--variant=minbase", "--quiet"]
            + ['--customize-hook=rm -f "$1/etc/apt/sources.list"', "bookworm", str(rootfs)]
            + [f"deb {debian_mirror()} bookworm main"],
            check=True,
            capture_output=True,
            timeout=900,
        )
        self("import", str(rootfs), BASE, timeout=600)
        rootfs.unlink()
        self.timings[f"base image {BASE}"] = time.monotonic() - started

    def build(
        self,
        tag: str,
        context: Path,
        containerfile: Path | None = None,
        target: str | None = None,
        build_args: dict[str, str] | None = None,
        timeout: float = 1500,
    ) -> None:
        started = time.monotonic()
        args = ["build", "--format", "docker", "--network", "host", "-t", tag]
        for mount in BUILD_MOUNTS:
            args += ["-v", mount]
        if containerfile is not None:
            args += ["-f", str(containerfile)]
        if target:
            args += ["--target", target]
        for key, value in (build_args or {}).items():
            args += ["--build-arg", f"{key}={value}"]
        self(*args, str(context), timeout=timeout)
        self.timings[f"image {tag}"] = time.monotonic() - started

    def start(self, image: str, *command: str, options: Sequence[str] = (), name: str | None = None) -> str:
        """A detached container on the host's network; removed by ``remove_all`` whatever happens."""
        name = name or f"tzsp-ips-test-{os.getpid()}-{next(_names)}"
        self.containers.append(name)
        self("run", "-d", "--network", "host", "--name", name, *options, image, *command)
        return name

    def exec(self, name: str, *command: str, check: bool = True, timeout: float = 120, input: str | None = None):
        return self(
            "exec", *(["-i"] if input is not None else []), name, *command, check=check, timeout=timeout, input=input
        )

    def logs(self, name: str) -> str:
        result = self("logs", name, check=False)
        return result.stdout + result.stderr

    def remove(self, name: str) -> None:
        self("rm", "-f", "-t", "5", name, check=False, timeout=120)
        if name in self.containers:
            self.containers.remove(name)

    def remove_all(self) -> None:
        for name in list(self.containers):
            self.remove(name)

    def reset(self) -> None:
        """Everything this run stored (images, layers) goes with the storage root."""
        self.remove_all()
        self("system", "reset", "--force", check=False, timeout=600)


class Routers:
    """Two routeros-sim on the host's loopback (the demo's), and the bridge's files for a container."""

    def __init__(self, workdir: Path):
        self.demo = Demo(workdir)
        self.demo.start_routers()
        self.dir = workdir

    def config_for_container(self, alerts: str, http_port: int, form: str = "fast") -> Path:
        """/etc/tzsp-ips as the container sees it: config.toml, the key and known_hosts, owned by its user."""
        etc = self.dir / "etc"
        etc.mkdir()
        host_config = self.demo.write_config([(alerts, form)])
        text = host_config.read_text().replace(str(self.dir / "state"), "/var/lib/tzsp-ips")
        text = text.replace(str(self.dir / "id_ed25519"), "/etc/tzsp-ips/id_ed25519")
        text = text.replace(str(self.dir / "known_hosts"), "/etc/tzsp-ips/known_hosts")
        # the simulated routers are bare (not provisioned): /health here speaks of the container, not of drift
        text += f'\n[http]\nlisten = "127.0.0.1:{http_port}"\nprovision_check = false\n'
        for name, content in (
            ("config.toml", text),
            ("id_ed25519", (self.dir / "id_ed25519").read_text()),
            ("known_hosts", (self.dir / "known_hosts").read_text()),
        ):
            (etc / name).write_text(content)
            os.chmod(etc / name, 0o600)
            os.chown(etc / name, SERVICE_UID, SERVICE_UID)
        return etc

    def blocked(self) -> dict[str, set]:
        from bridge.config.load import load_config

        config = load_config(str(self.dir / "config.toml"))  # the host's view: same routers, host paths
        return {name: addresses for name, (addresses, _) in self.demo.address_lists(config).items()}

    def close(self) -> None:
        self.demo.cleanup()
