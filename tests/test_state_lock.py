"""One bridge per state_dir: a second `snort-bridge run` is refused, commands work beside the first.

Real processes: the service and the second instance are console scripts; the routers are
simulated over real SSH on loopback.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from conftest import console_script
from responder_rig import wait_until
from test_e2e_service import DEADLINE, Service, write_service_config

from plumbing.statelock import StateDirBusy, StateDirLock, holder_of


def snort_bridge(config: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*console_script("snort-bridge"), *args, "--config", config],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_second_lock_on_one_directory_names_the_directory_and_the_holder(tmp_path):
    first = StateDirLock(str(tmp_path), "snort-bridge run").acquire()
    with pytest.raises(StateDirBusy) as refused:
        StateDirLock(str(tmp_path), "snort-bridge run").acquire(wait=0)
    assert refused.value.state_dir == str(tmp_path)
    assert f"PID {os.getpid()} (snort-bridge run)" in str(refused.value)
    assert holder_of(str(tmp_path)) == f"PID {os.getpid()} (snort-bridge run)"
    first.release()
    assert holder_of(str(tmp_path)) is None
    StateDirLock(str(tmp_path), "snort-bridge block").acquire(wait=0).release()  # free again


def test_a_lock_left_by_a_killed_holder_is_no_obstacle(tmp_path):
    # the file stays behind with a dead PID in it; only a held flock counts
    holder = subprocess.Popen(
        [
            "python3",
            "-c",
            "import sys, time; sys.path.insert(0, sys.argv[1]); from plumbing.statelock import StateDirLock; "
            "StateDirLock(sys.argv[2], 'snort-bridge run').acquire(); print('held', flush=True); time.sleep(60)",
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert holder_of(str(tmp_path)) == f"PID {holder.pid} (snort-bridge run)"
    finally:
        holder.kill()
        holder.wait()
    assert (tmp_path / "lock").read_text().startswith(f"{holder.pid} ")
    StateDirLock(str(tmp_path), "snort-bridge run").acquire(wait=0).release()


def test_a_second_run_is_refused_and_commands_work_beside_the_first(lab, services, tmp_path):
    lab.add("r1")
    config = write_service_config(lab, alerts=tmp_path / "alert_fast.txt")
    first = Service(config, tmp_path / "run1.log").start()
    services.append(first)

    second = snort_bridge(config, "run")
    assert second.returncode == 1, second.stderr
    state_dir = str(tmp_path / "state")
    assert re.search(
        rf"cannot start: {re.escape(state_dir)} is in use by PID {first.process.pid} \(snort-bridge run\)",
        second.stderr,
    ), second.stderr
    assert "Traceback" not in second.stderr
    assert first.process.poll() is None  # the first one runs on untouched

    # a block by hand goes through the ledger; the running service's worker sends it, once
    blocked = snort_bridge(config, "block", "203.0.113.77", "--for", "5m", "--reason", "by hand")
    assert blocked.returncode == 0, blocked.stdout + blocked.stderr
    assert f"PID {first.process.pid} (snort-bridge run) sends it to the routers" in blocked.stdout
    assert "r1: applied" in blocked.stdout
    assert "203.0.113.77" in lab.entries("r1")
    assert sum("address=203.0.113.77 " in command for command in lab.adds("r1")) == 1

    listed = snort_bridge(config, "list")
    assert listed.returncode == 0, listed.stderr
    assert "203.0.113.77" in listed.stdout

    unblocked = snort_bridge(config, "unblock", "203.0.113.77")
    assert unblocked.returncode == 0, unblocked.stdout + unblocked.stderr
    assert wait_until(lambda: "203.0.113.77" not in lab.entries("r1"), DEADLINE)

    assert first.stop() == 0
    # once it is gone the directory is free: a command takes the lock and runs its own workers
    again = snort_bridge(config, "block", "203.0.113.78", "--for", "5m")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "sends it" not in again.stdout
    assert "203.0.113.78" in lab.entries("r1")
