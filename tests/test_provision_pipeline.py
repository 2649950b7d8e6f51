"""The whole pipeline on a router that only `snort-bridge provision --apply` set up.

A bare routeros-sim (an administrator, nothing of ours) is provisioned by ``--apply``; then TZSP
(tzsp-replay, as the router streams) -> tzspd -> the built-in detector (``snort-bridge scan``,
writing alert_json) -> ``snort-bridge run`` -> the scanner on the router's list, logging in as the
user ``--apply`` created, with the key it installed. The router's drop rule then drops the scanner
and its firewall logging sends new connections to the bridge's syslog listener.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import console_script, free_port
from responder_rig import client_key, shared_host_key, wait_until, write_config
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from test_e2e_service import Service
from test_scan_cli import SCANNER, benign_packets, pcap_bytes, scan_packets

from bridge.cli import main as snort_bridge
from responder.sim import SimRouter
from responder.sim.router.users import ALL_POLICIES

DEADLINE = 30.0
ROUTER_ADDRESS = "198.51.100.1"


def syn(src: str, dport: int = 22) -> bytes:
    ether = Ether(src="00:0c:29:aa:bb:cc", dst="02:00:00:00:00:01")
    return bytes(ether / IP(src=src, dst=ROUTER_ADDRESS) / TCP(sport=40123, dport=dport, flags="S"))


@pytest.mark.parametrize("block_in", ["filter", "raw"])
def test_the_pipeline_blocks_on_a_router_set_up_only_by_provision_apply(tmp_path, block_in):
    sim = SimRouter(host_key=shared_host_key(), users=[{"name": "admin", "password": "pw", "policies": ALL_POLICIES}])
    port = sim.start("127.0.0.1", 0)
    key_path, _ = client_key(tmp_path)
    password_file = tmp_path / "admin.password"
    password_file.write_text("pw\n")
    os.chmod(password_file, 0o600)
    alerts = tmp_path / "alert_json.txt"
    syslog_port, tzsp_port = free_port(), free_port()
    config = write_config(
        tmp_path,
        [
            dict(
                name="r1",
                host="127.0.0.1",
                port=port,
                user="ips",
                key_file=key_path,
                known_hosts=str(tmp_path / "known_hosts"),
                list="blacklist",
                connect_timeout="5s",
                command_timeout="5s",
                block_in=block_in,
            )
        ],
        protected=("10.0.0.0/8",),
        extra=f'[[alerts]]\npath = "{alerts}"\nformat = "json"\n\n[scan]\nsyslog = "127.0.0.1:{syslog_port}"\n',
    )
    service = tzspd = None
    try:
        assert not sim.logs_remotely()
        applied = snort_bridge(
            ["provision", "r1", "--apply", "--admin", "admin", "--admin-password-file", str(password_file), "--yes"]
            + ["--config", config, "--this-host", "127.0.0.1", "--tzsp-port", str(tzsp_port)]
        )
        assert applied == 0
        assert sim.logs_remotely()
        assert sim.receive(syn(SCANNER)).action == "accept"  # not listed yet: let through (and logged)

        service = Service(config, tmp_path / "run.log").start()
        consumer = f"{sys.executable} -m bridge.cli scan --pcap - --dry-run --alerts {alerts} --config {config}"
        tzspd_log = open(tmp_path / "tzspd.log", "wb")
        tzspd = subprocess.Popen(
            [*console_script("tzspd"), "--listen", "127.0.0.1", "--port", str(tzsp_port)]
            + ["--allow", "127.0.0.1/32", "--exec", consumer],
            stderr=tzspd_log,
        )
        assert wait_until(lambda: b"listening" in (tmp_path / "tzspd.log").read_bytes(), DEADLINE)
        capture = tmp_path / "replay.pcap"
        capture.write_bytes(pcap_bytes(tmp_path, benign_packets() + scan_packets(), name="replay.pcap"))
        subprocess.run(
            [*console_script("tzsp-replay"), str(capture), "--to", f"127.0.0.1:{tzsp_port}", "-q"],
            check=True,
            timeout=DEADLINE,
        )
        assert wait_until(lambda: sim.holds("blacklist", SCANNER), DEADLINE), service.text()
        assert wait_until(lambda: SCANNER in service.text(), DEADLINE), service.text()  # its decision, logged

        # the drop rule provision put on top (filter input, or raw prerouting) drops the scanner now;
        # others still pass, logged remotely
        assert sim.receive(syn(SCANNER, dport=80)).action == "drop"
        sent = sim.log_datagrams_sent
        assert sim.receive(syn("203.0.113.200", dport=8080)).action == "accept"
        assert sim.log_datagrams_sent > sent
        assert service.stop() == 0
    finally:
        if tzspd is not None and tzspd.poll() is None:
            tzspd.terminate()
            tzspd.wait(DEADLINE)
        if service is not None:
            service.kill()
        sim.stop()
