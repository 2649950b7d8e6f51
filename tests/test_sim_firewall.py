"""routeros-sim's firewall: connection tracking, filter rules, the log lines RouterOS writes, and
remote logging -- and the real scans turned into those log lines by the rules `snort-bridge
provision` adds, received by UDP syslog and detected with the right scanner and scan type."""

from __future__ import annotations

import contextlib
import ipaddress
import re
import subprocess
import time

import pytest
from conftest import DATA, console_script, free_port
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from test_scan_captures import BENIGN, SCANS

from bridge.scan.detector import ScanDetector
from bridge.scan.probes import probe_from_firewall_event
from bridge.scan.routeros_log import parse_firewall_line
from bridge.scan.syslog_listener import SyslogListener
from responder.provision import ProvisionPlan, exec_lines
from responder.sim import SimRouter
from responder.sim.router.firewall import Conntrack, FilterRule, Limit, decode_frame, log_message
from responder.sim.router.users import ALL_POLICIES
from tzsp.receiver import AllowList

CAPTURES = DATA / "captures"
SCANNER, ROUTER = "203.0.113.50", "198.51.100.1"


def frame(flags="S", sport=40000, dport=80, src=SCANNER, dst=ROUTER, proto="tcp"):
    ether = Ether(src="00:0c:29:aa:bb:cc", dst="02:00:00:00:00:01")
    layer = {
        "tcp": lambda: TCP(sport=sport, dport=dport, flags=flags),
        "udp": lambda: UDP(sport=sport, dport=dport),
        "icmp": lambda: ICMP(type=flags),
    }[proto]()
    return bytes(ether / IP(src=src, dst=dst) / layer)


def state(conntrack, **kwargs):
    return conntrack.state_of(decode_frame(frame(**kwargs)))


def test_connection_tracking_calls_stealth_probes_invalid_as_linux_does():
    track = Conntrack()
    for flags in ("F", "", "FPU", "SF"):  # FIN, NULL, XMAS, SYN+FIN: impossible in a connection
        assert state(track, flags=flags, dport=1) == "invalid"
    assert state(track, flags="R", dport=2) == "invalid"  # a reset of nothing
    assert state(track, flags="SA", dport=3) == "invalid"  # an answer to nothing
    assert state(track, flags="S") == "new"
    assert state(track, flags="S") == "new"  # a retransmitted SYN: still unanswered
    assert state(track, flags="SA", src=ROUTER, dst=SCANNER, sport=80, dport=40000) == "established"
    assert state(track, flags="A") == "established"
    assert state(track, flags="F") == "invalid"  # a bare FIN is invalid even inside a connection
    assert state(track, flags="A", dport=8080) == "new"  # loose tracking picks up a mid-stream ACK
    assert state(track, proto="udp", dport=53) == "new"
    assert state(track, proto="udp", src=ROUTER, dst=SCANNER, sport=53, dport=40000) == "established"
    assert state(track, proto="icmp", flags=8) == "new"
    assert state(track, proto="icmp", flags=0, src=ROUTER, dst=SCANNER) == "established"
    assert state(track, proto="icmp", flags=3, src=ROUTER, dst=SCANNER) == "related"


def test_log_messages_read_as_routeros_writes_them_and_parse_back():
    rule = FilterRule(1, "input", action="log", log_prefix="tzsp-ips-stealth")
    xmas = decode_frame(frame(flags="FPU", sport=35503, dport=80))
    text = log_message(rule, xmas, "invalid", "v7", "ether1")
    assert text == (
        "tzsp-ips-stealth input: in:ether1 out:(unknown 0), connection-state:invalid "
        f"src-mac 00:0c:29:aa:bb:cc, proto TCP (FIN,PSH,URG), {SCANNER}:35503->{ROUTER}:80, len 40"
    )
    assert "connection-state" not in log_message(rule, xmas, "invalid", "v6", "ether1")  # v6 does not print it
    synack = log_message(FilterRule(2, "input"), decode_frame(frame(flags="SA")), "new", "v7", "ether1")
    assert synack.startswith("input: in:ether1") and "proto TCP (SYN,ACK)" in synack  # the order real logs show
    ping = log_message(rule, decode_frame(frame(proto="icmp", flags=8)), "new", "v7", "ether1")
    assert f"proto ICMP (type 8, code 0), {SCANNER}->{ROUTER}, len 28" in ping
    for message, kind in (
        (text, "XMAS"),
        (log_message(rule, decode_frame(frame(flags="")), "invalid", "v7", "e"), "NULL"),
    ):
        probe = probe_from_firewall_event(parse_firewall_line("firewall,info " + message), 1.0)
        assert (str(probe.src), probe.dport, probe.kind) == (SCANNER, 80, kind)


