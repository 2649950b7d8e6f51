"""`snort-bridge run` end to end: a real process following a real file, simulated routers over real SSH.

Each test starts the service as a subprocess (console script), writes alert lines into the file it
follows or sends RouterOS firewall-log datagrams to its UDP listener, and reads the routers'
address lists and commands logs. Everything on loopback, bounded by generous deadlines.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import console_script, free_port
from responder_rig import Lab, wait_until

from responder.ledger import Ledger

DEADLINE = 20.0


def fast_line(src: str, dst: str = "10.1.2.3", sid: int = 1000001, priority: int = 1) -> str:
    return (
        f'11/14-22:13:20.123456 [**] [1:{sid}:1] "TEST attack" [**] [Classification: Attempted '
        f"Administrator Privilege Gain] [Priority: {priority}] {{TCP}} {src}:4444 -> {dst}:80\n"
    )


class Service:
    """One `snort-bridge run` process, its stderr in a file."""

    def __init__(self, config: str, log: Path):
        self.config = config
        self.log = log
        self.process = None

    def start(self) -> Service:
        self.handle = open(self.log, "ab")
        self.process = subprocess.Popen(
            [*console_script("snort-bridge"), "run", "--config", self.config],
            stderr=self.handle,
            stdout=subprocess.DEVNULL,
        )
        assert wait_until(lambda: "started:" in self.text() or self.process.poll() is not None, DEADLINE), self.text()
        assert self.process.poll() is None, self.text()
        return self

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def signal(self, number: int) -> None:
        self.process.send_signal(number)

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(DEADLINE)
        finally:
            self.handle.close()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def write_service_config(lab: Lab, *, alerts=None, protected=("10.0.0.0/8",), scan: str = "", routers=None) -> str:
    tmp = lab.tmp_path
    lines = [
        f'state_dir = "{tmp / "state"}"',
        "",
        "[policy]",
        'block_for = "10m"',
        "protected = [" + ", ".join(f'"{p}"' for p in protected) + "]",
        "",
    ]
    if alerts is not None:
        lines += ["[[alerts]]", f'path = "{alerts}"', 'format = "fast"', ""]
    if scan:
        lines += ["[scan]", scan, ""]
    tables = routers if routers is not None else [lab.router_table(name, port) for name, port in lab.ports.items()]
    for table in tables:
        lines.append("[[routers]]")
        for key, value in table.items():
            lines.append(f"{key} = {value}" if isinstance(value, int) else f'{key} = "{value}"')
        lines.append("")
    path = tmp / "config.toml"
    path.write_text("\n".join(lines))
    os.chmod(path, 0o600)
    return str(path)


def listed_everywhere(lab: Lab, address: str) -> bool:
    return all(address in lab.entries(name) for name in lab.sims)


def append(path: Path, *lines: str) -> None:
    with open(path, "a") as handle:
        handle.write("".join(lines))


def test_restart_in_the_middle_of_an_attack_loses_and_repeats_nothing(lab, services, tmp_path):
    lab.add("r1")
    lab.add("r2")
    alerts = tmp_path / "alert_fast.txt"
    config = write_service_config(lab, alerts=alerts)
    first = Service(config, tmp_path / "run1.log").start()
    services.append(first)
    append(alerts, fast_line("203.0.113.1"), fast_line("203.0.113.2"), fast_line("10.9.9.9"))
    assert wait_until(lambda: listed_everywhere(lab, "203.0.113.1") and listed_everywhere(lab, "203.0.113.2"), DEADLINE)
    assert first.stop() == 0
    assert "stopped: 3 lines, 3 alerts, 2 blocks" in first.text()

    # while it is down the attack goes on: a repeat of a blocked attacker and two new ones
    append(alerts, fast_line("203.0.113.2"), fast_line("203.0.113.3"))
    second = Service(config, tmp_path / "run2.log").start()
    services.append(second)
    assert "2 block(s) in force" in second.text()
    append(alerts, fast_line("203.0.113.4"))
    assert wait_until(lambda: listed_everywhere(lab, "203.0.113.3") and listed_everywhere(lab, "203.0.113.4"), DEADLINE)
    assert second.stop() == 0
    # the second run read exactly the three lines written after the first stopped
    assert "stopped: 3 lines, 3 alerts, 2 blocks" in second.text()
    for name in lab.sims:
        adds = lab.adds(name)
        for address in ("203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"):
            assert sum(f"address={address} " in command for command in adds) == 1, (name, address, adds)
        assert not any("10.9.9.9" in command for command in adds)  # protected
        assert len(adds) == 4


def attack_with_one_router_down(lab, services, tmp_path, attacker: str):
    """Routers "up" and "down" (not started); the service blocks ``attacker`` on "up". Returns (service, config, port)."""
    lab.add("up")
    down_port = free_port(socket.SOCK_STREAM)
    lab.add("down", start=False, port=down_port)
    alerts = tmp_path / "alert_fast.txt"
    config = write_service_config(lab, alerts=alerts)
    service = Service(config, tmp_path / "run.log").start()
    services.append(service)
    append(alerts, fast_line(attacker))
    assert wait_until(lambda: attacker in lab.entries("up"), DEADLINE)
    return service, config, down_port


def test_a_router_down_during_the_attack_is_caught_up_when_it_returns(lab, services, tmp_path):
    service, _, down_port = attack_with_one_router_down(lab, services, tmp_path, "198.51.100.7")
    assert "198.51.100.7" not in lab.entries("down")
    lab.sims["down"].start("127.0.0.1", down_port)
    assert wait_until(lambda: "198.51.100.7" in lab.entries("down"), 90.0), service.text()
    entry = lab.entries("down")["198.51.100.7"]
    assert entry.timeout is not None and entry.timeout <= 600  # the remaining time, not a fresh 10 minutes
    assert service.stop() == 0


@pytest.mark.parametrize("form", ["default", "syslog"])
def test_firewall_log_datagrams_from_a_router_lead_to_a_block(lab, services, tmp_path, form):
    lab.add("r1")
    port = free_port()
    config = write_service_config(lab, scan=f'ports = 6\nwindow = "30s"\nsyslog = "127.0.0.1:{port}"')
    service = Service(config, tmp_path / "run.log").start()
    services.append(service)
    scanner, target = "198.51.100.66", "192.0.2.80"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(b"system,info user ips logged in via ssh", ("127.0.0.1", port))  # another topic: ignored
        for index, dport in enumerate((21, 22, 23, 25, 80, 110, 143)):
            message = (
                f"SCAN input: in:ether1 out:(unknown 0), connection-state:new src-mac aa:bb:cc:dd:ee:ff, "
                f"proto TCP (SYN), {scanner}:{40000 + index}->{target}:{dport}, len 60"
            )
            if form == "default":
                datagram = f"firewall,info {message}"
            else:
                datagram = f"<30>Sep 25 01:37:{18 + index:02d} MikroTik {message}"
            sender.sendto(datagram.encode(), ("127.0.0.1", port))
    assert wait_until(lambda: scanner in lab.entries("r1"), DEADLINE), service.text()
    assert target not in lab.entries("r1")
    assert "scan detected" in service.text() and f"BLOCK {scanner}" in service.text()
    assert service.stop() == 0


def test_sighup_reloads_a_changed_protected_list_and_refuses_a_bad_one(lab, services, tmp_path):
    lab.add("r1")
    alerts = tmp_path / "alert_fast.txt"
    config = write_service_config(lab, alerts=alerts, protected=("10.0.0.0/8",))
    service = Service(config, tmp_path / "run.log").start()
    services.append(service)
    append(alerts, fast_line("198.51.100.1"))
    assert wait_until(lambda: "198.51.100.1" in lab.entries("r1"), DEADLINE)

    write_service_config(lab, alerts=alerts, protected=("10.0.0.0/8", "198.51.100.0/24"))
    service.signal(signal.SIGHUP)
    assert wait_until(lambda: "reloaded" in service.text(), DEADLINE), service.text()
    append(alerts, fast_line("198.51.100.2"), fast_line("203.0.113.20"))
    assert wait_until(lambda: "203.0.113.20" in lab.entries("r1"), DEADLINE)
    assert "198.51.100.2" not in lab.entries("r1")
    # the log is flushed after the pass's positions are saved; the router may have the entry first
    assert wait_until(
        lambda: "198.51.100.2 is protected (policy.protected 198.51.100.0/24)" in service.text(), DEADLINE
    )

    Path(config).write_text(Path(config).read_text().replace('block_for = "10m"', 'block_for = "ten minutes"'))
    service.signal(signal.SIGHUP)
    assert wait_until(lambda: "reload refused" in service.text(), DEADLINE), service.text()
    assert "policy.block_for" in service.text()
    append(alerts, fast_line("203.0.113.21"))  # still working, with the configuration it had
    assert wait_until(lambda: "203.0.113.21" in lab.entries("r1"), DEADLINE)
    assert service.process.poll() is None
    assert service.stop() == 0
    # state survived the reloads: the first block was never sent twice
    assert sum("address=198.51.100.1 " in c for c in lab.adds("r1")) == 1


def test_sigterm_with_pending_blocks_for_a_down_router_keeps_them(lab, services, tmp_path):
    service, config, down_port = attack_with_one_router_down(lab, services, tmp_path, "203.0.113.50")
    assert service.stop() == 0
    assert "1 block(s) still pending, kept in the ledger" in service.text()
    ledger = Ledger.in_state_dir(str(tmp_path / "state"))
    try:
        state = ledger.router_state("down", ipaddress.ip_address("203.0.113.50"))
        assert state is not None and state.status == "pending"
    finally:
        ledger.close()
    listing = subprocess.run(
        [*console_script("snort-bridge"), "list", "--json", "--config", config],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert "203.0.113.50" in listing.stdout
    # the next start delivers it once the router is back
    lab.sims["down"].start("127.0.0.1", down_port)
    again = Service(config, tmp_path / "run2.log").start()
    services.append(again)
    assert wait_until(lambda: "203.0.113.50" in lab.entries("down"), 60.0), again.text()
    assert again.stop() == 0
    assert len(lab.adds("up")) == 1


@pytest.mark.parametrize(
    "body, problems",
    [
        pytest.param(
            '[[alerts]]\npath = "a.txt"\n[[routers]]\nname = "r1"\n[scan]\nports = 1\n',
            ["routers[0].host: missing", "scan.ports: 1 is out of range"],
            id="bad-keys-named",
        ),
        pytest.param("", ["alerts: nothing to follow"], id="nothing-to-follow"),
    ],
)
def test_a_bad_configuration_is_refused_at_start(tmp_path, body, problems):
    config = tmp_path / "config.toml"
    config.write_text(f'state_dir = "{tmp_path}"\n' + body)
    result = subprocess.run(
        [*console_script("snort-bridge"), "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert result.returncode == 2
    for problem in problems:
        assert problem in result.stderr


def test_sd_notify_ready_watchdog_status_and_stopping(lab, services, tmp_path):
    lab.add("r1")
    alerts = tmp_path / "alert_fast.txt"
    config = write_service_config(lab, alerts=alerts)
    sock_path = str(tmp_path / "notify.sock")
    received = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(sock_path)
        sock.settimeout(0.2)
        env = dict(os.environ, NOTIFY_SOCKET=sock_path, WATCHDOG_USEC="400000")
        log = open(tmp_path / "run.log", "wb")
        process = subprocess.Popen([*console_script("snort-bridge"), "run", "--config", config], stderr=log, env=env)
        try:

            def collect(until) -> bool:
                deadline = time.monotonic() + DEADLINE
                while time.monotonic() < deadline:
                    try:
                        received.append(sock.recv(4096).decode())
                    except TimeoutError:
                        pass
                    if until():
                        return True
                return False

            assert collect(lambda: any("READY=1" in m for m in received))
            assert collect(lambda: sum("WATCHDOG=1" in m for m in received) >= 2)
            process.send_signal(signal.SIGTERM)
            assert collect(lambda: any("STOPPING=1" in m for m in received))
            assert process.wait(DEADLINE) == 0
        finally:
            if process.poll() is None:
                process.kill()
            log.close()
    ready = next(m for m in received if "READY=1" in m)
    assert "STATUS=0 lines, 0 alerts, 0 blocks; 1 router(s)" in ready


def test_unparsable_lines_are_reported_with_file_and_offset_not_fatal(lab, services, tmp_path):
    lab.add("r1")
    alerts = tmp_path / "alert_fast.txt"
    config = write_service_config(lab, alerts=alerts)
    service = Service(config, tmp_path / "run.log").start()
    services.append(service)
    garbage = "this is not an alert; /system reset-configuration\n"
    append(alerts, garbage * 50, fast_line("203.0.113.77"))
    assert wait_until(lambda: "203.0.113.77" in lab.entries("r1"), DEADLINE)
    text = service.text()
    assert f"unparsable line at {alerts} line 1 (byte 0)" in text
    assert text.count("unparsable line at") <= 2  # rate-limited, not one warning per line
    assert service.stop() == 0
    assert "50 unparsable" in service.text()
    positions = json.loads((tmp_path / "state" / "follow-positions.json").read_text())
    assert str(alerts) in json.dumps(positions)
