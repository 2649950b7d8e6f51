"""Day one, end to end, and the units under real systemd.

A Debian 12 container boots systemd as PID 1 (tests/containers/systemd.Containerfile: nothing of
tzsp-ips in it). The README's "Setting up a real network" is followed literally: every ```sh block
of that section runs in the container as it stands, in order (extracted here, never retyped), from
`pip install` of the built wheel to `systemctl enable --now tzspd snort-bridge`; only the lines that
open an editor are done by the test (it writes the file). The router is a routeros-sim on the host's
loopback (host networking) with nothing but an administrator, set up by `provision --apply`. An attack
replayed as TZSP from the host then ends with the attacker on the router's address list.

The same booted box then shows what the units promise: Type=notify READY, the watchdog being fed,
`systemctl reload` re-reading the configuration, the sandbox (service user, no capabilities, a
read-only system) holding, and `journalctl -u` showing the logs.
"""

from __future__ import annotations

import re
import socket
import subprocess
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT, console_script, free_port, wait_for
from container_rig import BUILD_MOUNTS, Podman
from test_scan_cli import SCANNER, TARGET, benign_packets, pcap_bytes, scan_packets

from bridge.config.load import parse_config
from bridge.demo.rig import _write_key
from responder.sim.router.users import ALL_POLICIES
from responder.transport import known_hosts

pytestmark = [pytest.mark.containers, pytest.mark.slow]

SYSTEMD_IMAGE = "localhost/tzsp-ips-systemd-box:test"
SECTION = "## Setting up a real network"
ADMIN_PASSWORD = "day-one-admin"
LIST = "blacklist"
EDITOR_LINE = re.compile(r"^\$EDITOR\s+(\S+)\s*$")


# The rehearsal on a simulator of the reader's own (a second terminal, a router named "sim"): the
# router of this test is itself a routeros-sim, set up by the steps that follow it.
REHEARSAL = "Try it on the simulator first"


def readme_steps(readme: Path = ROOT / "README.md") -> list[tuple[str, list[str]]]:
    """(title, ```sh blocks dedented) of each numbered step of the README's set-up section, in order."""
    section = readme.read_text().split(SECTION + "\n", 1)[1].split("\n## ", 1)[0]
    steps = re.split(r"^(?=\d+\. \*\*)", section, flags=re.M)[1:]
    return [
        (
            re.match(r"\d+\. \*\*(.+?)\*\*", step).group(1),
            [textwrap.dedent(block) for block in re.findall(r"^ *```sh\n(.*?)^ *```", step, re.M | re.S)],
        )
        for step in steps
    ]


def readme_blocks() -> list[str]:
    return [block for title, blocks in readme_steps() if not title.startswith(REHEARSAL) for block in blocks]


def test_the_readme_section_has_the_day_one_commands():
    commands = "\n".join(readme_blocks())
    assert [title for title, _ in readme_steps() if title.startswith(REHEARSAL)]  # what is left out is there
    for needed in (
        "pip install tzsp_ips-*.whl",
        "snort-bridge files install",
        "snort-bridge provision core1 --apply",
        "snort-bridge trust core1",
        "snort-bridge provision core1 --check",
        "systemctl enable --now tzspd snort-bridge",
    ):
        assert needed in commands, needed


@dataclass
class Box:
    podman: Podman
    name: str
    router_port: int
    tzsp_port: int
    host_config: str  # the routers as the host sees them (the administrator's login), to read the list

    def sh(self, script: str, check: bool = True, input: str | None = None, timeout: float = 600):
        result = self.podman.exec(
            self.name, "bash", "-euo", "pipefail", "-c", script, check=False, input=input, timeout=timeout
        )
        if check:
            assert result.returncode == 0, (
                f"{script}\n-> exit {result.returncode}\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
            )
        return result

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        out = self.sh(f"systemctl show {unit} -p {','.join(properties)}").stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def journal(self, unit: str) -> str:
        return self.sh(f"journalctl -u {unit} --no-pager -o cat").stdout

    def router_list(self) -> set[str]:
        from responder.transport.ssh_session import RouterSession

        (router,) = parse_config(Path(self.host_config).read_text(), self.host_config).routers
        with RouterSession(router) as session:
            return {str(address) for address in session.list_blocks()}


