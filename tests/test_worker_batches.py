"""The worker sends a pass's adds and removes in batches to routers reached over the API.

Real ApiSessions against routeros-sim over api-ssl. A thin recording proxy around each session
counts the batch calls (each costs a few round trips, however many blocks it carries) and, in
one test, stands in for a per-block refusal the simulator cannot produce. The SSH path (one
exec per block) is checked to be unchanged.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time

import pytest
from responder_rig import LIST, Lab, wait_until
from test_api_responder import ApiLab

from responder.errors import RouterCommandError, RouterError
from responder.events import BlockRequest
from responder.responder import Responder, default_session_factory
from responder.routeros.duration import parse_duration
from responder.sync import step_runner
from responder.transport.api import ApiSession

BASE = int(ipaddress.ip_address("198.18.0.1"))


@pytest.fixture
def lab(tmp_path, host_key, ca):
    lab = ApiLab(tmp_path, host_key, ca)
    yield lab
    lab.close()


def addresses(count, start=0):
    return [ipaddress.ip_address(BASE + start + i) for i in range(count)]


class Recorder:
    """Session factory whose sessions log every add/remove call: (router, verb, addresses, error)."""

    def __init__(self, factory=default_session_factory):
        self.factory = factory
        self.calls = []
        self.before_batch = lambda router, verb, batch: None  # a hook run before a batch is sent
        self.refuse = {}  # address -> message: answered as a refusal instead of being sent

    def __call__(self, cfg):
        session = self.factory(cfg)
        # the proxy offers the batches the session has (SSH: adds only), and invents none
        if hasattr(session, "remove_blocks"):
            return BatchRecordingSession(self, session)
        return (AddBatchRecordingSession if hasattr(session, "add_blocks") else RecordingSession)(self, session)

    def of(self, router, verb):
        return [call for call in self.calls if call[0] == router and call[1] == verb]


class RecordingSession:
    def __init__(self, recorder, session):
        self._recorder, self._session = recorder, session

    def __getattr__(self, name):  # connect, close, connected, list_blocks, uptime: the real session's
        return getattr(self._session, name)

    def _call(self, verb, items, send, key=lambda item: item):
        router = self._session.name
        self._recorder.before_batch(router, verb, items)
        record = [router, verb, [key(item) for item in items], None]
        self._recorder.calls.append(record)
        try:
            return send(items)
        except RouterError as exc:
            record[3] = exc
            raise

    def add_block(self, address, timeout_s, comment):
        return self._call("add_block", [address], lambda _: self._session.add_block(address, timeout_s, comment))

    def remove_block(self, address):
        return self._call("remove_block", [address], lambda _: self._session.remove_block(address))


class AddBatchRecordingSession(RecordingSession):
    def add_blocks(self, blocks):
        blocks = list(blocks)
        refuse = self._recorder.refuse
        sent = [b for b in blocks if b[0] not in refuse]
        outcomes = iter(self._call("add_blocks", sent, self._session.add_blocks, key=lambda b: b[0]))
        return [
            RouterCommandError(self._session.name, refuse[b[0]], kind="other") if b[0] in refuse else next(outcomes)
            for b in blocks
        ]


class BatchRecordingSession(AddBatchRecordingSession):
    def remove_blocks(self, addresses):
        return self._call("remove_blocks", list(addresses), self._session.remove_blocks)


def queued_responder(lab, recorder, requests, config=None, *, start=True):
    """A responder whose ledger holds ``requests`` before its workers start (so one pass sees them all)."""
    responder = Responder(
        config or lab.config(), session_factory=recorder, backoff_base=0.05, backoff_cap=0.3, poll_interval=0.1
    )
    lab.responders.append(responder)
    for request in requests:
        responder.block(request)
    if start:
        responder.start()
    return responder


def statuses(responder, router, addrs):
    return [(responder.states(a)[router] or None) and responder.states(a)[router].status for a in addrs]


def all_status(responder, router, addrs, wanted):
    return all(s == wanted for s in statuses(responder, router, addrs))


def request(address, duration=600.0, sid="1:9"):
    return BlockRequest(address, duration, "burst", sid, requested_at=time.time())


# -- bursts ----------------------------------------------------------------------------------------


def test_a_burst_to_three_api_routers_costs_a_few_batches_not_a_round_trip_per_block(lab):
    for name in ("r1", "r2", "r3"):
        lab.add(name)
    recorder = Recorder()
    burst = addresses(300)
    durations = {a: 300.0 + 3 * i for i, a in enumerate(burst)}  # each its own timeout
    responder = queued_responder(lab, recorder, [request(a, durations[a]) for a in burst])
    assert wait_until(lambda: all(all_status(responder, n, burst, "applied") for n in ("r1", "r2", "r3")), timeout=30)
    for name in ("r1", "r2", "r3"):
        batches = recorder.of(name, "add_blocks")
        assert [len(b[2]) for b in batches] == [step_runner.BATCH, 300 - step_runner.BATCH]
        assert len(batches) == math.ceil(300 / step_runner.BATCH) and not recorder.of(name, "add_block")
        assert len(lab.adds(name)) == 300  # every block sent once
        entries = lab.entries(name)
        for address in burst:
            # the simulator's clock ran on while we looked: a few seconds under what was asked
            assert durations[address] - 15 <= entries[str(address)].timeout <= durations[address]
        sent = {
            c.split("=address=")[1].split()[0]: parse_duration(c.split("=timeout=")[1].split()[0])
            for c in lab.adds(name)
        }
        assert all(durations[a] - 10 <= sent[str(a)] <= durations[a] for a in burst)


def test_outcomes_in_one_batch_are_recorded_block_by_block(lab):
    sim = lab.add("r1")
    sim.add_user("admin", password="x", policies=("ssh", "read", "write"))
    static, short, refused, *fresh = addresses(8)
    sim.execute("admin", f"/ip firewall address-list add list={LIST} address={short} timeout=1m")
    recorder = Recorder()
    # by hand, no timeout, after the worker's listing: the router answers the add as a duplicate
    recorder.before_batch = lambda router, verb, batch: sim.execute(
        "admin", f"/ip firewall address-list add list={LIST} address={static}"
    )
    recorder.refuse[refused] = "failure: simulated refusal of this one entry"
    everything = [static, short, refused, *fresh]
    responder = queued_responder(lab, recorder, [request(a) for a in everything])
    assert wait_until(
        lambda: statuses(responder, "r1", everything) == ["applied", "applied", "failed"] + ["applied"] * 5
    )
    [batch] = recorder.of("r1", "add_blocks")
    assert batch[2] == [static, short, *fresh]
    entries = lab.entries("r1")
    assert entries[str(static)].timeout is None and not entries[str(static)].dynamic  # "present": left alone
    assert 590 <= entries[str(short)].timeout <= 600  # "refreshed"
    assert str(refused) not in entries
    state = responder.states(refused)["r1"]
    assert "simulated refusal" in state.last_error and state.attempts == 1
    assert all(responder.states(a)["r1"].last_error is None for a in fresh)
    # a refusal is retried at the next reconcile, in a batch of its own
    del recorder.refuse[refused]
    responder.reconcile_now()
    assert wait_until(lambda: statuses(responder, "r1", [refused]) == ["applied"])
    assert recorder.of("r1", "add_blocks")[-1][2] == [refused]


def test_a_permission_error_for_the_whole_batch_marks_each_block_failed(lab):
    lab.add("good")
    lab.add("readonly", policies=("api", "read"))
    recorder = Recorder()
    burst = addresses(40)
    responder = queued_responder(lab, recorder, [request(a) for a in burst])
    assert wait_until(
        lambda: all_status(responder, "good", burst, "applied") and all_status(responder, "readonly", burst, "failed")
    )
    for address in burst:
        state = responder.states(address)["readonly"]
        assert "router readonly" in state.last_error and "not enough permissions" in state.last_error
        assert "api,read,write" in state.last_error and state.attempts == 1
    assert [len(b[2]) for b in recorder.of("readonly", "add_blocks")] == [40]
    assert "not enough permissions" in responder.status()[1].last_error
    assert lab.entries("readonly") == {}


def test_a_connection_lost_mid_batch_leaves_the_unsent_pending_until_reconnect(lab):
    sim = lab.add("r1", latency=0.005)  # 200 adds take about a second: time to cut in
    port = lab.ports["r1"]
    recorder = Recorder()
    burst = addresses(200)
    taken_before_drop = []

    def cut_when_some_landed():
        if wait_until(lambda: len(lab.adds("r1")) >= 40, timeout=20):
            sim.stop_api(tls=True)  # drops the session; returns once its threads are done
            taken_before_drop.extend(c.split("=address=")[1].split()[0] for c in lab.adds("r1"))
            sim.latency = 0.0
            sim.start_api("127.0.0.1", port, tls=True)

    cutter = threading.Thread(target=cut_when_some_landed, daemon=True)
    cutter.start()
    responder = queued_responder(lab, recorder, [request(a) for a in burst])
    cutter.join(30)
    assert 40 <= len(taken_before_drop) < 200
    assert wait_until(lambda: all_status(responder, "r1", burst, "applied"), timeout=30)
    first, *later = recorder.of("r1", "add_blocks")
    assert len(first[2]) == 200 and first[3] is not None  # the batch broke off with a connection error
    resent = [str(a) for call in later for a in call[2]]
    # what the router took before the drop is confirmed by the listing after reconnecting, not sent again
    assert not set(resent) & set(taken_before_drop)
    assert set(resent) | set(taken_before_drop) == {str(a) for a in burst}
    assert len(lab.entries("r1")) == 200


def test_a_result_for_an_older_generation_is_not_recorded(lab):
    lab.add("r1")
    recorder = Recorder()
    burst = addresses(10)
    unblocked = burst[3]

    def unblock_during_first_batch(router, verb, batch):
        if verb == "add_blocks" and len(recorder.calls) == 0:
            responder.ledger.record_unblock(unblocked, ["r1"], time.time())  # lands while the add is in flight

    recorder.before_batch = unblock_during_first_batch
    responder = queued_responder(lab, recorder, [request(a) for a in burst], start=False)
    responder.start()
    assert wait_until(lambda: statuses(responder, "r1", [unblocked]) == ["removed"])
    assert all_status(responder, "r1", [a for a in burst if a != unblocked], "applied")
    assert str(unblocked) not in lab.entries("r1")
    assert [call[2] for call in recorder.of("r1", "remove_blocks")] == [[unblocked]]


def test_unblocks_go_in_batches_too(lab):
    lab.add("r1")
    recorder = Recorder()
    burst = addresses(30)
    responder = queued_responder(lab, recorder, [request(a) for a in burst])
    assert wait_until(lambda: all_status(responder, "r1", burst, "applied"))
    stranger = ipaddress.ip_address("192.0.2.200")  # never blocked here: removing it is a no-op
    for address in burst + [stranger]:
        responder.unblock(address)
    assert wait_until(lambda: all_status(responder, "r1", burst + [stranger], "removed"))
    assert lab.entries("r1") == {}
    removed = [a for call in recorder.of("r1", "remove_blocks") for a in call[2]]
    assert sorted(removed) == sorted(burst + [stranger])
    assert len(recorder.of("r1", "remove_blocks")) < 10 and not recorder.of("r1", "remove_block")


def test_a_huge_backlog_shows_progress_between_batches_and_stops_between_them(lab, monkeypatch):
    monkeypatch.setattr(step_runner, "BATCH", 10)
    lab.add("r1")
    recorder = Recorder()
    burst = addresses(35)
    seen_applied = []

    def at_second_batch(router, verb, batch):
        if verb == "add_blocks" and len(recorder.calls) == 1:
            seen_applied.append(sum(s == "applied" for s in statuses(responder, "r1", burst)))
            threading.Thread(target=worker.stop, daemon=True).start()
            assert worker._stopping.wait(5)  # the stop is asked for while this batch runs

    recorder.before_batch = at_second_batch
    responder = queued_responder(lab, recorder, [request(a) for a in burst], start=False)
    worker = responder._workers["r1"]
    responder.start()
    assert wait_until(lambda: worker._thread is not None and not worker._thread.is_alive())
    assert seen_applied == [10]  # the first batch was in the ledger before the second went out
    assert [len(b[2]) for b in recorder.of("r1", "add_blocks")] == [10, 10]
    assert [s for s in statuses(responder, "r1", burst)].count("pending") == 15


# -- the session's batch calls -------------------------------------------------------------------


def test_remove_blocks_judges_each_address(lab):
    lab.add("r1")
    lab.add("readonly", policies=("api", "read"))
    v4, v6, absent = ipaddress.ip_address("203.0.113.7"), ipaddress.ip_address("2001:db8::66"), addresses(1)[0]
    with ApiSession(lab.cfg("r1")) as session:
        assert session.add_blocks([(v4, 300, "x"), (v6, 300, "x")]) == ["added", "added"]
        assert session.remove_blocks([v4, absent, v6]) == [True, False, True]
        assert session.list_blocks() == {}
        assert session.remove_blocks([]) == []
        with pytest.raises(AttributeError):  # nothing is sent for a batch holding a non-address
            session.remove_blocks([v4, "203.0.113.8"])
    lab.sims["readonly"].add_user("admin", password="x", policies=("ssh", "read", "write"))
    lab.sims["readonly"].execute("admin", f"/ip firewall address-list add list={LIST} address={v4}")
    with ApiSession(lab.cfg("readonly")) as session:
        refused, gone = session.remove_blocks([v4, absent])
        assert isinstance(refused, RouterCommandError) and refused.kind == "permission" and gone is False
        with pytest.raises(RouterCommandError):
            session.remove_block(v4)
    assert str(v4) in lab.entries("readonly")


# -- SSH: one exec per block, as before ------------------------------------------------------------


def test_ssh_routers_get_their_adds_batched_in_one_exec_line(tmp_path):
    lab = Lab(tmp_path)
    try:
        lab.add("ssh1")
        recorder = Recorder()
        burst = addresses(4)
        responder = queued_responder(lab, recorder, [request(a) for a in burst])
        assert wait_until(lambda: all_status(responder, "ssh1", burst, "applied"))
        assert [c[2] for c in recorder.calls if c[1].startswith("add")] == [burst]
        assert {c[1] for c in recorder.calls} == {"add_blocks"}
        assert len(lab.adds("ssh1")) == 4  # each add on its own, unpacked from the batch line
        assert len([c for u, c in lab.sims["ssh1"].commands_log if u == "ips" and " add " in c]) == 1
    finally:
        lab.close()
