"""The pure parts of installing: dpkg's conffile rule, the plan, the manifest, the units' bin directory;
`snort-bridge health`'s URL; and the Containerfile and compose.yaml agreeing with each other."""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import ROOT

from bridge.cli.health import health_url
from tzsp_ips_data import CATALOGUE, CONFIG_TARGET, UNIT_BIN_DIR, Shipped, read_shipped
from tzsp_ips_data.install import (
    INSTALL,
    KEEP,
    NEW,
    UNCHANGED,
    UPDATE,
    format_manifest,
    parse_manifest,
    plan,
    render,
    sha256,
)

OLD, NEWER, MINE = b"shipped before\n", b"shipped now\n", b"changed by the admin\n"


@pytest.mark.parametrize(
    "existing, recorded, verdict",
    [
        (None, None, INSTALL),
        (NEWER, None, UNCHANGED),
        (OLD, sha256(OLD), UPDATE),  # ours, untouched since: the upgrade goes in
        (MINE, sha256(OLD), NEW),  # changed here: kept, FILE.new beside it
        (OLD, None, NEW),  # put there by hand, not by us: the admin's
    ],
)
def test_dpkgs_conffile_rule(existing, recorded, verdict):
    item = Shipped("systemd/99-tzsp-ips.conf", "/etc/sysctl.d/99-tzsp-ips.conf")
    existing_map = {item.target: existing}
    recorded_map = {item.target: recorded} if recorded else {}
    (action,) = plan([item], {item.source: NEWER}, existing_map, recorded_map, UNIT_BIN_DIR, None)
    assert action.verdict == verdict
    assert action.write_to == {INSTALL: item.target, UPDATE: item.target, NEW: item.target + ".new"}.get(verdict)


def test_the_configuration_is_created_only_when_absent_and_never_offered_again():
    absent = plan([], {}, {}, {}, UNIT_BIN_DIR, b"example\n")
    assert [(a.target, a.verdict, a.mode) for a in absent] == [(CONFIG_TARGET, INSTALL, 0o640)]
    present = plan([], {}, {CONFIG_TARGET: b"mine\n"}, {}, UNIT_BIN_DIR, b"example\n")
    assert present[0].verdict == KEEP and present[0].write_to is None and not present[0].record


def test_units_start_the_commands_of_the_installation_that_installs_them():
    for item in (item for item in CATALOGUE if item.unit):
        shipped = read_shipped(item.source)
        assert f"ExecStart={UNIT_BIN_DIR}/".encode() in shipped
        moved = render(item, shipped, "/srv/venv/bin")
        assert b"ExecStart=/srv/venv/bin/" in moved and f"ExecStart={UNIT_BIN_DIR}/".encode() not in moved
    other = next(item for item in CATALOGUE if not item.unit)
    assert render(other, b"=/opt/tzsp-ips/bin/x", "/srv/venv/bin") == b"=/opt/tzsp-ips/bin/x"


def test_the_manifest_reads_back_what_it_wrote():
    recorded = {"/etc/default/tzspd": sha256(b"a"), "/etc/tzsp-ips/snort3/local.rules": sha256(b"b")}
    text = format_manifest(recorded)
    assert text.splitlines()[0] == f"{sha256(b'a')}  /etc/default/tzspd"  # sha256sum's format
    assert parse_manifest(text + "garbage\n") == recorded


@pytest.mark.parametrize(
    "listen, url",
    [
        ("127.0.0.1:9470", "http://127.0.0.1:9470/health"),
        (":9470", "http://127.0.0.1:9470/health"),
        ("0.0.0.0:9000", "http://127.0.0.1:9000/health"),
        ("[::]:9470", "http://[::1]:9470/health"),
        ("[::1]:9471", "http://[::1]:9471/health"),
    ],
)
def test_health_asks_the_listen_address_or_loopback_for_a_wildcard(listen, url):
    assert health_url(listen) == url


def containerfile_stages() -> dict[str, list[str]]:
    stages: dict[str, list[str]] = {}
    current = None
    for line in (ROOT / "Containerfile").read_text().splitlines():
        match = re.match(r"FROM\s+(\S+)\s+AS\s+(\S+)", line)
        if match:
            current = match.group(2)
            stages[current] = [line]
        elif current:
            stages[current].append(line)
    return stages


def test_the_containerfile_is_multi_stage_pinned_non_root_and_health_checked():
    stages = containerfile_stages()
    assert set(stages) == {"build", "sensor", "bridge"}
    for name in ("build", "bridge"):
        assert stages[name][0].startswith("FROM debian:bookworm-slim AS")  # pinned by tag
    assert stages["sensor"][0].startswith("FROM ${SNORT_IMAGE} AS")
    for name in ("sensor", "bridge"):
        assert "USER tzsp-ips" in stages[name] and "COPY --from=build /opt/tzsp-ips /opt/tzsp-ips" in stages[name]
    assert any(line.startswith("HEALTHCHECK ") and "snort-bridge" in line for line in stages["bridge"])
    assert "_fastrecv" in "\n".join(stages["build"])  # the C accelerator is built, or the build fails


def test_compose_builds_the_containerfiles_targets_and_mounts_their_volumes():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    stages = containerfile_stages()
    for name, service in compose["services"].items():
        assert service["build"]["target"] in stages, name
        assert service["network_mode"] == "host"
        declared = re.findall(r'VOLUME \["([^"]+)"\]', "\n".join(stages[service["build"]["target"]]))
        mounted = {volume.split(":")[1] for volume in service["volumes"]}
        assert set(declared) <= mounted, name
    assert "/etc/tzsp-ips" in {v.split(":")[1] for v in compose["services"]["bridge"]["volumes"]}


def test_every_shipped_file_is_in_the_catalogue():
    """A file added under tzsp_ips_data/ (a config a shipped config includes, say) that `files install`
    does not put in place would leave an installed Snort config pointing at nothing."""
    from tzsp_ips_data import data_root

    root = data_root()
    shipped = {
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".py"
    }
    assert shipped == {item.source for item in CATALOGUE}