def bridge_config(router_port: int) -> str:
    return textwrap.dedent(f"""\
        state_dir = "/var/lib/tzsp-ips"

        [policy]
        protected = ["192.0.2.0/24"]
        block_for = "10m"

        [scan]
        ports = 15
        window = "10s"

        [[alerts]]
        path = "/var/log/snort/alert_json.txt"
        format = "json"

        [[routers]]
        name = "core1"
        host = "127.0.0.1"
        port = {router_port}
        user = "ips"
        key_file = "/etc/tzsp-ips/id_ed25519"
        known_hosts = "/etc/tzsp-ips/known_hosts"
        list = "{LIST}"
        connect_timeout = "5s"
        """)


def tzspd_defaults(tzsp_port: int) -> str:
    # no Snort in the box: the README's built-in detector line; the port: one of this run's own
    return (
        f'TZSPD_OPTS="--allow 127.0.0.1/32 --port {tzsp_port}"\n'
        'SNORT_CMD="/opt/tzsp-ips/bin/snort-bridge scan --pcap - --dry-run --alerts /var/log/snort/alert_json.txt"\n'
    )


@pytest.fixture(scope="module")
def router(tmp_path_factory):
    """routeros-sim on the host's loopback with nothing but an administrator (password login)."""
    home = tmp_path_factory.mktemp("core1")
    host_key = _write_key(home / "host_key")
    (home / "admin.password").write_text(ADMIN_PASSWORD + "\n")
    (home / "admin.password").chmod(0o600)
    port = free_port(socket.SOCK_STREAM)
    log = open(home / "sim.log", "wb")
    process = subprocess.Popen(
        [*console_script("routeros-sim"), "--listen", "127.0.0.1", "--port", str(port), "--user", "admin"]
        + ["--password-file", str(home / "admin.password"), "--policy", ",".join(ALL_POLICIES)]
        + ["--host-key", str(home / "host_key"), "--identity", "core1"],
        stdout=log,
        stderr=log,
    )
    try:
        assert wait_for(lambda: b"listening on" in (home / "sim.log").read_bytes(), 30), (home / "sim.log").read_text()
        known = home / "known_hosts"
        known_hosts.record(
            str(known), known_hosts.host_name("127.0.0.1", port), host_key.get_name(), host_key.asbytes()
        )
        config = home / "host-config.toml"
        config.write_text(
            f'[[routers]]\nname = "core1"\nhost = "127.0.0.1"\nport = {port}\nuser = "admin"\n'
            f'password_file = "{home / "admin.password"}"\nknown_hosts = "{known}"\nlist = "{LIST}"\n'
        )
        config.chmod(0o600)
        yield port, str(config)
    finally:
        process.terminate()
        process.wait(20)
        log.close()


@pytest.fixture(scope="module")
def box(podman: Podman, base_image, built_wheel, router):
    """The README's day one, done in a freshly booted systemd container."""
    router_port, host_config = router
    if not podman.has_image(SYSTEMD_IMAGE):
        podman.build(
            SYSTEMD_IMAGE, ROOT / "tests" / "containers", ROOT / "tests" / "containers" / "systemd.Containerfile"
        )
    # the README's apt-get and pip reach the registries as a build does (tests/containers/README.md)
    options = [arg for mount in BUILD_MOUNTS for arg in ("-v", mount)]
    # CAP_SYS_ADMIN: without it the container's systemd silently skips the units' mount namespacing
    # (ProtectSystem=, PrivateTmp=, …: / stays writable, nothing logged); with it the sandbox is real
    options += ["--cap-add", "SYS_ADMIN"]
    started = time.monotonic()
    name = podman.start(SYSTEMD_IMAGE, options=options)
    try:
        box = Box(podman, name, router_port, free_port(), host_config)
        booted = lambda: box.sh("systemctl is-system-running", check=False).stdout.strip() in ("running", "degraded")  # noqa: E731
        assert wait_for(booted, 90, interval=0.5), box.sh("systemctl --failed --no-pager", check=False).stdout
        podman("cp", str(built_wheel.wheel), f"{name}:/root/")
        edits = {
            "/etc/tzsp-ips/config.toml": bridge_config(router_port),
            "/etc/default/tzspd": tzspd_defaults(box.tzsp_port),
        }
        for block in readme_blocks():
            script = []
            for line in block.splitlines():
                edit = EDITOR_LINE.match(line.strip())
                if edit:  # the admin edits the file: the test writes what they would
                    box.sh(f"cat > {edit.group(1)}", input=edits[edit.group(1)])
                    continue
                script.append(line)
            answer = ADMIN_PASSWORD if "provision" in block else "y"  # the prompts: password, host key
            box.sh("cd /root\n" + "\n".join(script), input=answer + "\n")
        podman.timings["day one: podman run -> services started by the README's commands"] = time.monotonic() - started
        yield box
    finally:
        podman.remove(name)


