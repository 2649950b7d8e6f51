"""The sensor image (Containerfile, target sensor) on a local Snort image, and the bridge image beside it.

Nothing in this project builds Snort: the Snort image is made here from the Snort 3 found on PATH
(its binary, stripped; the shared libraries ldd names, glibc aside; its installation's lib/ with the
DAQ modules and etc/snort with the stock configuration) -- what a user's SNORT_IMAGE must contain.
The sensor container (tzspd feeding Snort, host networking) receives an attack replayed with
tzsp-replay from the host, writes alert_json to a volume, and the bridge container following that
volume blocks the attacker on two routeros-sim. Live tier: skipped with one line without Snort 3.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ROOT, console_script, free_port, wait_for
from container_rig import SERVICE_UID, Podman, Routers

from bridge import snort_engines
from bridge.demo.capture import BENIGN, INSIDER, SCANNER, office_packets

pytestmark = [pytest.mark.containers, pytest.mark.live, pytest.mark.slow]

SNORT_IMAGE = "localhost/tzsp-ips-test-snort:local"
SENSOR_IMAGE = "localhost/tzsp-ips-sensor:test"
GLIBC = ("libc.so", "libm.so", "libpthread.so", "libdl.so", "librt.so", "libresolv.so", "ld-linux")


def real_binary(path: str) -> Path:
    """The ELF behind ``path``: itself, or what a wrapper script execs (``exec /opt/snort3/bin/snort "$@"``)."""
    resolved = Path(os.path.realpath(path))
    head = resolved.read_bytes()[:4096]
    if head.startswith(b"#!"):
        for line in head.decode(errors="replace").splitlines():
            words = line.split()
            if words[:1] == ["exec"] and len(words) > 1 and os.path.isfile(words[1]):
                return Path(words[1])
    return resolved


def snort_image_context(snort: snort_engines.Snort, context: Path) -> Path:
    """A build context for an image with this Snort: /usr/local/bin/snort and its stock configuration."""
    binary = real_binary(snort.path)
    prefix = binary.parent.parent
    env = snort_engines.snort_env(snort)
    libdirs = [str(prefix / "lib")] + [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    ldd = subprocess.run(
        ["ldd", str(binary)], capture_output=True, text=True, env=dict(env, LD_LIBRARY_PATH=":".join(libdirs))
    )
    assert ldd.returncode == 0 and "not found" not in ldd.stdout, ldd.stdout
    libs = context / "snort-libs"
    libs.mkdir(parents=True)
    for line in ldd.stdout.splitlines():
        words = line.split()
        if "=>" in words and len(words) > 2 and words[2].startswith("/") and not words[0].startswith(GLIBC):
            shutil.copy(words[2], libs / words[0])
    image_prefix = context / "prefix"
    (image_prefix / "bin").mkdir(parents=True)
    if shutil.which("strip"):  # debug symbols are most of a source build's binary
        subprocess.run(["strip", "-o", str(image_prefix / "bin" / "snort"), str(binary)], check=True)
    else:
        shutil.copy(binary, image_prefix / "bin" / "snort")
    not_needed = shutil.ignore_patterns("*.a", "*.la", "pkgconfig")
    if (prefix / "lib").is_dir():
        shutil.copytree(prefix / "lib", image_prefix / "lib", ignore=not_needed, symlinks=True)
    stock = snort_engines.stock_lua_dir(str(binary)) or Path(env.get(snort_engines.STOCK_LUA_VARIABLE, ""))
    assert (stock / "snort.lua").is_file(), f"no stock snort.lua for {binary}"
    shutil.copytree(stock, image_prefix / "etc" / "snort")
    (context / "snort").write_text(
        f'#!/bin/sh\nLD_LIBRARY_PATH="{prefix}/lib:/opt/snort-libs" exec {prefix}/bin/snort "$@"\n'
    )
    (context / "snort").chmod(0o755)
    (context / "Containerfile").write_text(
        "FROM debian:bookworm-slim\n"
        f"COPY prefix/ {prefix}/\n"
        "COPY snort-libs/ /opt/snort-libs/\n"
        "COPY snort /usr/local/bin/snort\n"
        f"ENV SNORT_LUA_PATH={prefix}/etc/snort\n"
        "RUN snort -V\n"
    )
    return context


@pytest.fixture(scope="session")
def snort3() -> snort_engines.Snort:
    found = snort_engines.find_snorts().get(3)
    if found is None:
        pytest.skip("no Snort 3 on PATH (snort3 or snort, or $SNORT3): the sensor image's test needs one")
    return found


@pytest.fixture(scope="session")
def sensor_image(podman: Podman, base_image, snort3, tmp_path_factory) -> str:
    if not podman.has_image(SNORT_IMAGE):
        podman.build(SNORT_IMAGE, snort_image_context(snort3, tmp_path_factory.mktemp("snort-image")))
    if not podman.has_image(SENSOR_IMAGE):
        podman.build(SENSOR_IMAGE, ROOT, target="sensor", build_args={"SNORT_IMAGE": SNORT_IMAGE})
    return SENSOR_IMAGE


@pytest.fixture
def routers(tmp_path):
    rig = Routers(tmp_path)
    yield rig
    rig.close()


def test_the_sensor_image_feeds_snort_and_the_bridge_image_blocks(
    podman, sensor_image, bridge_image, routers, tmp_path
):
    logs = tmp_path / "snort"
    logs.mkdir()
    os.chown(logs, SERVICE_UID, SERVICE_UID)
    state = tmp_path / "state"
    state.mkdir()
    os.chown(state, SERVICE_UID, SERVICE_UID)
    etc = routers.config_for_container("/var/log/snort/alert_json.txt", free_port(socket.SOCK_STREAM), form="json")
    tzsp_port = free_port()
    try:
        sensor = podman.start(
            sensor_image,
            options=["-v", f"{logs}:/var/log/snort", "-e", f"TZSPD_OPTS=--allow 127.0.0.1/32 --port {tzsp_port}"],
        )
        bridge = podman.start(
            bridge_image,
            options=[
                "-v",
                f"{etc}:/etc/tzsp-ips:ro",
                "-v",
                f"{logs}:/var/log/snort:ro",
                "-v",
                f"{state}:/var/lib/tzsp-ips",
            ],
        )
        assert wait_for(lambda: "listening" in podman.logs(sensor), 60, interval=0.5), podman.logs(sensor)
        capture = tmp_path / "office.pcap"
        from scapy.all import wrpcap

        wrpcap(str(capture), office_packets())
        started = time.monotonic()
        subprocess.run(
            [*console_script("tzsp-replay"), str(capture), "--to", f"127.0.0.1:{tzsp_port}", "-q"],
            check=True,
            timeout=60,
        )
        everywhere = lambda: all(SCANNER in found for found in routers.blocked().values())  # noqa: E731
        assert wait_for(everywhere, 90, interval=0.5), podman.logs(sensor)[-3000:] + podman.logs(bridge)[-3000:]
        podman.timings["sensor image: TZSP replayed -> scanner blocked on both routers"] = time.monotonic() - started
        assert (logs / "alert_json.txt").stat().st_size > 0  # Snort in the sensor container wrote it
        blocked = set().union(*routers.blocked().values())
        assert INSIDER not in blocked and not blocked & set(BENIGN)
    finally:
        podman.remove_all()
