"""Repeat offenders: durations per network, per rule, escalation, the cap, offences in the ledger."""

from __future__ import annotations

import ipaddress
import sqlite3
from dataclasses import replace

import pytest
from test_attribution import make_alert

from bridge.config import ConfigError, PolicyConfig, example_config
from bridge.config.load import parse_config
from bridge.decide.durations import block_duration, ordinal
from bridge.decide.policy import Policy
from bridge.pipeline import Pipeline
from responder.events import BlockRequest
from responder.ledger import SCHEMA_VERSION, Ledger

NET = ipaddress.ip_network("203.0.113.0/24")
NARROW = ipaddress.ip_network("203.0.113.0/28")
ATTACKER = ipaddress.ip_address("203.0.113.7")
OTHER = ipaddress.ip_address("198.51.100.9")
HOUR = 3600.0
T0 = 1_800_000_000.0
RULES = PolicyConfig(
    protected=(),
    repeat_factor=4.0,
    max_block_for=7 * 86400.0,
    block_for_rules={"1:1000122": HOUR},
    block_for_networks={NET: 86400.0, NARROW: 600.0},
)


def attack(src=str(ATTACKER), sid=1000122):
    return make_alert(src, "192.0.2.20", sid=sid, priority=1, sport=40000, dport=22)


# -- the pure duration --------------------------------------------------------------------------


def test_precedence_network_longest_prefix_then_rule_then_block_for():
    assert block_duration(RULES, ATTACKER, "1:1000122", 0).source == "network 203.0.113.0/28"  # /28 beats /24
    wide = ipaddress.ip_address("203.0.113.200")
    assert (block_duration(RULES, wide, "1:1000122", 0).base, block_duration(RULES, wide, "1:1000122", 0).source) == (
        86400.0,
        "network 203.0.113.0/24",
    )
    assert block_duration(RULES, OTHER, "1:1000122", 0).source == "rule 1:1000122"
    plain = block_duration(RULES, OTHER, "1:2000001", 0)
    assert (plain.seconds, plain.source) == (300.0, "block_for")
    v6 = ipaddress.ip_address("2001:db8::1")  # a v4 network never matches a v6 address
    assert block_duration(RULES, v6, "1:1000122", 0).source == "rule 1:1000122"


def test_escalation_multiplies_and_the_cap_holds():
    third = block_duration(RULES, OTHER, "1:1000122", 2)
    assert third.seconds == 16 * HOUR and third.describe() == "16h: 3rd offence; rule 1:1000122 sets 1h; ×16"
    fourth = block_duration(RULES, OTHER, "1:1000122", 3)  # 64h = 2d16h, under a week
    assert fourth.seconds == 64 * HOUR and not fourth.capped
    fifth = block_duration(RULES, OTHER, "1:1000122", 4)  # 256h > 1w
    assert fifth.seconds == 7 * 86400.0 and fifth.capped
    assert fifth.describe() == "1w: 5th offence; rule 1:1000122 sets 1h; ×256; capped at max_block_for 1w"
    endless = block_duration(RULES, OTHER, "1:1000122", 100_000)  # no overflow however many
    assert endless.seconds == 7 * 86400.0 and endless.capped
    flat = block_duration(replace(RULES, repeat_factor=1.0), OTHER, "1:1000122", 9)
    assert flat.seconds == HOUR and flat.describe() == "1h: 10th offence; rule 1:1000122 sets 1h"
    twice = block_duration(replace(RULES, repeat_factor=2.0), OTHER, "1:1000122", 2)
    assert twice.describe() == "4h: 3rd offence; rule 1:1000122 sets 1h; ×4"


def test_ordinals():
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st",
        "2nd",
        "3rd",
        "4th",
        "11th",
        "12th",
        "13th",
        "21st",
        "22nd",
        "101st",
        "111th",
    ]


# -- the policy: offences within remember_for ---------------------------------------------------------


def test_policy_escalates_repeat_offenders_within_remember_for_only():
    config = replace(RULES, remember_for=30 * 86400.0)
    policy = Policy(config)
    first = policy.decide(attack(str(OTHER)), T0)
    assert first.action == "block" and first.block_for == HOUR and "1st offence" in first.why
    assert policy.decide(attack(str(OTHER)), T0 + 60).action == "ignore"  # in force: folded, no offence
    second = policy.decide(attack(str(OTHER)), T0 + HOUR + 1)
    assert second.block_for == 4 * HOUR and second.duration_why == "2nd offence; rule 1:1000122 sets 1h; ×4"
    # 31 days later the first two are forgotten
    later = policy.decide(attack(str(OTHER)), T0 + 31 * 86400.0)
    assert later.block_for == HOUR and "1st offence" in later.why


