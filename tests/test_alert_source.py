"""Every block keeps the source of the alert that made it (the file and line, hence the sensor):
in the decision, the block request, the ledger, and `snort-bridge list` (text and --json)."""

from __future__ import annotations

import ipaddress
import json
import sqlite3
import time

from conftest import free_port
from responder_rig import write_config

from bridge.cli import main as snort_bridge
from bridge.config.load import parse_config
from bridge.decide.policy import Policy
from bridge.events import Origin
from bridge.pipeline import Pipeline
from responder.events import BlockRequest
from responder.ledger import Ledger

A = ipaddress.ip_address("198.51.100.7")
SENSOR1 = "/var/log/tzsp-ips/sensors/sensor1/alert_json.txt"
SENSOR2 = "/var/log/tzsp-ips/sensors/sensor2/alert_json.txt"
LINE = (
    '12/04-05:00:01.000000 [**] [1:1000101:1] "web traversal" [**] [Priority: 1] '
    "{TCP} 198.51.100.7:4444 -> 192.0.2.10:80"
)


class RecordingResponder:
    def __init__(self):
        self.requests = []

    def block(self, request):
        self.requests.append(request)


def test_the_block_request_and_the_decision_name_the_file_and_line():
    responder = RecordingResponder()
    pipeline = Pipeline(Policy(parse_config({"policy": {"protected": []}}).policy), responder, routers=1)
    decision = pipeline.alert_line(LINE, Origin(SENSOR2, 4096, 17))
    assert decision.action == "block"
    assert decision.source == f"{SENSOR2}:17"
    [request] = responder.requests
    assert request.source == f"{SENSOR2}:17"


def test_the_ledger_stores_the_source_and_the_latest_renewal_replaces_it(tmp_path):
    ledger = Ledger.in_state_dir(str(tmp_path))
    try:
        ledger.record_block(
            BlockRequest(A, 300, "why", "1:1", requested_at=1000.0, source=f"{SENSOR1}:3"), ["r1"], 1000.0
        )
        [record] = ledger.blocks(1001.0)
        assert record.source == f"{SENSOR1}:3"
        # renewed much later from the other sensor: the block now says where it was last seen
        ledger.record_block(
            BlockRequest(A, 300, "why", "1:1", requested_at=1200.0, source=f"{SENSOR2}:9"), ["r1"], 1200.0
        )
        [record] = ledger.blocks(1201.0)
        assert record.source == f"{SENSOR2}:9"
        ledger.record_block(BlockRequest(A, 300, "by hand", "", requested_at=1300.0), ["r1"], 1300.0)
        assert ledger.blocks(1301.0)[0].source == ""
    finally:
        ledger.close()


def test_a_ledger_written_before_sources_were_kept_opens_and_keeps_its_blocks(tmp_path):
    path = tmp_path / "responder.sqlite3"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE schema_version (version INTEGER NOT NULL);
        INSERT INTO schema_version VALUES (1);
        CREATE TABLE blocks (address TEXT PRIMARY KEY, reason TEXT NOT NULL, sid TEXT NOT NULL,
            first_seen REAL NOT NULL, last_seen REAL NOT NULL, expires_at REAL NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('active', 'unblocked')));
        INSERT INTO blocks VALUES ('198.51.100.7', 'old reason', '1:1', 1000, 1000, 1300, 'active');
    """)
    old.close()
    ledger = Ledger(str(path))
    try:
        [record] = ledger.blocks(1001.0)
        assert (str(record.address), record.reason, record.source) == ("198.51.100.7", "old reason", "")
        ledger.record_block(
            BlockRequest(
                ipaddress.ip_address("198.51.100.8"), 300, "new", "1:2", requested_at=1001.0, source=f"{SENSOR1}:1"
            ),
            ["r1"],
            1001.0,
        )
        assert {str(r.address): r.source for r in ledger.blocks(1002.0)} == {
            "198.51.100.7": "",
            "198.51.100.8": f"{SENSOR1}:1",
        }
    finally:
        ledger.close()


def test_list_shows_the_source_as_text_and_json(tmp_path, capsys):
    router = dict(name="r1", host="127.0.0.1", port=free_port(), user="ips", password_env="NO_SUCH_PASSWORD")
    config = write_config(tmp_path, [router])
    ledger = Ledger.in_state_dir(str(tmp_path / "state"))
    now = time.time()
    ledger.record_block(
        BlockRequest(A, 300, "web traversal", "1:1000101", requested_at=now, source=f"{SENSOR1}:12"), ["r1"], now
    )
    ledger.close()
    assert snort_bridge(["list", "--config", config]) == 0
    assert f"[{SENSOR1}:12]" in capsys.readouterr().out
    assert snort_bridge(["list", "--json", "--config", config]) == 0
    [block] = json.loads(capsys.readouterr().out)["blocks"]
    assert block["source"] == f"{SENSOR1}:12"
