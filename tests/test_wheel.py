"""Installed like software: the wheel and the sdist carry every shipped file, and from a fresh virtual
environment outside the tree, run in an empty directory, `snort-bridge files`, `files install --root`
(with --dry-run, and the .new rule for a file changed by the admin) and `snort-bridge demo` work."""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest
import wheel_rig

from tzsp_ips_data import CATALOGUE, CONFIG_TARGET, INSTALL_PREFIX
from tzsp_ips_data.install import MANIFEST

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(built_wheel) -> wheel_rig.Built:
    return built_wheel


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory) -> wheel_rig.Installed:
    return wheel_rig.install(built.wheel, tmp_path_factory.mktemp("fresh") / "venv")


@pytest.fixture
def empty(tmp_path) -> Path:
    path = tmp_path / "empty"
    path.mkdir()
    return path


def test_the_wheel_and_the_sdist_carry_every_shipped_file(built):
    with zipfile.ZipFile(built.wheel) as wheel:
        in_wheel = set(wheel.namelist())
    with tarfile.open(built.sdist) as sdist:
        in_sdist = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    for item in CATALOGUE:
        assert f"tzsp_ips_data/{item.source}" in in_wheel, item.source
        assert f"tzsp_ips_data/{item.source}" in in_sdist, item.source
    assert any(name.startswith("tzsp/_fastrecv") and name.endswith(".so") for name in in_wheel), "no C accelerator"


def test_the_installed_package_is_the_wheel_not_this_tree(installed, empty):
    result = installed.run(
        "python",
        "-c",
        "import bridge, tzsp_ips_data; print(bridge.__file__); print(tzsp_ips_data.data_root())",
        cwd=empty,
    )
    assert result.returncode == 0, result.stderr
    for line in result.stdout.splitlines():
        assert line.startswith(str(installed.prefix)), line


def test_files_lists_each_shipped_file_where_the_readme_puts_it(installed, empty):
    result = installed.run("snort-bridge", "files", cwd=empty)
    assert result.returncode == 0, result.stderr
    assert str(installed.prefix) in result.stdout.splitlines()[0]  # the data of the installed wheel
    for item in CATALOGUE:
        assert any(item.source in line and item.target in line for line in result.stdout.splitlines()), item
    assert CONFIG_TARGET in result.stdout and INSTALL_PREFIX in result.stdout


def test_files_install_dry_run_changes_nothing(installed, empty, tmp_path):
    root = tmp_path / "root"
    result = installed.run("snort-bridge", "files", "install", "--root", str(root), "--dry-run", cwd=empty)
    assert result.returncode == 0, result.stderr
    assert "would install" in result.stdout and "/etc/systemd/system/tzspd.service" in result.stdout
    assert not root.exists()


def test_files_install_puts_them_there_and_keeps_what_the_admin_changed(installed, empty, tmp_path):
    root = tmp_path / "root"

    def install(*extra: str) -> str:
        result = installed.run("snort-bridge", "files", "install", "--root", str(root), *extra, cwd=empty)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def on_system(path: str) -> Path:
        return root / path.lstrip("/")

    install()
    data = installed.prefix / "lib"
    for item in (item for item in CATALOGUE if item.group == "core"):
        (shipped,) = data.glob(f"python3*/site-packages/tzsp_ips_data/{item.source}")
        if item.unit:
            assert f"ExecStart={installed.bin}/" in on_system(item.target).read_text(), item.target
        else:
            assert on_system(item.target).read_bytes() == shipped.read_bytes(), item.target
    assert not on_system("/etc/rsyslog.d").exists()  # roles only when asked for
    config = on_system(CONFIG_TARGET)
    assert "[[routers]]" in config.read_text() and stat.S_IMODE(config.stat().st_mode) == 0o640
    assert on_system(MANIFEST).is_file()

    # again, nothing new: all unchanged
    again = install()
    assert again.count("unchanged") == sum(1 for item in CATALOGUE if item.group == "core")
    assert f"kept              {CONFIG_TARGET}" in again

    # the admin edits one unit and the configuration; a new version of the units arrives (another bin dir)
    bridge_unit = on_system("/etc/systemd/system/snort-bridge.service")
    bridge_unit.write_text(bridge_unit.read_text() + "# changed here\n")
    config.write_text("# mine\n")
    upgrade = install("--bin-dir", "/srv/elsewhere/bin", "--with", "sensor")
    tzspd_unit = on_system("/etc/systemd/system/tzspd.service").read_text()
    assert "ExecStart=/srv/elsewhere/bin/tzspd " in tzspd_unit  # ours, unchanged since: updated in place
    assert bridge_unit.read_text().endswith("# changed here\n")  # the admin's: kept
    new = Path(f"{bridge_unit}.new")
    assert "ExecStart=/srv/elsewhere/bin/snort-bridge run" in new.read_text()
    assert "/etc/systemd/system/snort-bridge.service.new" in upgrade  # and it says so
    assert config.read_text() == "# mine\n" and not Path(f"{config}.new").exists()
    assert on_system("/etc/rsyslog.d/40-tzsp-ips-sensor.conf").is_file()
    assert on_system("/etc/sysctl.d/60-tzsp-ips-sensor.conf").is_file()


def test_the_demo_runs_from_the_installed_package_in_an_empty_directory(installed, empty):
    env = dict(os.environ, TMPDIR=str(empty), PYTHONUNBUFFERED="1")
    result = installed.run("snort-bridge", "demo", cwd=empty, timeout=150, env=env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "== OK" in result.stdout
    assert list(empty.iterdir()) == []