def test_limit_is_a_token_bucket_on_the_packets_own_times():
    limit = Limit.parse("10,30:packet", "v7")
    assert sum(limit.take(100.0) for _ in range(100)) == 30  # the burst
    assert sum(limit.take(101.0) for _ in range(100)) == 10  # then the rate
    assert Limit.parse("60/1m,5", "v6").per_second == 1.0
    with pytest.raises(ValueError):
        Limit.parse("10,30:packet", "v6")  # v6 has no mode


# -- through the simulated router ------------------------------------------------------------------


def run_provision(sim: SimRouter, lines, user: str = "admin") -> None:
    """Run the provisioning script as ``--apply`` does: each block as one exec line."""
    for line in lines:
        result = sim.execute(user, line)
        assert result.output.strip() == "", f"{line!r}: {result.output}"


@pytest.fixture
def syslog():
    """A real UDP syslog listener on loopback, as `snort-bridge run` has with [scan] syslog."""
    lines = []
    listener = SyslogListener(
        f"127.0.0.1:{free_port()}",
        lambda text, peer, at: lines.append(text),
        AllowList((ipaddress.ip_network("127.0.0.0/8"),)),
    ).start()
    yield listener, lines
    listener.stop()


def provisioned_router(port: int, flavour: str = "v7") -> SimRouter:
    sim = SimRouter(flavour=flavour, users=[{"name": "admin", "password": "pw", "policies": ALL_POLICIES}])
    plan = ProvisionPlan(
        router="sim",
        router_host="127.0.0.1",
        this_host=ipaddress.ip_address("127.0.0.1"),
        syslog_port=port,
        tzsp="none",
        flavour=flavour,
    )
    run_provision(sim, exec_lines(plan))
    assert sim.logs_remotely()
    return sim


def received(sim: SimRouter, lines: list) -> list:
    deadline = time.monotonic() + 20
    while len(lines) < sim.log_datagrams_sent and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(lines) == sim.log_datagrams_sent
    return list(lines)


def detections(lines):
    detector, alerts = ScanDetector(ports=15, window=10), []
    for index, line in enumerate(lines):
        probe = probe_from_firewall_event(parse_firewall_line(line), 1000.0 + index * 0.01)
        alert = detector.feed(probe) if probe is not None else None
        if alert is not None:
            alerts.append(alert)
    return alerts


def logged_by_router(name: str, syslog) -> list:
    """The firewall log lines a provisioned routeros-sim sends while ``name`` passes through it."""
    listener, lines = syslog
    sim = provisioned_router(listener.bound[1])
    try:
        sim.receive_capture(CAPTURES / name)
        return received(sim, lines)
    finally:
        sim.stop()


@pytest.mark.parametrize("name", sorted(SCANS))
def test_scans_through_the_provisioned_router_are_logged_and_detected(name, syslog):
    got = logged_by_router(name, syslog)
    scanner, kind = SCANS[name]
    alerts = detections(got)
    assert alerts and {str(a.src) for a in alerts} == {scanner}
    assert all(f"(tzsp-ips scan) {kind}, " in a.msg for a in alerts), [a.msg for a in alerts]
    assert all(line.startswith("firewall,info tzsp-ips") for line in got)
    if kind in ("TCP FIN scan", "TCP NULL scan", "TCP XMAS scan"):
        # only the stealth rule logs them, and only up to its limit: the burst plus the rate over the scan
        assert all(" tzsp-ips-stealth input: " in line and "connection-state:invalid" in line for line in got)
        assert 30 <= len(got) <= 32


@pytest.mark.parametrize("name", BENIGN)
def test_benign_traffic_through_the_router_makes_nobody_a_scanner(name, syslog):
    got = logged_by_router(name, syslog)
    assert detections(got) == []
    assert not any("tzsp-ips-stealth" in line for line in got)


def test_blocked_scanners_are_dropped_before_they_are_logged(syslog):
    listener, lines = syslog
    sim = provisioned_router(listener.bound[1], flavour="v6")
    try:
        assert sim.execute("admin", "/ip firewall address-list add list=blacklist address=192.168.1.10").output == ""
        sim.receive_capture(CAPTURES / "FIN_SCAN.pcap")
        assert received(sim, lines) == []  # the drop rules sit above the logging rules
    finally:
        sim.stop()


def ssh_lines(port: int, lines) -> None:
    """Run each line by SSH exec as the provisioning administrator would."""
    import paramiko

    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # a throwaway test router
    client.connect(
        "127.0.0.1", port=port, username="admin", password="pw", look_for_keys=False, allow_agent=False, timeout=20
    )
    try:
        for line in lines:
            _, stdout, _ = client.exec_command(line, timeout=20)
            assert stdout.read().decode().strip() == "", line
    finally:
        client.close()


