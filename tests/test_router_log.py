"""[scan] routers: each router's own firewall log, read over API /log/listen or SSH /log print
follow from routeros-sim (which keeps /log in memory, filled by --replay through its firewall),
every line handed on once across a disconnect and a reboot; and a scan read that way blocked on
every router with nothing but [scan] routers set."""

from __future__ import annotations

import signal
import threading
import time
from types import SimpleNamespace

import pytest
from conftest import free_port, wait_for
from responder_rig import shared_host_key, wait_until
from test_e2e_service import DEADLINE, Service, listed_everywhere, write_service_config
from test_scan_captures import SCANS
from test_sim_firewall import CAPTURES, provisioned_router, replaying_sim, ssh_lines

from bridge.config import ConfigError
from bridge.config.load import parse_config
from bridge.scan.probes import probe_from_firewall_event
from bridge.scan.router_log import ApiGate, SshGate
from bridge.scan.routeros_log import parse_firewall_line
from bridge.service.router_logs import RouterLogs
from responder.config import RouterConfig
from responder.routeros import replies
from responder.sim import SimRouter
from responder.sim.router.memory_log import LogEntry, MemoryLog, print_line, shown_time
from responder.transport import known_hosts
from responder.transport.log_stream import SshLogStream
from responder.transport.ssh import fetch_host_key

PASSWORD = "pw"
STEALTH_RULE = (
    "/ip firewall filter add chain=input action=log protocol=tcp connection-state=invalid tcp-flags=!ack,!rst "
    "limit=10,30:packet log-prefix=tzsp-ips-stealth"
)


def entry(number, message, time="10:00:00", topics="firewall,info"):
    return SimpleNamespace(id=f"*{number:X}", time=time, topics=topics, message=message)


# -- pure: which entries are new ---------------------------------------------------------------------


def test_api_gate_takes_past_the_last_id_after_a_reconnect_and_everything_after_a_reboot():
    gate = ApiGate()
    first = [entry(1, "a"), entry(2, "b")]
    assert gate.opened(100.0, first, now=1000.0) == first
    assert gate.take([entry(2, "b"), entry(3, "c")]) == [entry(3, "c")]  # listen repeats what print gave
    # reconnect, same boot: the memory listed again, plus one new
    assert gate.opened(110.0, [*first, entry(3, "c"), entry(4, "d")], now=1010.0) == [entry(4, "d")]
    # reboot seen from the uptime: ids start over
    assert gate.opened(2.0, [entry(1, "x")], now=1020.0) == [entry(1, "x")]
    # reboot seen from the ids going back (uptime unknown)
    gate = ApiGate()
    gate.opened(None, [entry(1, "a"), entry(2, "b"), entry(3, "c")], now=0.0)
    assert gate.opened(None, [entry(1, "p")], now=0.0) == [entry(1, "p")]
    # reboot seen from the entry at the last id naming another message (uptime unknown)
    gate = ApiGate()
    gate.opened(None, [entry(1, "a"), entry(2, "b")], now=0.0)
    assert gate.opened(None, [entry(1, "p"), entry(2, "q"), entry(3, "r")], now=0.0) == [
        entry(1, "p"),
        entry(2, "q"),
        entry(3, "r"),
    ]


def test_ssh_gate_skips_what_it_saw_and_remembers_a_bounded_number():
    gate = SshGate(remember=3)
    lines = [entry(0, m) for m in "abc"]
    assert gate.opened(None, lines, now=0.0) == lines
    assert gate.take([entry(0, "a"), entry(0, "d")]) == [entry(0, "d")]
    assert gate.take([entry(0, "a")]) == [entry(0, "a")]  # forgotten: only the last 3 are kept


def test_log_print_lines_as_the_manual_shows_them_read_back():
    assert replies.parse_log_line("01:01:58 firewall,info input: in:ether1 out:(none), len 452") == (
        "01:01:58",
        "firewall,info",
        "input: in:ether1 out:(none), len 452",
    )
    assert replies.parse_log_line("sep/15 12:42:14 system,info,account user admin logged in\r")[0] == "12:42:14"
    assert replies.parse_log_line("jan/02/1970 02:00:09 system,info router rebooted")[2] == "router rebooted"
    assert replies.parse_log_line("-- Ctrl-C to quit.") is None
    day = 86400.0
    assert shown_time(20 * day + 5, 20 * day + 100) == "00:00:05"
    assert shown_time(20 * day + 5, 21 * day) == "jan/21 00:00:05"
    assert shown_time(5.0, 400 * day) == "jan/01/1970 00:00:05"


