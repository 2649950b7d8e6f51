"""Several sensors, one bridge, across real hosts: network namespaces joined by veth links.

    sensor1 (10.151.1.1)                       central (10.151.1.2, 10.151.2.2)
      tzsp-replay -> tzspd --exec "snort-bridge scan --alerts alert_json.txt"
      rsyslogd: imfile -> omrelp ==== veth ===> rsyslogd: imrelp -> sensors/sensor1/alert_json.txt
    sensor2 (10.151.2.1)                          snort-bridge run (one [[alerts]] per sensor file)
      tzspd --exec snort (Snort 3, where installed; else as sensor1)
      rsyslogd                ======= veth ===>     -> SSH -> routers r1, r2 (simulators on this host)

Real rsyslog daemons (Debian's rsyslog + rsyslog-relp), one per host with its own configuration
(the shipped snort/rsyslog files, only the values marked SET replaced), work directory and pid
file; a real tzspd on each sensor, with the built-in detector on sensor1 and Snort 3 with the
shipped configuration on sensor2 (the built-in detector where no Snort 3 is installed); port scans
with XMAS probes replayed into each sensor as TZSP. Faults: a sensor's link down for 30 s while its attacks go on, the central rsyslog
stopped and started, a sensor's rsyslog restarted. Each test checks that every attacker ends up
blocked on every router exactly once, and prints the time from attack to block.

Needs root for the namespaces; skips with one line where they cannot be made.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, console_script, require_tool, wait_for
from netns_rig import Daemon, NamespaceUnavailable, Network, in_namespace, probe_namespaces
from responder_rig import Lab
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import PcapWriter

pytestmark = [pytest.mark.netns, pytest.mark.slow]

RSYSLOG = ROOT / "snort" / "rsyslog"
SENSORS = ("sensor1", "sensor2")
TARGET = "192.0.2.80"  # the scanned host: protected, never blocked
TZSP_PORT = 37008
RELP_PORT = 2514
ROUTER_PORTS = {"r1": 2201, "r2": 2202}
HTTP = "127.0.0.1:9470"  # the central bridge's /metrics, on the central host's loopback
BLOCK_DEADLINE = 30.0  # seconds from "attack sent" (or "fault over") to "on every router"
ATTACK_LOG: list = []  # (what, attacker, seconds from attack to block on every router)


def marked(text: str, old: str, new: str) -> str:
    """Replace a value the shipped file marks for the user to set; the file must still have it."""
    assert old in text, f"the shipped rsyslog configuration no longer contains {old!r}"
    return text.replace(old, new)


def sysctl_settings(path: Path) -> dict:
    settings = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "=" in line:
            key, value = (part.strip() for part in line.split("=", 1))
            settings[key] = value
    return settings


def snort3_consumer(home: Path):
    """(tzspd --exec command, its alert_json file) for Snort 3 with the shipped configuration, or None
    when no Snort 3 is on PATH (the sensor then runs the built-in detector)."""
    snort = shutil.which("snort3") or shutil.which("snort")
    if snort is None:
        return None
    version = subprocess.run([snort, "-V"], capture_output=True, text=True, timeout=30)
    if not re.search(r"Version 3\.", version.stdout + version.stderr):
        return None
    # the shipped file includes the stock snort.lua of a source build in /usr/local; use this build's
    stock = [
        Path(os.path.realpath(snort)).parent.parent / "etc" / "snort" / "snort.lua",
        Path("/usr/local/etc/snort/snort.lua"),
    ]
    found = next((path for path in stock if path.exists()), None)
    if found is None:
        return None
    conf_dir = home / "snort-conf"
    conf_dir.mkdir(parents=True)
    lua = (ROOT / "snort" / "snort3" / "tzsp-ips.lua").read_text()
    (conf_dir / "tzsp-ips.lua").write_text(
        lua.replace("include '/usr/local/etc/snort/snort.lua'", f"include '{found}'")
    )
    shutil.copy(ROOT / "snort" / "snort3" / "local.rules", conf_dir / "local.rules")
    checked = subprocess.run(
        [snort, "-c", str(conf_dir / "tzsp-ips.lua"), "-T", "-q"], capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 0, (
        f"Snort 3 found, but the shipped configuration does not load:\n{checked.stderr[-2000:]}"
    )
    logs = home / "snort"
    logs.mkdir()
    return (
        f"{snort} -c {conf_dir / 'tzsp-ips.lua'} -r /dev/stdin --daq-batch-size 1 -l {logs} -q",
        logs / "alert_json.txt",
    )


class Sensor:
    def __init__(self, name: str, ns: str, ifname: str, home: Path, central_address: str, use_snort: bool = False):
        self.name = name
        self.ns = ns
        self.ifname = ifname
        self.home = home
        home.mkdir(parents=True)
        snort = snort3_consumer(home) if use_snort else None
        self.detector = "Snort 3" if snort else "built-in detector"
        self.alerts = snort[1] if snort else home / "alert_json.txt"
        work = home / "rsyslog"
        work.mkdir(parents=True)
        config = (RSYSLOG / "40-tzsp-ips-sensor.conf").read_text()
        config = marked(config, 'file="/var/log/snort/alert_json.txt"', f'file="{self.alerts}"')
        config = marked(config, 'target="central.example.net"', f'target="{central_address}"')
        (work / "40-tzsp-ips-sensor.conf").write_text(config)
        # the host's main rsyslog.conf: its own work directory, and the sensor's name (the namespaces
        # share one hostname; real sensors have their own and need no localHostname)
        (work / "rsyslog.conf").write_text(
            f'global(workDirectory="{work}" localHostname="{name}")\n'
            f'include(file="{work / "40-tzsp-ips-sensor.conf"}")\n'
        )
        self.rsyslog = Daemon(
            ns,
            ["rsyslogd", "-n", "-i", str(work / "rsyslogd.pid"), "-f", str(work / "rsyslog.conf")],
            home / "rsyslogd.log",
        )
        env = {k: v for k, v in os.environ.items() if k != "TZSP_IPS_CONFIG"}
        detector = (
            snort[0] if snort else f"{sys.executable} -m bridge.cli scan --pcap - --dry-run --alerts {self.alerts}"
        )
        self.tzspd = Daemon(
            ns,
            [
                *console_script("tzspd"),
                "--listen",
                "127.0.0.1",
                "--port",
                str(TZSP_PORT),
                "--allow",
                "127.0.0.1/32",
                "--exec",
                detector,
            ],
            home / "tzspd.log",
            env=env,
        )

    def start(self) -> None:
        self.tzspd.start()
        self.rsyslog.start()
        assert wait_for(lambda: "listening" in self.tzspd.text(), 20), self.tzspd.text()
        if self.detector != "Snort 3":  # Snort 3 makes its file with the first alert
            assert wait_for(self.alerts.exists, 20), self.tzspd.text()  # the detector runs and opened its file

    def attack(self, capture: Path) -> float:
        """Replay a port scan into this sensor's tzspd, as its router would mirror it; when it was sent."""
        sent = time.time()
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                self.ns,
                *console_script("tzsp-replay"),
                str(capture),
                "--to",
                f"127.0.0.1:{TZSP_PORT}",
                "-q",
            ],
            check=True,
            timeout=30,
        )
        return sent

    def logs(self) -> str:
        return f"--- {self.name} tzspd:\n{self.tzspd.text()[-3000:]}\n--- {self.name} rsyslogd:\n{self.rsyslog.text()[-3000:]}"


