"""Shared test helpers.

Tests that need an external tool (tcpdump, tshark, systemd-analyze, snort) call
``require_tool``: it skips on a developer machine without the tool, and fails when CI is
set, so CI never passes by skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from plumbing.loopback import free_port, wait_until  # noqa: F401 -- free_port: the tests import it from here

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed (./run test installs it)"
    if os.environ.get("CI"):
        pytest.fail(message + " -- required when CI is set")
    pytest.skip(message)


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    """``wait_until`` with the tests' shorter default timeout."""
    return wait_until(predicate, timeout, interval)


@pytest.fixture
def services():
    """Processes a test started (anything with ``kill()``, and maybe ``handle``): killed at its end."""
    started = []
    yield started
    for service in started:
        service.kill()
        if getattr(service, "handle", None):
            service.handle.close()


@pytest.fixture
def udp_port() -> int:
    return free_port(socket.SOCK_DGRAM)


@pytest.fixture
def tcp_port() -> int:
    return free_port(socket.SOCK_STREAM)


def console_script(name: str) -> list:
    """argv that runs one of our console scripts with this interpreter, installed or not."""
    modules = {
        "tzspd": "tzsp.daemon",
        "tzsp-replay": "tzsp.replay",
        "snort-bridge": "bridge.cli",
        "routeros-sim": "responder.sim.cli",
    }
    return [sys.executable, "-m", modules[name]]


# Fixtures shared by several test modules (they were imported from one test module by another).


@pytest.fixture
def two_sockets():
    """Two UDP sockets on 127.0.0.1 with large buffers (the C and the Python receive paths side by side)."""
    from tzsp.receiver import open_socket

    pairs = [open_socket("127.0.0.1", 0, 8 << 20) for _ in range(2)]
    yield [sock for sock, _ in pairs]
    for sock, _ in pairs:
        sock.close()


@pytest.fixture(scope="module")
def host_key():
    """An RSA host key for simulated routers (RouterOS's SSH server offers RSA)."""
    import paramiko

    return paramiko.RSAKey.generate(2048)


@pytest.fixture(scope="module")
def ca():
    """A test CA that signs the simulated routers' api-ssl certificates."""
    from responder.sim.wire.api_server import make_certificate

    return make_certificate("tzsp-ips test CA", is_ca=True)


@pytest.fixture
def lab(tmp_path):
    """Simulated routers over real SSH and a config for them (tests/responder_rig.py's Lab)."""
    from responder_rig import Lab

    lab = Lab(tmp_path)
    yield lab
    lab.close()


# -- installed like software: the wheel, and podman (tests/test_wheel.py, test_containers.py, test_day_one.py)


MEASURED: list[str] = []  # lines for the end of the run: image build times and sizes, time to the first block


def pytest_terminal_summary(terminalreporter) -> None:
    for line in MEASURED:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory):
    """The sdist and the wheel of this tree, built once per run (tests/wheel_rig.py)."""
    import wheel_rig

    return wheel_rig.build(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def podman(tmp_path_factory):
    """Podman with a storage root of this run's own (or $TZSP_IPS_PODMAN_HOME's, kept for the next run),
    removed at the end with every image; needs root. Prints how long each image took and its size."""
    from container_rig import Podman

    if os.geteuid() != 0:
        message = "the container tests need root (podman with runc and host networking)"
        if os.environ.get("CI"):
            pytest.fail(message + " -- required when CI is set")
        pytest.skip(message)
    executable = require_tool("podman")
    for tool in ("runc", "mmdebstrap"):
        require_tool(tool)
    kept = os.environ.get("TZSP_IPS_PODMAN_HOME")
    rig = Podman(Path(kept) if kept else tmp_path_factory.mktemp("podman"), executable)
    yield rig
    rig.remove_all()
    for what, seconds in rig.timings.items():
        size = ""
        if what.startswith("image ") and rig.has_image(what.split(" ", 1)[1]):
            size = f", {rig.image_size(what.split(' ', 1)[1]) / 1e6:.0f} MB"
        MEASURED.append(f"podman: {what}: {seconds:.1f} s{size}")
    if not kept:
        rig.reset()


@pytest.fixture(scope="session")
def base_image(podman, tmp_path_factory):
    """debian:bookworm-slim, made once per run from the Debian mirror apt uses (no registry here)."""
    from container_rig import BASE

    if not podman.has_image(BASE):
        podman.make_base(tmp_path_factory.mktemp("base"))
    return BASE


@pytest.fixture(scope="session")
def bridge_image(podman, base_image):
    """The Containerfile's bridge target, built once per run."""
    from container_rig import BRIDGE_IMAGE

    if not podman.has_image(BRIDGE_IMAGE):
        podman.build(BRIDGE_IMAGE, ROOT, target="bridge")
    return BRIDGE_IMAGE