def test_forgotten_address_starts_over_in_memory():
    policy = Policy(RULES)
    policy.decide(attack(str(OTHER)), T0)
    policy.forget(OTHER)  # unblocked by hand, rolled back, or the block failed
    assert policy.decide(attack(str(OTHER)), T0 + 10).block_for == HOUR


# -- the configuration ---------------------------------------------------------------------------------


def test_config_reads_escalation_keys_and_names_bad_ones():
    config = parse_config(
        '[policy]\nrepeat_factor = 2\nmax_block_for = "2w"\nremember_for = "60d"\n'
        'block_for_rules = { "1:1000122" = "1h" }\nblock_for_networks = { "203.0.113.0/24" = "1d" }\n'
    )
    p = config.policy
    assert (p.repeat_factor, p.max_block_for, p.remember_for) == (2.0, 14 * 86400.0, 60 * 86400.0)
    assert p.block_for_rules == {"1:1000122": HOUR} and p.block_for_networks == {NET: 86400.0}
    defaults = parse_config("").policy
    assert (defaults.repeat_factor, defaults.max_block_for, defaults.remember_for) == (4.0, 7 * 86400.0, 30 * 86400.0)
    # max_block_for not set: never below a longer base the file asks for (an older file keeps working)
    assert parse_config('[policy]\nblock_for = "2w"\n').policy.max_block_for == 14 * 86400.0
    assert parse_config('[policy]\nblock_for_rules = { "1:2" = "3w" }\n').policy.max_block_for == 21 * 86400.0
    with pytest.raises(ConfigError) as caught:
        parse_config(
            '[policy]\nrepeat_factor = 0.5\nblock_for_rules = { "1000122" = "1h", "1:2" = "soon" }\n'
            'block_for_networks = { "203.0.113.7/24" = "1d" }\nmax_block_for = "1d"\nblock_for = "2d"\n'
        )
    problems = caught.value.problems
    assert any(p.startswith("policy.repeat_factor: expected a number from 1") for p in problems)
    assert any(p.startswith('policy.block_for_rules."1000122": expected a "gid:sid" key') for p in problems)
    assert any(p.startswith('policy.block_for_rules."1:2": expected a duration') for p in problems)
    assert any(
        p.startswith("policy.block_for_networks.\"203.0.113.7/24\": '203.0.113.7/24' has host bits set")
        for p in problems
    )
    assert any(p.startswith("policy.block_for: '2d' is longer than policy.max_block_for (1d)") for p in problems)


def test_example_config_documents_the_keys():
    text = example_config()
    for key in ("repeat_factor", "max_block_for", "remember_for", "block_for_rules", "block_for_networks"):
        assert f"\n{key} = " in text
    parse_config(text)


# -- the ledger: offences survive, unblock clears them unless kept, purge -------------------------------


def request(address, duration=HOUR, at=T0, why="1st offence; block_for sets 1h"):
    return BlockRequest(address, duration, "test", "1:1000122", requested_at=at, duration_why=why)


def test_ledger_records_one_offence_per_new_block_and_keeps_it_across_reopen(tmp_path):
    path = str(tmp_path / "l.sqlite3")
    ledger = Ledger(path)
    ledger.record_block(request(OTHER), ["r1"], T0)
    ledger.record_block(request(OTHER, at=T0 + 60), ["r1"], T0 + 60)  # in force: unchanged, no offence
    ledger.record_block(request(OTHER, duration=4 * HOUR, at=T0 + 120), ["r1"], T0 + 120)  # extended: no offence
    assert ledger.offence_count(OTHER, T0 - 1) == 1
    ledger.record_block(request(OTHER, at=T0 + 10 * HOUR), ["r1"], T0 + 10 * HOUR)  # after it ended: a new offence
    ledger.close()
    ledger = Ledger(path)
    assert ledger.offence_count(OTHER, T0 - 1) == 2 and ledger.offence_count(OTHER, T0 + 1) == 1
    [record] = ledger.blocks(T0 + 10 * HOUR, offences_since=T0 - 1)
    assert record.offences == 2 and record.duration == HOUR and record.duration_why.startswith("1st offence")
    assert ledger.purge_offences(T0 + 1) == 1 and ledger.offence_count(OTHER, 0) == 1
    ledger.close()