@contextlib.contextmanager
def replaying_sim(tmp_path, capture, password: str):
    """``routeros-sim --replay CAPTURE`` as a process (it replays once a rule logs and someone listens):
    yields (process, its SSH port) and stops it afterwards."""
    process = subprocess.Popen(
        [
            *console_script("routeros-sim"),
            "--port",
            "0",
            "--host-key",
            str(tmp_path / "key"),
            "--policy",
            ",".join(ALL_POLICIES),
            "--password-env",
            "SIM_PW",
            "--replay",
            str(capture),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"SIM_PW": password, "PATH": "/usr/bin:/bin"},
        text=True,
    )
    try:
        yield process, int(re.search(r":(\d+) \(SSH\)", process.stdout.readline()).group(1))
    finally:
        process.terminate()
        process.wait(10)


def test_routeros_sim_replays_a_capture_once_provisioned_over_ssh(syslog, tmp_path):
    listener, lines = syslog
    with replaying_sim(tmp_path, CAPTURES / "NULL_SCAN.pcap", "pw") as (process, port):
        plan = ProvisionPlan(
            router="sim",
            router_host="127.0.0.1",
            this_host=ipaddress.ip_address("127.0.0.1"),
            syslog_port=listener.bound[1],
            tzsp="none",
        )
        # the stealth rule is all this capture needs, with the logging that sends it here
        commands = [line for line in exec_lines(plan) if "tzsp-ips-stealth" in line or "/system logging" in line]
        assert len(commands) == 4  # the stealth rule for IPv4 and IPv6, the logging action and rule
        ssh_lines(port, commands)
        out = ""
        deadline = time.monotonic() + 60
        while "replayed" not in out and time.monotonic() < deadline and process.poll() is None:
            out += process.stdout.readline()
        assert "replayed 120 packets" in out and "30 log line(s) sent" in out, out
        deadline = time.monotonic() + 20
        while len(lines) < 30 and time.monotonic() < deadline:
            time.sleep(0.02)
        [alert] = detections(lines)
        assert str(alert.src) == "192.168.1.10" and "TCP NULL scan" in alert.msg


def test_the_service_blocks_a_stealth_scanner_the_provisioned_router_logged(tmp_path):
    """The whole loop: `snort-bridge provision --apply` -> its rules on the router -> an XMAS scan
    through the router -> remote syslog -> `snort-bridge run` -> the scanner on the router's list."""
    from responder_rig import Lab, wait_until
    from test_e2e_service import Service, write_service_config

    lab = Lab(tmp_path)
    service = None
    try:
        sim = lab.add("r1")
        port = free_port()
        config = write_service_config(lab, scan=f'syslog = "127.0.0.1:{port}"')
        # an administrator sets the router up with `provision --apply`; nothing else touches it
        sim.add_user("admin", password="pw", policies=ALL_POLICIES)
        password_file = tmp_path / "admin.password"
        password_file.write_text("pw\n")
        password_file.chmod(0o600)
        applied = subprocess.run(
            [*console_script("snort-bridge"), "provision", "r1", "--apply", "--admin", "admin"]
            + ["--admin-password-file", str(password_file), "--yes", "--config", config]
            + ["--this-host", "127.0.0.1", "--tzsp", "none"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert "added IPv4 filter input: log stealth probes" in applied.stdout
        service = Service(config, tmp_path / "run.log").start()
        sim.receive_capture(CAPTURES / "XMAS_TREE_SCAN.pcap")
        assert wait_until(lambda: "192.168.1.10" in lab.entries("r1"), 30), service.text()
        assert "192.168.1.25" not in lab.entries("r1")
        assert "TCP XMAS scan" in service.text()
        assert service.stop() == 0
    finally:
        if service is not None:
            service.kill()
        lab.close()


def test_raw_prerouting_drops_listed_sources_before_the_filter_sees_them():
    sim = SimRouter()
    sim.add_user("admin", password="pw", policies=ALL_POLICIES)
    for line in (
        "/ip firewall filter add chain=input action=log log-prefix=seen",
        "/ip firewall raw add chain=prerouting action=drop src-address-list=blacklist",
        "/ip firewall raw add chain=prerouting action=drop in-interface=ether9 protocol=udp",
    ):
        assert sim.execute("admin", line).lines == ()
    assert sim.receive(frame()).action == "accept"  # not listed: through raw, seen by the filter
    sim.execute("admin", f"/ip firewall address-list add list=blacklist address={SCANNER}")
    dropped = sim.receive(frame(sport=40001))
    assert dropped.action == "drop" and dropped.messages == []
    assert sim.receive(frame(proto="udp")).action == "drop"  # the listed source, any protocol
    assert sim.receive(frame(src="192.0.2.99", proto="udp")).action == "accept"  # in-interface= is not modelled