def same_lines(central: Path, sensor: Path) -> bool:
    """Every line the sensor wrote is in the central file, in order, and nothing else. RELP delivers at
    least once (a line whose acknowledgement was lost is sent again), so a line may be there twice."""
    if not central.exists():
        return False
    return list(dict.fromkeys(central.read_text().splitlines())) == list(dict.fromkeys(sensor.read_text().splitlines()))


class Rig:
    """Two sensors, a central host with rsyslog, snort-bridge run and two simulated routers."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.net = Network(f"t15n{os.getpid() % 100000}")
        self.lab = Lab(tmp)
        self.sensors: dict = {}
        self.daemons: list = []
        self.captures: dict = {}

    def build(self) -> Rig:
        net, tmp = self.net, self.tmp
        self.central = net.host("central")
        sysctl = sysctl_settings(RSYSLOG / "60-tzsp-ips-sensor.sysctl.conf")
        for index, name in enumerate(SENSORS, start=1):
            ns = net.host(name)
            net.link(ns, "up0", f"10.151.{index}.1/24", self.central, f"s{index}", f"10.151.{index}.2/24")
            for key, value in sysctl.items():
                net.sysctl(ns, key, value)
            # sensor2 runs Snort 3 with the shipped configuration where one is installed
            self.sensors[name] = Sensor(name, ns, "up0", tmp / name, f"10.151.{index}.2", use_snort=name == "sensor2")

        # the central host: rsyslog writes one file per sensor under sensors/
        self.sensor_dir = tmp / "central" / "sensors"
        work = tmp / "central" / "rsyslog"
        work.mkdir(parents=True)
        config = (RSYSLOG / "40-tzsp-ips-central.conf").read_text()
        config = marked(config, "/var/log/tzsp-ips/sensors/", f"{self.sensor_dir}/")
        config = marked(config, f'port="{RELP_PORT}"', f'port="{RELP_PORT}"')
        (work / "40-tzsp-ips-central.conf").write_text(config)
        (work / "rsyslog.conf").write_text(
            f'global(workDirectory="{work}")\ninclude(file="{work / "40-tzsp-ips-central.conf"}")\n'
        )
        for path in (work / "rsyslog.conf", tmp / "sensor1" / "rsyslog" / "rsyslog.conf"):
            check = subprocess.run(["rsyslogd", "-N1", "-f", str(path)], capture_output=True, text=True, timeout=30)
            assert check.returncode == 0, f"rsyslogd -N1 -f {path}:\n{check.stdout}{check.stderr}"
        self.central_rsyslog = Daemon(
            self.central,
            ["rsyslogd", "-n", "-i", str(work / "rsyslogd.pid"), "-f", str(work / "rsyslog.conf")],
            tmp / "central" / "rsyslogd.log",
        )

        # the routers: simulators whose SSH listeners live on the central host
        for name, port in ROUTER_PORTS.items():
            sim = self.lab.add(name, start=False, port=port)
            in_namespace(self.central, lambda sim=sim, port=port: sim.start("127.0.0.1", port))
        self.config = self._bridge_config()
        self.bridge = Daemon(
            self.central,
            [*console_script("snort-bridge"), "run", "--config", self.config],
            tmp / "central" / "bridge.log",
        )
        self.daemons = [self.central_rsyslog, self.bridge] + [
            d for s in self.sensors.values() for d in (s.rsyslog, s.tzspd)
        ]

        # the bridge starts before any sensor file exists: they appear with the first alert
        self.bridge.start()
        assert wait_for(lambda: "started:" in self.bridge.text() or not self.bridge.running(), 30), self.bridge.text()
        assert self.bridge.running(), self.bridge.text()
        self.central_rsyslog.start()
        for sensor in self.sensors.values():
            sensor.start()
        for name, sensor in self.sensors.items():
            if sensor.detector == "Snort 3":  # a first attack, so the timings below do not include Snort's start
                started = self.attack(name, "198.51.100.2")
                self.await_block(f"{name}: first attack ({sensor.detector} starting)", "198.51.100.2", started, 120)
        return self

    def _bridge_config(self) -> str:
        lines = [
            f'state_dir = "{self.tmp / "central" / "state"}"',
            "",
            "[policy]",
            'block_for = "10m"',
            'protected = ["192.0.2.0/24"]',
            "",
        ]
        for name in SENSORS:  # one [[alerts]] per sensor file (a glob would cover them all)
            lines += ["[[alerts]]", f'path = "{self.sensor_dir / name / "alert_json.txt"}"', 'format = "json"', ""]
        lines += ["[http]", f'listen = "{HTTP}"', ""]
        for name, port in ROUTER_PORTS.items():
            lines.append("[[routers]]")
            for key, value in self.lab.router_table(name, port).items():
                lines.append(f"{key} = {value}" if isinstance(value, int) else f'{key} = "{value}"')
            lines.append("")
        path = self.tmp / "central" / "config.toml"
        path.write_text("\n".join(lines))
        os.chmod(path, 0o600)
        return str(path)

    def capture(self, attacker: str) -> Path:
        """A SYN scan of 20 ports from ``attacker`` (the built-in detector reports 15 in 10 s), then
        8 XMAS probes (Snort's local rule 1000141, priority 1, after 3 of them)."""
        if attacker not in self.captures:
            path = self.tmp / f"scan-{attacker}.pcap"
            ether = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
            writer = PcapWriter(str(path), sync=True)
            writer.write(
                [
                    ether / IP(src=attacker, dst=TARGET) / TCP(sport=40000 + port, dport=port, flags="S")
                    for port in range(20, 40)
                ]
            )
            writer.write(
                [
                    ether / IP(src=attacker, dst=TARGET) / TCP(sport=41000 + port, dport=port, flags="FPU")
                    for port in range(20, 28)
                ]
            )
            writer.close()
            self.captures[attacker] = path
        return self.captures[attacker]

    def attack(self, sensor: str, attacker: str) -> float:
        return self.sensors[sensor].attack(self.capture(attacker))

    def blocked_everywhere(self, attacker: str) -> bool:
        return all(attacker in self.lab.entries(name) for name in ROUTER_PORTS)

    def await_block(self, what: str, attacker: str, since: float, timeout: float = BLOCK_DEADLINE) -> float:
        assert wait_for(lambda: self.blocked_everywhere(attacker), timeout, 0.02), (
            f"{attacker} ({what}) not blocked on every router within {timeout:g}s\n{self.logs()}"
        )
        took = time.time() - since
        ATTACK_LOG.append((what, attacker, took))
        return took

    def assert_each_blocked_once(self) -> None:
        attackers = {attacker for _, attacker, _ in ATTACK_LOG if attacker}
        for name in ROUTER_PORTS:
            adds = self.lab.adds(name)
            for attacker in attackers:
                count = sum(f"address={attacker} " in command for command in adds)
                assert count == 1, f"{attacker} added {count} times on {name}: {adds}"
            assert not any(TARGET in command for command in adds), adds
            assert set(self.lab.entries(name)) == attackers

    def listing(self) -> dict:
        result = subprocess.run(
            [*console_script("snort-bridge"), "list", "--json", "--config", self.config],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return {block["address"]: block for block in json.loads(result.stdout)["blocks"]}

    def metrics(self) -> str:
        """The central bridge's /metrics, fetched from the central host (a thread in its namespace)."""

        def fetch() -> str:
            with urllib.request.urlopen(f"http://{HTTP}/metrics", timeout=10) as response:
                return response.read().decode()

        return in_namespace(self.central, fetch)

    def logs(self) -> str:
        parts = [
            f"--- central bridge:\n{self.bridge.text()[-4000:]}",
            f"--- central rsyslogd:\n{self.central_rsyslog.text()[-2000:]}",
        ]
        parts += [sensor.logs() for sensor in self.sensors.values()]
        return "\n".join(parts)

    def close(self) -> None:
        for daemon in reversed(self.daemons):
            daemon.stop(10)
        self.lab.close()
        self.net.close()


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    for tool in ("ip", "rsyslogd"):
        require_tool(tool)
    try:
        probe_namespaces(f"t15probe{os.getpid() % 100000}")
    except NamespaceUnavailable as exc:
        pytest.skip(f"cross-host tests: {exc}")
    rig = Rig(tmp_path_factory.mktemp("hosts"))
    try:
        rig.build()
        yield rig
    finally:
        rig.close()
        if ATTACK_LOG:
            print("\ndetectors: " + ", ".join(f"{name} {s.detector}" for name, s in rig.sensors.items()))
            print("time from attack to block on both routers (sensor -> rsyslog/RELP -> central bridge -> SSH):")
            for what, attacker, took in ATTACK_LOG:
                print(f"  {took:6.2f} s  {attacker:15}  {what}")


def test_attacks_seen_by_two_sensors_are_blocked_on_every_router_once(rig):
    started = rig.attack("sensor1", "198.51.100.11")
    started2 = rig.attack("sensor2", "198.51.100.12")
    rig.await_block("sensor1", "198.51.100.11", started)
    rig.await_block("sensor2", "198.51.100.12", started2)
    # one attacker scanning behind both sensors: two alerts, one block
    both = rig.attack("sensor1", "198.51.100.13")
    rig.attack("sensor2", "198.51.100.13")
    rig.await_block("both sensors", "198.51.100.13", both)
    assert wait_for(
        lambda: all("198.51.100.13" in (rig.sensor_dir / s / "alert_json.txt").read_text() for s in SENSORS), 10
    ), rig.logs()
    rig.assert_each_blocked_once()

    # the central files are what the sensors' detectors wrote, line for line
    for name in SENSORS:
        assert wait_for(
            lambda name=name: same_lines(rig.sensor_dir / name / "alert_json.txt", rig.sensors[name].alerts), 10
        )
    # every block names the file it came from, hence the sensor
    listing = rig.listing()
    assert "/sensors/sensor1/alert_json.txt:" in listing["198.51.100.11"]["source"]
    assert "/sensors/sensor2/alert_json.txt:" in listing["198.51.100.12"]["source"]
    assert re.search(r"BLOCK 198\.51\.100\.11 .*\[\S*/sensors/sensor1/alert_json\.txt:1\]", rig.bridge.text())
    # and the metrics count each sensor's alerts apart
    metrics = rig.metrics()
    for name in SENSORS:
        counted = re.search(rf'tzsp_ips_alerts_total\{{source="[^"]*/sensors/{name}/alert_json\.txt"\}} (\S+)', metrics)
        assert counted and float(counted.group(1)) >= 1, metrics[-3000:]


def test_a_sensor_link_down_for_30s_loses_nothing(rig):
    sensor = rig.sensors["sensor1"]
    rig.net.set_link(sensor.ns, sensor.ifname, up=False)
    down_at = time.monotonic()
    during = [("sensor1, link down", "198.51.100.21", rig.attack("sensor1", "198.51.100.21"))]
    # the other sensor is unaffected meanwhile
    other = rig.attack("sensor2", "198.51.100.22")
    rig.await_block("sensor2 while sensor1 is cut off", "198.51.100.22", other)
    # the last alert of the outage comes before TCP gives up on the dead connection (~13 s): only
    # the heartbeat then finds the session broken, so the alerts do not wait for a next one
    time.sleep(max(0.0, 5 - (time.monotonic() - down_at)))
    during.append(("sensor1, link down", "198.51.100.23", rig.attack("sensor1", "198.51.100.23")))
    time.sleep(max(0.0, 30 - (time.monotonic() - down_at)))
    for _, attacker, _ in during:
        assert not rig.blocked_everywhere(attacker), "blocked while its sensor was cut off: the test proves nothing"
    rig.net.set_link(sensor.ns, sensor.ifname, up=True)
    back = time.time()
    for what, attacker, started in during:
        rig.await_block(what, attacker, started)
    ATTACK_LOG.append(("  ... of which after the link came back", "", time.time() - back))
    rig.assert_each_blocked_once()


def test_central_rsyslog_stopped_and_started_loses_nothing(rig):
    assert rig.central_rsyslog.stop() == 0, rig.central_rsyslog.text()
    pending = [
        ("central rsyslog down", "198.51.100.31", rig.attack("sensor1", "198.51.100.31")),
        ("central rsyslog down", "198.51.100.32", rig.attack("sensor2", "198.51.100.32")),
    ]
    time.sleep(3)
    for _, attacker, _ in pending:
        assert not rig.blocked_everywhere(attacker), "blocked without the central rsyslog: the test proves nothing"
    rig.central_rsyslog.start()
    for what, attacker, started in pending:
        rig.await_block(what, attacker, started)
    rig.assert_each_blocked_once()


def test_a_sensor_rsyslog_restarted_loses_nothing(rig):
    sensor = rig.sensors["sensor2"]
    before = len(sensor.alerts.read_text().splitlines())
    assert before > 0
    assert sensor.rsyslog.stop() == 0, sensor.rsyslog.text()
    started = rig.attack("sensor2", "198.51.100.41")
    assert wait_for(lambda: "198.51.100.41" in sensor.alerts.read_text(), 20), sensor.logs()
    time.sleep(1)
    assert not rig.blocked_everywhere("198.51.100.41")
    sensor.rsyslog.start()
    rig.await_block("sensor2 rsyslog restarted", "198.51.100.41", started)
    # and after the restart it goes on as before, without sending the old lines again
    again = rig.attack("sensor2", "198.51.100.42")
    rig.await_block("sensor2 after its rsyslog restart", "198.51.100.42", again)
    central = (rig.sensor_dir / "sensor2" / "alert_json.txt").read_text().splitlines()
    # imfile went on where it stopped: the lines before the restart were not read and sent again
    assert len(central) - len(set(central)) < before, "the sensor's file was sent again from its start"
    rig.assert_each_blocked_once()
    # after every fault, each central file holds exactly what its sensor wrote (and no heartbeat)
    for name in SENSORS:
        assert wait_for(
            lambda name=name: same_lines(rig.sensor_dir / name / "alert_json.txt", rig.sensors[name].alerts), 10
        ), name
