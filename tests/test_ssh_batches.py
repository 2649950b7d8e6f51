"""Adds batched over SSH: pure rendering of the exec lines, reading back each address's outcome, and
the session's add_blocks against routeros-sim over real SSH."""

from __future__ import annotations

import ipaddress
import re

import pytest
from responder_rig import LIST, Lab

from responder.errors import RouterCommandError
from responder.routeros import commands, replies
from responder.sim.router.state import RouterProfile
from responder.transport.ssh_session import RouterSession

ADDRESSES = [ipaddress.ip_address("198.18.0.0") + i for i in range(100)]


def adds(count: int, comment: str = "tzsp-ips [1:1000001:1] STORM attack") -> list[str]:
    return [commands.render_add(None, "blacklist", a, 3600, comment) for a in ADDRESSES[:count]]


def test_every_add_is_guarded_and_marked_with_its_index():
    line = commands.render_guarded(7, "/ip firewall address-list add list=b address=1.2.3.4")
    assert line == (':do {/ip firewall address-list add list=b address=1.2.3.4} on-error={:put "tzsp-ips-failed 7"}')


def test_batches_keep_order_cover_every_command_once_and_stay_under_the_limit():
    rendered = adds(100)
    batches = commands.render_batches(rendered)
    assert [i for indices, _ in batches for i in indices] == list(range(100))
    assert all(len(line) <= commands.BATCH_LINE_MAX for _, line in batches)
    assert all("\n" not in line and "\r" not in line for _, line in batches)
    assert 1 < len(batches) < 100  # several adds per line, several lines
    for indices, line in batches:
        assert line.count(":do {") == len(indices) and line.endswith('; :put "tzsp-ips-done"')
        assert all(rendered[i] in line for i in indices)


def test_a_tight_limit_gives_one_add_per_line_and_a_too_tight_one_refuses():
    rendered = adds(3)
    longest = max(len(commands.render_guarded(i, c)) for i, c in enumerate(rendered)) + len('; :put "tzsp-ips-done"')
    assert [indices for indices, _ in commands.render_batches(rendered, longest)] == [[0], [1], [2]]
    with pytest.raises(ValueError):
        commands.render_batches(rendered, longest - 1)


def test_hostile_comment_stays_inside_its_quotes_in_a_batch():
    rendered = adds(2, comment='x"} on-error={}; /system reset-configuration; :do {')
    [(indices, line)] = commands.render_batches(rendered)
    assert indices == [0, 1]
    outside_quotes = re.sub(r'"(?:[^"\\]|\\.)*"', '""', line)
    assert outside_quotes.count(":do {") == 2 and outside_quotes.count("on-error={") == 2
    assert "reset-configuration" not in outside_quotes
    assert '\\"} on-error={}; /system reset-configuration; :do {"' in line


def test_outcomes_read_back_per_address():
    output = "tzsp-ips-failed 1\r\ntzsp-ips-failed 99\r\ntzsp-ips-done\r\n"
    assert replies.batch_outcomes(output, [0, 1, 2, 3]) == {0: True, 1: False, 2: True, 3: True}


def test_a_line_that_stopped_before_its_end_vouches_only_for_its_failures():
    output = "tzsp-ips-failed 1\r\nconnection lost\r\n"
    assert replies.batch_outcomes(output, [0, 1, 2]) == {0: None, 1: False, 2: None}


def test_a_line_the_router_could_not_parse_says_nothing_about_any_address():
    output = "syntax error (line 1 column 5)\r\n"
    assert replies.batch_outcomes(output, [4, 5]) == {4: None, 5: None}


def test_a_mark_must_be_the_whole_line():
    output = "x tzsp-ips-failed 1\r\ntzsp-ips-failed 2 trailing\r\n  tzsp-ips-failed 3  \r\nnot tzsp-ips-done\r\n"
    assert replies.batch_outcomes(output, [1, 2, 3]) == {1: None, 2: None, 3: False}


# -- over real SSH against routeros-sim ------------------------------------------------------------


@pytest.fixture
def lab(tmp_path):
    lab = Lab(tmp_path)
    lab.add("r1")
    yield lab
    lab.close()


def session(lab) -> RouterSession:
    return RouterSession(lab.config().routers[0])


def test_a_storm_goes_in_few_execs_and_every_block_lands(lab):
    blocks = [(a, 3600.0, "tzsp-ips [1:1000001:1] STORM attack") for a in ADDRESSES]
    with session(lab) as ssh:
        outcomes = ssh.add_blocks(blocks)
    assert outcomes == ["added"] * len(blocks)
    assert set(lab.entries("r1")) == {str(a) for a in ADDRESSES}
    execs = [c for user, c in lab.sims["r1"].commands_log if user == "ips"]
    assert 3 <= len(execs) <= 10  # ~17 adds per line, not one exec per block
    assert all(len(c) <= commands.BATCH_LINE_MAX for c in execs)


def test_a_duplicate_or_a_refusal_stops_nothing_and_each_outcome_is_its_own(lab):
    sim = lab.sims["r1"]
    sim.state.profile = RouterProfile(flavour="v6")  # takes shorter timeouts than v7
    existing, refused = ADDRESSES[1], ADDRESSES[3]
    assert sim.execute("ips", commands.render_add(None, LIST, existing, 60, "by hand")).output == ""
    blocks = [(a, 3600.0, "storm") for a in ADDRESSES[:6]]
    blocks[3] = (refused, 10**9, "too long")  # rendered as v7's longest, which v6 refuses
    with session(lab) as ssh:
        outcomes = ssh.add_blocks(blocks)
    assert outcomes[:3] == ["added", "refreshed", "added"] and outcomes[4:] == ["added", "added"]
    assert isinstance(outcomes[3], RouterCommandError) and outcomes[3].kind == "out-of-range"
    entries = lab.entries("r1")
    assert str(refused) not in entries and {str(a) for a in ADDRESSES[:6]} - set(entries) == {str(refused)}
    assert entries[str(existing)].timeout > 3000  # re-armed: the duplicate went again alone