def test_memory_log_keeps_its_lines_and_forgets_everything_in_a_reboot():
    memory = MemoryLog(lines=2)
    for n in range(3):
        memory.add(("firewall", "info"), f"m{n}", float(n))
    assert [e.message for e in memory.entries()] == ["m1", "m2"] and memory.entries()[0].id == "*2"
    cursor = memory.cursor()
    memory.add(("firewall", "info"), "m3", 3.0)
    assert [e.message for e in memory.after(cursor, 0)[1]] == ["m3"]
    memory.clear()
    assert memory.entries() == [] and memory.after(cursor, 0)[1] is None
    assert memory.add(("info",), "again", 4.0).id == "*1"
    assert print_line(LogEntry(1, 4.0, ("firewall", "info"), "x"), 5.0) == "00:00:04 firewall,info x"


# -- against routeros-sim over the wire -----------------------------------------------------------


@pytest.fixture
def router(tmp_path):
    """A provisioned routeros-sim (firewall rules that log) serving SSH and the API; user logreader."""
    sim = provisioned_router(free_port())
    sim.add_user("logreader", password=PASSWORD, policies=("ssh", "api", "read", "write"))
    ssh_port, api_port, ssl_port = sim.start(), sim.start_api(), sim.start_api(tls=True)
    known = str(tmp_path / "known_hosts")
    known_hosts.record(
        known, known_hosts.host_name("127.0.0.1", ssh_port), sim.host_key.get_name(), sim.host_key.asbytes()
    )
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    password_file.chmod(0o600)
    tls = {"tls": True, "fingerprint": f"sha256:{sim.api_certificate.sha256}"}
    configs = {
        name: RouterConfig(
            name="core1",
            host="127.0.0.1",
            port=port,
            transport=name[:3],
            user="logreader",
            password_file=str(password_file),
            known_hosts=known,
            connect_timeout=3.0,
            command_timeout=3.0,
            **(tls if name == "api-ssl" else {}),
        )
        for name, port in (("ssh", ssh_port), ("api", api_port), ("api-ssl", ssl_port))
    }
    yield sim, configs
    sim.stop()


def count_probes(lines: list[str]) -> int:
    return sum(probe_from_firewall_event(parse_firewall_line(line), 0.0) is not None for line in lines)


def ssh_keys(sim) -> set:
    """What identifies r1's entries over SSH: clock time, topics, message (a retransmitted probe in
    the same second is the same entry there)."""
    return {
        (time.strftime("%H:%M:%S", time.gmtime(e.time)), ",".join(e.topics), e.message)
        for e in sim.state.logging.memory.entries()
    }


def memory_lines(sim) -> list[str]:
    return [f"{','.join(e.topics)} {e.message}" for e in sim.state.logging.memory.entries()]


@pytest.mark.parametrize("transport", ["api", "api-ssl", "ssh"])
def test_every_firewall_line_once_across_a_disconnect_and_a_reboot(router, transport):
    sim, configs = router
    got: list[str] = []
    lock = threading.Lock()

    def put(name: str, line: str, at: float) -> None:
        assert name == "core1"
        with lock:
            got.append(line)

    config = SimpleNamespace(scan=SimpleNamespace(routers=("core1",)), routers=(configs[transport],))
    logs = RouterLogs(put)
    sim.receive_capture(CAPTURES / "FIN_SCAN.pcap")  # in memory before we connect: read too
    expected = memory_lines(sim)
    assert len(expected) >= 20
    logs.start(config)
    try:
        assert wait_for(lambda: len(got) >= len(expected), 15)
        sim.receive_capture(CAPTURES / "UDP_SCAN.pcap")  # while following
        expected = memory_lines(sim)
        assert wait_for(lambda: len(got) >= len(expected), 15)
        sim.drop_connections()  # an outage: the router keeps its memory, we list it again
        sim.receive_capture(CAPTURES / "XMAS_TREE_SCAN.pcap")
        expected = memory_lines(sim)
        assert wait_for(lambda: len(got) >= len(expected), 15)
        sim.reboot()  # the memory is gone, the API's ids start over
        sim.receive_capture(CAPTURES / "NULL_SCAN.pcap")
        expected += memory_lines(sim)
        assert wait_for(lambda: len(got) >= len(expected), 15)
        assert not wait_for(lambda: len(got) > len(expected), 1.0)  # nothing more comes
    finally:
        logs.stop()
    assert got == expected
    assert all(line.startswith("firewall,info tzsp-ips") for line in got)


# -- end to end: `snort-bridge run` with only [scan] routers ------------------------------------------


def routers_for(lab, transport: str, tmp_path) -> list[dict]:
    """Three simulated routers reached over ``transport``; r1 logs new connections as provision sets it up."""
    if transport == "ssh":
        for name in ("r1", "r2", "r3"):
            lab.add(name)
        tables = [lab.router_table(name, port) for name, port in lab.ports.items()]
    else:
        password_file = tmp_path / "router.password"
        password_file.write_text(PASSWORD + "\n")
        password_file.chmod(0o600)
        tables = []
        for name in ("r1", "r2", "r3"):
            sim = SimRouter(host_key=shared_host_key())
            sim.add_user("ips", password=PASSWORD, policies=("api", "read", "write"))
            lab.sims[name] = sim
            table = lab.router_table(name, sim.start_api(), transport="api", password_file=str(password_file))
            del table["key_file"]
            tables.append(table)
    logging_rule = "/ip firewall filter add chain=input action=log connection-state=new log-prefix=tzsp-ips"
    assert lab.sims["r1"].execute("ips", logging_rule).output == ""
    return tables


