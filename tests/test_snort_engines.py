"""Finding Snort: the version banner, the names and variables looked at, the stock snort.lua beside a binary.

Fake `snort` scripts stand in for the binaries (the live tier, tests/test_live_snort.py, runs the real ones)."""

from __future__ import annotations

import os
from pathlib import Path

from bridge import snort_engines
from bridge.snort_engines import Snort, find_snorts, parse_version, snort_env, stock_lua_dir

SNORT3_BANNER = """
   ,,_     -*> Snort++ <*-
  o"  )~   Version 3.12.2.0
   ''''    By Martin Roesch & The Snort Team
"""
SNORT2_BANNER = """
   ,,_     -*> Snort! <*-
  o"  )~   Version 2.9.19 GRE (Build 85)
   ''''    By Martin Roesch & The Snort Team: http://www.snort.org/contact#team
"""


def fake_snort(path: Path, banner: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\ncat >&2 <<'END'\n" + banner + "END\n")
    path.chmod(0o755)
    return str(path)


def test_the_version_comes_from_either_banner():
    assert parse_version(SNORT3_BANNER) == "3.12.2.0"
    assert parse_version(SNORT2_BANNER) == "2.9.19"
    assert parse_version("snort: command not found") is None


def test_path_names_and_variables_are_found_and_told_apart(tmp_path):
    bin_dir = tmp_path / "bin"
    fake_snort(bin_dir / "snort", SNORT3_BANNER)
    found = find_snorts({"PATH": str(bin_dir)})
    assert list(found) == [3] and found[3].found_as == "snort on PATH" and found[3].engine == "snort3"
    two = fake_snort(tmp_path / "elsewhere" / "snort", SNORT2_BANNER)
    found = find_snorts({"PATH": str(bin_dir), "SNORT2": two})
    assert found[2].path == two and found[2].found_as == "$SNORT2" and found[3].path == str(bin_dir / "snort")
    assert find_snorts({"PATH": str(tmp_path / "empty")}) == {}


def test_one_binary_under_two_names_counts_once(tmp_path):
    real = fake_snort(tmp_path / "opt" / "bin" / "snort", SNORT3_BANNER)
    (tmp_path / "bin").mkdir()
    os.symlink(real, tmp_path / "bin" / "snort3")
    os.symlink(real, tmp_path / "bin" / "snort")
    found = find_snorts({"PATH": str(tmp_path / "bin")})
    assert list(found) == [3] and found[3].found_as == "snort3 on PATH"


def test_the_stock_snort_lua_is_found_beside_the_binary_through_a_symlink(tmp_path):
    real = fake_snort(tmp_path / "opt" / "snort3" / "bin" / "snort", SNORT3_BANNER)
    link = tmp_path / "snort3"
    os.symlink(real, link)
    assert stock_lua_dir(str(link)) is None  # no snort.lua installed yet
    etc = tmp_path / "opt" / "snort3" / "etc" / "snort"
    etc.mkdir(parents=True)
    (etc / "snort.lua").write_text("-- stock\n")
    assert stock_lua_dir(str(link)) == etc
    snort = Snort(str(link), "3.12.2.0", "snort3 on PATH")
    assert snort_env(snort, {})["SNORT_LUA_PATH"] == str(etc)
    assert snort_env(snort, {"SNORT_LUA_PATH": "/mine"})["SNORT_LUA_PATH"] == "/mine"  # the user's choice stands
    assert "SNORT_LUA_PATH" not in snort_env(Snort(str(link), "2.9.19", "x"), {})


def test_each_engine_reads_the_pipe_its_own_way_and_gets_its_own_config(tmp_path):
    three, two = Snort("/s3", "3.12.2.0", "x"), Snort("/s2", "2.9.19", "x")
    assert three.command(Path("/c.lua"), "/logs") == [
        "/s3",
        "-c",
        "/c.lua",
        "-r",
        "/dev/stdin",
        "--daq-batch-size",
        "1",
        "-l",
        "/logs",
        "-q",
    ]
    assert two.command(Path("/c.conf"), "/logs")[-5:-3] == ["-r", "-"]
    assert three.shipped_config().name == "tzsp-ips.lua" and two.shipped_config().name == "tzsp-ips.conf"
    copy = snort_engines.prepare_config(two, tmp_path)
    text = copy.read_text()
    assert "output alert_fast" in text and "alert_syslog" not in text
    assert (copy.parent / "local.rules").is_file() and (copy.parent / "unicode.map").is_file()
    assert (copy.parent / "rulesets.conf").is_file() and (copy.parent.parent / "home-net.conf").is_file()
    assert snort_engines.prepare_config(three, tmp_path) == three.shipped_config()


def test_snort2_is_told_where_its_dynamic_preprocessors_are(tmp_path):
    from bridge.snort_engines import dynamic_preprocessor_dir

    prefix = tmp_path / "opt" / "snort2"
    (prefix / "bin").mkdir(parents=True)
    binary = prefix / "bin" / "snort"
    binary.write_text("")
    assert dynamic_preprocessor_dir(str(binary), places=()) is None
    found = prefix / "lib" / "snort_dynamicpreprocessor"
    found.mkdir(parents=True)
    assert dynamic_preprocessor_dir(str(binary), places=()) == found  # from the binary's prefix
    wrapper = tmp_path / "bin" / "snort2"  # a wrapper script on PATH: the usual places are tried
    wrapper.parent.mkdir()
    wrapper.write_text("#!/bin/sh\n")
    assert dynamic_preprocessor_dir(str(wrapper), places=("/nonexistent", str(found))) == found
    snort2 = Snort(str(binary), "2.9.19", "x")
    command = snort2.command(Path("/c.conf"), "/logs")
    assert command[3:5] == ["--dynamic-preprocessor-lib-dir", str(found)] and command[5:7] == ["-r", "-"]
    assert Snort(str(binary), "3.12.2.0", "x").installation_args() == []
