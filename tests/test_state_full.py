"""A full state_dir: the bridge goes on blocking from memory, says so, and records it all once
space is back, so that a restart neither loses nor repeats anything.

The state_dir is a real 4 MiB tmpfs (mounting needs root: skipped with one line otherwise; CI runs
as root), filled with a file until the kernel says ENOSPC. Routers are simulated over real SSH.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import free_port
from responder_rig import Lab, wait_until
from test_e2e_service import DEADLINE, Service, append, fast_line

from responder.events import BlockRequest
from responder.ledger import LEDGER_FILE, Ledger

LONG = 400 * 86400.0  # beyond the v7 limit: would be a static entry


class SmallDisk:
    """A 4 MiB tmpfs at ``path``, and a file that fills it."""

    def __init__(self, path: Path):
        self.path = path
        self.filler = path / "filler"
        path.mkdir(parents=True, exist_ok=True)
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(path)], capture_output=True, text=True
        )
        if mounted.returncode != 0:
            message = f"cannot mount a tmpfs for state_dir: {mounted.stderr.strip()}"
            if os.environ.get("CI"):
                pytest.fail(message + " -- required when CI is set")
            pytest.skip(message)

    def fill(self) -> None:
        chunk = b"\0" * 65536
        with open(self.filler, "ab") as handle:
            try:
                for _ in range(1024):  # 64 MiB at most: far beyond 4 MiB
                    handle.write(chunk)
                    handle.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        try:  # the last bytes too
            with open(self.filler, "ab") as handle:
                for _ in range(4096):
                    handle.write(b"\0" * 512)
                    handle.flush()
        except OSError:
            pass

    def free(self) -> None:
        self.filler.unlink()

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False)


@pytest.fixture
def small_state(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for state_dir needs root (CI runs as root)")
    disk = SmallDisk(tmp_path / "state")
    yield disk
    disk.unmount()


def request(address: str, duration: float = 3600.0) -> BlockRequest:
    return BlockRequest(ipaddress.ip_address(address), duration, "attack", "1:7", requested_at=time.time())


def test_blocks_go_on_from_memory_and_are_recorded_once_space_is_back(lab, small_state):
    lab.add("r1")
    responder = lab.responder()
    with responder.batch():
        responder.block(request("203.0.113.10"))
    assert responder.wait_applied(ipaddress.ip_address("203.0.113.10"), 20)

    small_state.fill()
    with responder.batch():  # the commit fails: no exception, the blocks go to memory
        responder.block(request("203.0.113.11"))
        responder.block(request("203.0.113.12"))
        responder.block(request("203.0.113.13", LONG))
    assert responder.ledger.degraded is not None
    assert "full" in responder.ledger.degraded.reason
    for address in ("203.0.113.11", "203.0.113.12"):
        assert wait_until(lambda address=address: address in lab.entries("r1"), 20), address
    time.sleep(0.5)  # a few polls: the static one waits while nothing can be recorded
    assert "203.0.113.13" not in lab.entries("r1")
    assert not responder.keep_ledger()  # still full

    small_state.free()
    assert wait_until(responder.keep_ledger, 30)
    assert responder.ledger.degraded is None
    assert wait_until(lambda: "203.0.113.13" in lab.entries("r1"), 20)  # static, now that it is recorded
    assert wait_until(lambda: responder.states(ipaddress.ip_address("203.0.113.13"))["r1"].status == "applied", 20)
    assert responder.stop(5)

    on_disk = Ledger(str(small_state.path / LEDGER_FILE))  # the file has all of it
    try:
        records = {str(r.address): r for r in on_disk.blocks(time.time())}
    finally:
        on_disk.close()
    assert set(records) == {"203.0.113.10", "203.0.113.11", "203.0.113.12", "203.0.113.13"}
    assert all(r.routers["r1"].status == "applied" for r in records.values())

    adds = len(lab.adds("r1"))
    again = lab.responder()  # a restart: nothing is sent twice
    assert wait_until(lambda: again.ledger.router_meta("r1").last_seen is not None, 20)
    time.sleep(0.5)
    assert len(lab.adds("r1")) == adds
    for address in records:
        assert sum(f"address={address} " in command for command in lab.adds("r1")) == 1, address


def write_config(lab: Lab, tmp_path: Path, alerts: Path, http_port: int) -> str:
    table = lab.router_table("r1", lab.ports["r1"])
    lines = [
        f'state_dir = "{tmp_path / "state"}"',
        "[policy]",
        'block_for = "10m"',
        'protected = ["10.0.0.0/8"]',
        "[[alerts]]",
        f'path = "{alerts}"',
        'format = "fast"',
        "[http]",
        f'listen = "127.0.0.1:{http_port}"',
        "provision_check = false",  # the simulated routers are not provisioned: /health speaks of the state only
        "[[routers]]",
        *(f"{key} = {value}" if isinstance(value, int) else f'{key} = "{value}"' for key, value in table.items()),
    ]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return str(path)


def health(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_service_blocks_on_with_a_full_disk_and_says_so(lab, services, small_state, tmp_path):
    lab.add("r1")
    alerts = tmp_path / "alert_fast.txt"
    alerts.touch()
    port = free_port(socket.SOCK_STREAM)
    config = write_config(lab, tmp_path, alerts, port)
    service = Service(config, tmp_path / "run.log").start()
    services.append(service)
    append(alerts, fast_line("203.0.113.20"))
    assert wait_until(lambda: "203.0.113.20" in lab.entries("r1"), DEADLINE)
    assert wait_until(lambda: health(port)[0] == 200, DEADLINE), health(port)

    small_state.fill()
    append(alerts, fast_line("203.0.113.21"), fast_line("203.0.113.22"))
    assert wait_until(lambda: "203.0.113.22" in lab.entries("r1"), DEADLINE), service.text()
    assert "203.0.113.21" in lab.entries("r1")
    assert service.process.poll() is None  # still running
    assert wait_until(lambda: health(port)[0] == 503, DEADLINE), health(port)  # snapshots live a second
    status, body = health(port)
    assert any("cannot be written" in problem and "full" in problem for problem in json.loads(body)["problems"])
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    assert 'tzsp_ips_state_writable{file="ledger"} 0.0' in metrics
    append(alerts, fast_line("203.0.113.23"))
    assert wait_until(lambda: "203.0.113.23" in lab.entries("r1"), DEADLINE)
    assert service.text().count("cannot be written (database or disk is full)") == 1  # said once

    small_state.free()
    assert wait_until(lambda: health(port)[0] == 200, 90), health(port)
    assert "can be written again" in service.text()
    assert service.stop() == 0
    assert "Traceback" not in service.text()

    second = Service(config, tmp_path / "run2.log").start()  # nothing lost, nothing applied twice
    services.append(second)
    time.sleep(1.0)
    assert second.stop() == 0
    for address in ("203.0.113.20", "203.0.113.21", "203.0.113.22", "203.0.113.23"):
        assert sum(f"address={address} " in command for command in lab.adds("r1")) == 1, address
    ledger = Ledger(str(tmp_path / "state" / LEDGER_FILE))
    try:
        recorded = {str(r.address) for r in ledger.blocks(time.time())}
    finally:
        ledger.close()
    assert recorded == {"203.0.113.20", "203.0.113.21", "203.0.113.22", "203.0.113.23"}


def test_a_stop_while_the_disk_is_full_says_what_is_not_recorded(lab, small_state, caplog):
    lab.add("r1")
    responder = lab.responder()
    with responder.batch():
        responder.block(request("203.0.113.30"))
    assert responder.wait_applied(ipaddress.ip_address("203.0.113.30"), 20)
    small_state.fill()
    with responder.batch():
        responder.block(request("203.0.113.31"))
    assert wait_until(lambda: "203.0.113.31" in lab.entries("r1"), 20)
    assert responder.stop(5)  # one last try, then it says what is lost
    assert "stopping with the ledger" in caplog.text and "1 new block(s)" in caplog.text
    timeout = lab.entries("r1")["203.0.113.31"].timeout
    assert timeout is not None and timeout <= 3600  # it ends on the router by itself
    small_state.free()
    ledger = Ledger(str(small_state.path / LEDGER_FILE))
    try:
        assert {str(r.address) for r in ledger.blocks(time.time())} == {"203.0.113.30"}
    finally:
        ledger.close()


def test_the_state_dir_lock_holds_on_a_read_only_file_system(small_state):
    from plumbing.statelock import StateDirBusy, StateDirLock

    subprocess.run(["mount", "-o", "remount,ro", str(small_state.path)], check=True)
    first = StateDirLock(str(small_state.path), "snort-bridge run").acquire()  # no lock file can be made
    try:
        with pytest.raises(StateDirBusy) as refused:
            StateDirLock(str(small_state.path), "snort-bridge run").acquire(wait=0)
        assert str(small_state.path) in str(refused.value)
    finally:
        first.release()
    StateDirLock(str(small_state.path), "snort-bridge run").acquire(wait=0).release()


def test_a_start_on_a_full_disk_starts_and_blocks(lab, services, small_state, tmp_path):
    """Under systemd's Restart= a bridge that stopped at a full disk would start and stop in a loop."""
    lab.add("r1")
    alerts = tmp_path / "alert_fast.txt"
    alerts.touch()
    port = free_port(socket.SOCK_STREAM)
    config = write_config(lab, tmp_path, alerts, port)
    first = Service(config, tmp_path / "run1.log").start()  # a ledger and positions exist
    services.append(first)
    append(alerts, fast_line("203.0.113.40"))
    assert wait_until(lambda: "203.0.113.40" in lab.entries("r1"), DEADLINE)
    assert first.stop() == 0

    small_state.fill()
    second = Service(config, tmp_path / "run2.log").start()
    services.append(second)
    append(alerts, fast_line("203.0.113.41"))
    assert wait_until(lambda: "203.0.113.41" in lab.entries("r1"), DEADLINE), second.text()
    assert wait_until(lambda: health(port)[0] == 503, DEADLINE), health(port)
    assert second.process.poll() is None and "Traceback" not in second.text()
    small_state.free()
    assert wait_until(lambda: health(port)[0] == 200, 90), health(port)
    assert second.stop() == 0


def test_memory_held_meanwhile_is_bounded_and_what_is_beyond_is_said(lab, small_state, caplog, monkeypatch):
    import responder.degraded

    monkeypatch.setattr(responder.degraded, "MAX_HELD_BLOCKS", 2)
    lab.add("r1")
    responder = lab.responder()
    small_state.fill()
    with responder.batch():
        for last in range(50, 54):
            responder.block(request(f"203.0.113.{last}"))
    assert responder.ledger.degraded is not None
    held = {str(r.address) for r in responder.ledger.blocks(time.time())}
    assert held == {"203.0.113.50", "203.0.113.51"}
    assert "2 blocks are held in memory while the ledger cannot be written, the most it holds" in caplog.text
    small_state.free()
    assert wait_until(responder.keep_ledger, 30)
    assert "2 block(s) were not made, the memory for them being full" in caplog.text