def test_unblock_clears_offences_unless_kept(tmp_path):
    ledger = Ledger(str(tmp_path / "l.sqlite3"))
    ledger.record_block(request(OTHER), ["r1"], T0)
    ledger.record_block(request(ATTACKER), ["r1"], T0)
    ledger.record_unblock(OTHER, ["r1"], T0 + 1)
    ledger.record_unblock(ATTACKER, ["r1"], T0 + 1, keep_offences=True)
    assert ledger.offence_count(OTHER, 0) == 0 and ledger.offence_count(ATTACKER, 0) == 1
    ledger.close()


def test_version_1_ledger_is_migrated_in_place(tmp_path):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);"
        "CREATE TABLE blocks (address TEXT PRIMARY KEY, reason TEXT NOT NULL, sid TEXT NOT NULL, first_seen REAL NOT NULL,"
        " last_seen REAL NOT NULL, expires_at REAL NOT NULL, state TEXT NOT NULL);"
        "CREATE TABLE router_blocks (router TEXT NOT NULL, address TEXT NOT NULL, status TEXT NOT NULL, applied_at REAL,"
        " expires_at REAL, last_error TEXT, attempts INTEGER NOT NULL DEFAULT 0, updated_at REAL NOT NULL,"
        " generation INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (router, address));"
        f"INSERT INTO blocks VALUES ('{OTHER}', 'old', '1:1', {T0}, {T0}, {T0 + HOUR}, 'active');"
        f"INSERT INTO router_blocks (router, address, status, updated_at) VALUES ('r1', '{OTHER}', 'applied', {T0});"
    )
    conn.close()
    ledger = Ledger(str(path))
    [record] = ledger.blocks(T0 + 1)
    assert record.reason == "old" and record.duration_why == "" and not record.routers["r1"].static
    ledger.record_block(request(ATTACKER), ["r1"], T0)
    assert ledger.offence_count(ATTACKER, 0) == 1
    assert ledger._read("SELECT version FROM schema_version")[0][0] == SCHEMA_VERSION == 2
    ledger.close()


def test_pipeline_counts_offences_in_the_ledger_across_a_restart(tmp_path):
    """The run path: the policy asks the ledger, so a restart does not reset a repeat offender."""
    from responder.responder import Responder

    config = parse_config(
        {"state_dir": str(tmp_path / "state"), "policy": {"protected": [], "block_for_rules": {"1:1000122": "1h"}}}
    )
    clock = [T0]
    for expected in (HOUR, 4 * HOUR, 16 * HOUR):
        responder = Responder(config, clock=lambda: clock[0])  # no routers: the ledger alone
        pipeline = Pipeline(Policy(config.policy), responder, clock=lambda: clock[0])
        pipeline.resync(responder.ledger, clock[0])
        decision = pipeline.act(attack(str(OTHER)))
        assert decision.action == "block" and decision.block_for == expected, decision.why
        [record] = responder.ledger.blocks(clock[0], offences_since=0)
        assert record.duration == expected and record.duration_why == decision.duration_why
        responder.stop()
        clock[0] += expected + 1  # the block ends; the process restarts
    responder = Responder(config, clock=lambda: clock[0])
    responder.unblock(OTHER)  # clears the offences
    pipeline = Pipeline(Policy(config.policy), responder, clock=lambda: clock[0])
    assert pipeline.act(attack(str(OTHER))).block_for == HOUR
    responder.stop()


def test_config_check_says_how_durations_are_set(tmp_path, capsys):
    from bridge.cli import main as snort_bridge

    path = tmp_path / "c.toml"
    path.write_text('[policy]\nrepeat_factor = 2\nblock_for_rules = { "1:1000122" = "1h" }\n')
    assert snort_bridge(["config", "check", "--config", str(path)]) == 0
    assert (
        "durations: repeat offenders x2 per block within 4w2d, at most 1w; 1 per rule, 0 per network"
        in capsys.readouterr().out
    )