@pytest.mark.parametrize("transport", ["api", "ssh"])
def test_scans_read_from_the_routers_own_log_are_blocked_on_every_router_across_an_outage_and_a_reboot(
    lab, services, tmp_path, transport
):
    tables = routers_for(lab, transport, tmp_path)
    config = write_service_config(lab, scan='ports = 6\nwindow = "30s"\nrouters = ["r1"]', routers=tables)
    service = Service(config, tmp_path / "run.log").start()
    services.append(service)
    assert "the firewall log of r1" in service.text()
    assert "udp" not in service.text().split("started:")[1].splitlines()[0]  # no syslog listener
    r1 = lab.sims["r1"]
    probes = 0
    seen_over_ssh: set = set()
    for capture, before in (
        ("TCP_SYN_SCAN.pcap", None),
        ("synscan.pcapng", r1.drop_connections),  # an outage: r1 keeps its memory, read again
        ("test12-icmp-portscan.pcap", r1.reboot),  # r1's memory is gone, its ids start over
    ):
        if before == r1.reboot:
            probes += count_probes(memory_lines(r1))  # what the reboot clears
            seen_over_ssh |= ssh_keys(r1)
        if before is not None:
            before()
        r1.receive_capture(CAPTURES / capture)
        scanner, kind = SCANS[capture]
        assert wait_until(lambda scanner=scanner: listed_everywhere(lab, scanner), DEADLINE), service.text()
        assert f"BLOCK {scanner}" in service.text() and f"(tzsp-ips scan) {kind}" in service.text()
    probes += count_probes(memory_lines(r1))
    if transport == "ssh":
        seen_over_ssh |= ssh_keys(r1)
        probes = count_probes([f"{topics} {message}" for _, topics, message in seen_over_ssh])

    def counted() -> str:
        service.signal(signal.SIGUSR1)  # logs a status line with the counts
        time.sleep(0.2)
        return ([line for line in service.text().splitlines() if "status:" in line] or [""])[-1]

    # each probe r1 logged is counted once: none lost in the outage or the reboot, none twice
    assert wait_until(lambda: f"in {probes} probes" in counted(), DEADLINE), counted()
    assert not wait_until(lambda: f"in {probes} probes" not in counted(), 1.0), counted()
    assert service.stop() == 0


def test_scan_routers_must_name_configured_routers_once():
    table = {"name": "core1", "host": "192.0.2.1", "key_file": "/k", "known_hosts": "/kh"}
    config = parse_config({"scan": {"routers": ["core1"]}, "routers": [table]})
    assert config.scan.routers == ("core1",)
    with pytest.raises(ConfigError) as caught:
        parse_config({"scan": {"routers": ["core1", "edge9", "core1", 7]}, "routers": [table]})
    problems = "\n".join(caught.value.problems)
    assert "scan.routers[1]: no [[routers]] table has name = 'edge9'" in problems
    assert "scan.routers[2]: 'core1' is listed twice" in problems
    assert "scan.routers[3]" in problems


def test_routeros_sim_replays_once_its_log_is_followed_and_the_lines_come_over_ssh(tmp_path):
    with replaying_sim(tmp_path, CAPTURES / "NULL_SCAN.pcap", PASSWORD) as (process, port):
        stream = None
        try:
            # the stealth rule, as provision writes it, and no remote logging action at all
            ssh_lines(port, [STEALTH_RULE])
            known = str(tmp_path / "known_hosts")
            key = fetch_host_key("127.0.0.1", port)
            known_hosts.record(known, known_hosts.host_name("127.0.0.1", port), key.get_name(), key.asbytes())
            config = RouterConfig(name="sim", host="127.0.0.1", port=port, user="admin", known_hosts=known)
            stream = SshLogStream(config, password=PASSWORD)
            stream.open()
            got = []
            deadline = time.monotonic() + 60
            while len(got) < 30 and time.monotonic() < deadline:
                got += stream.read(0.5)
            assert len(got) == 30 and all(e.topics == "firewall,info" for e in got)
            assert all("tzsp-ips-stealth input: " in e.message and "192.168.1.10" in e.message for e in got)
            out = ""
            while "replayed" not in out and process.poll() is None and time.monotonic() < deadline:
                out += process.stdout.readline()
            assert "replayed 120 packets" in out, out
        finally:
            if stream is not None:
                stream.close()