def test_day_one_an_attack_replayed_as_tzsp_ends_on_the_routers_list(box, tmp_path):
    assert box.show("tzspd", "ActiveState")["ActiveState"] == "active", box.journal("tzspd")
    assert box.show("snort-bridge", "ActiveState")["ActiveState"] == "active", box.journal("snort-bridge")
    capture = tmp_path / "attack.pcap"
    capture.write_bytes(pcap_bytes(tmp_path, benign_packets() + scan_packets(), name="attack.pcap"))
    started = time.monotonic()
    subprocess.run(
        [*console_script("tzsp-replay"), str(capture), "--to", f"127.0.0.1:{box.tzsp_port}", "-q"],
        check=True,
        timeout=60,
    )
    assert wait_for(lambda: SCANNER in box.router_list(), 60, interval=0.5), (
        box.journal("tzspd")[-3000:] + box.journal("snort-bridge")[-3000:]
    )
    box.podman.timings["day one: TZSP replayed -> attacker on the router's list"] = time.monotonic() - started
    assert TARGET not in box.router_list()
    assert SCANNER in box.journal("snort-bridge")  # journalctl -u shows the decision


def test_the_units_report_ready_and_feed_the_watchdog(box):
    for unit in ("tzspd", "snort-bridge"):
        shown = box.show(unit, "Type", "ActiveState", "SubState", "StatusText", "WatchdogUSec", "ExecMainStatus")
        assert shown["Type"] == "notify" and shown["SubState"] == "running", shown
        assert shown["StatusText"], shown  # sent with READY=1
        assert shown["WatchdogUSec"] == "30s", shown
        first = box.show(unit, "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"]
        assert wait_for(
            lambda unit=unit, first=first: (
                box.show(unit, "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"] != first
            ),
            40,
            interval=1,
        ), f"{unit}: no WATCHDOG=1 within 40 s"
    assert "listening" in box.journal("tzspd")


def test_reload_rereads_the_configuration_and_keeps_the_process(box):
    before = box.show("snort-bridge", "MainPID")["MainPID"]
    box.sh('sed -i \'s/^block_for = "10m"/block_for = "20m"/\' /etc/tzsp-ips/config.toml')
    box.sh("systemctl reload snort-bridge")
    assert wait_for(lambda: "reloaded" in box.journal("snort-bridge"), 20, interval=0.5), box.journal("snort-bridge")
    shown = box.show("snort-bridge", "MainPID", "ActiveState")
    assert shown == {"MainPID": before, "ActiveState": "active"}


def test_the_sandbox_holds(box):
    uid = box.sh("id -u tzsp-ips").stdout.strip()
    for unit in ("tzspd", "snort-bridge"):
        pid = box.show(unit, "MainPID")["MainPID"]
        status = box.sh(f"cat /proc/{pid}/status").stdout
        assert re.search(rf"^Uid:\s+{uid}\s+{uid}\s+{uid}\s+{uid}$", status, re.M), status
        for capabilities in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
            assert re.search(rf"^{capabilities}:\s+0+$", status, re.M), f"{unit}: {capabilities}"
        assert re.search(r"^NoNewPrivs:\s+1$", status, re.M)
        mounts = box.sh(f"cat /proc/{pid}/mountinfo").stdout
        options = {fields[4]: fields[5] for fields in (line.split() for line in mounts.splitlines())}
        for read_only in ("/", "/etc", "/usr"):
            if read_only in options:
                assert options[read_only].split(",")[0] == "ro", f"{unit}: {read_only} {options[read_only]}"
        assert options["/"].startswith("ro"), f"{unit}: / is {options['/']}"
        if unit == "snort-bridge":  # StateDirectory=: the one place it may write
            assert options["/var/lib/tzsp-ips"].startswith("rw"), options.get("/var/lib/tzsp-ips")
    # the bridge writes only its state directory: the ledger is there, owned by the service user
    assert box.sh("stat -c %U /var/lib/tzsp-ips").stdout.strip() == "tzsp-ips"
