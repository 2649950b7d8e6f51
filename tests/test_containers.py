"""The container images (Containerfile), built and run with podman: the demo runs in the bridge
image; the bridge container follows an alert file on a mounted volume and blocks on two routeros-sim
(on the host's loopback: host networking), answers its HEALTHCHECK and runs as a non-root user; the
sensor image, built on a local Snort image made from the Snort found on PATH (live tier), blocks an
attack replayed with tzsp-replay from the host.

Needs root, podman, runc and mmdebstrap (tests/containers/README.md); CI=true makes them required.
"""

from __future__ import annotations

import json
import os
import socket
import time

import pytest
from conftest import free_port, wait_for
from container_rig import SERVICE_UID, Podman, Routers

pytestmark = [pytest.mark.containers, pytest.mark.slow]

ATTACKER = "203.0.113.77"
LAN = "10.10.0.0/16"


def fast_line(src: str, dst: str = "10.10.0.80") -> str:
    return (
        '11/14-22:13:20.123456 [**] [1:1000001:1] "TEST attack" [**] [Classification: Attempted '
        f"Administrator Privilege Gain] [Priority: 1] {{TCP}} {src}:4444 -> {dst}:80\n"
    )


@pytest.fixture
def containers(podman: Podman):
    """Containers a test started: removed at its end, also when it fails."""
    yield podman
    podman.remove_all()


def run_to_end(podman: Podman, image: str, *command: str, timeout: float = 180) -> tuple[int, str]:
    name = podman.start(image, *command)
    try:
        status = podman("wait", name, timeout=timeout).stdout.strip()
        return int(status), podman.logs(name)
    finally:
        podman.remove(name)


def test_the_demo_runs_in_the_bridge_image(containers, bridge_image):
    status, output = run_to_end(containers, bridge_image, "snort-bridge", "demo")
    assert status == 0, output[-4000:]
    assert "== OK" in output


@pytest.fixture
def routers(tmp_path):
    rig = Routers(tmp_path)
    yield rig
    rig.close()


def test_the_bridge_container_follows_a_mounted_alert_file_and_blocks_on_two_routers(
    containers, bridge_image, routers, tmp_path
):
    alerts = tmp_path / "snort"
    alerts.mkdir()
    (alerts / "alert_fast.txt").write_text(fast_line(ATTACKER))
    state = tmp_path / "state"
    state.mkdir()
    os.chown(state, SERVICE_UID, SERVICE_UID)
    http_port = free_port(socket.SOCK_STREAM)
    etc = routers.config_for_container("/var/log/snort/alert_fast.txt", http_port)
    mounts = [f"{etc}:/etc/tzsp-ips:ro", f"{alerts}:/var/log/snort:ro", f"{state}:/var/lib/tzsp-ips"]

    started = time.monotonic()
    name = containers.start(bridge_image, options=[arg for mount in mounts for arg in ("-v", mount)])
    everywhere = lambda: all(ATTACKER in found for found in routers.blocked().values())  # noqa: E731
    assert wait_for(everywhere, 60, interval=0.5), containers.logs(name)[-4000:]
    containers.timings["podman run -> first block on both routers (bridge image)"] = time.monotonic() - started

    assert containers.exec(name, "id", "-u").stdout.strip() == str(SERVICE_UID)
    (image,) = json.loads(containers("image", "inspect", bridge_image).stdout)
    assert image["Healthcheck"]["Test"] == ["CMD", "snort-bridge", "health"]
    assert wait_for(lambda: containers("healthcheck", "run", name, check=False).returncode == 0, 30, interval=1)
    assert containers("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip() == "healthy"
    with open(alerts / "alert_fast.txt", "a") as more:  # followed as it grows
        more.write(fast_line("203.0.113.78"))
    assert wait_for(lambda: all("203.0.113.78" in found for found in routers.blocked().values()), 30, interval=0.5)
    assert not any("10.10.0.80" in found for found in routers.blocked().values())  # the victim, never
    containers("stop", "-t", "20", name, timeout=60)
    assert containers("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip() == "0"
    assert (state / "ledger.sqlite3").exists() or any(state.iterdir())  # the state is on the volume
