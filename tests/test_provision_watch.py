"""/health and the status page warn when a router drifts from its provisioning (bridge.watching.provisioning).

The checks run over real SSH against routeros-sim, as the responder's own user, in a background
thread: asking never waits for a router.
"""

from __future__ import annotations

import ipaddress
import threading

from responder_rig import Lab

from bridge.watching.provisioning import ProvisionWatch
from bridge.watching.status import Snapshot, health_problems, render_page
from responder.provision import ProvisionPlan
from responder.provision.apply import apply_plan
from responder.sim.router.users import ALL_POLICIES

DEADLINE = 30.0


def provisioned_lab(tmp_path):
    lab = Lab(tmp_path)
    sim = lab.add("r1")
    sim.add_user("admin", password="pw", policies=ALL_POLICIES)
    plan = ProvisionPlan(
        router="r1", router_host="127.0.0.1", this_host=ipaddress.ip_address("127.0.0.1"), syslog_port=5514
    )
    result = apply_plan(lambda command: sim.execute("admin", command).output, plan)
    assert not result.errors and not result.drift
    return lab, sim


def round_of(watch):
    watch.warnings()  # starts a round
    assert watch.wait(DEADLINE)
    return watch.warnings()


def test_a_provisioned_router_gives_no_warning_and_each_drift_one_with_its_fix(tmp_path):
    lab, sim = provisioned_lab(tmp_path)
    try:
        watch = ProvisionWatch(lab.config().routers, remote_logging=True, interval=0.0)
        assert round_of(watch) == []

        sim.execute("admin", "/ip firewall filter add chain=forward action=accept place-before=[:pick [find] 0]")
        sim.execute("admin", "/system logging action remove [find where name=tzspips]")
        warnings = round_of(watch)
        assert len(warnings) == 3, warnings  # the two forward drops below the accept, the log action
        assert all(w.startswith("router r1 provisioning: ") for w in warnings)
        assert any(
            "misplaced: IPv4 filter forward: drop sources" in w and "fix: /ip firewall filter move" in w
            for w in warnings
        )
        assert any("missing: remote log action tzspips" in w for w in warnings)
        assert all(w.endswith("(or snort-bridge provision r1 --apply)") for w in warnings)

        snap = Snapshot(now=1000.0, started=900.0, provisioning=tuple(warnings))
        problems = health_problems(snap, silent_after=None)
        assert problems == warnings  # /health: 503 with them
        assert "misplaced: IPv4 filter forward" in render_page(snap, problems)  # the page's problem box
    finally:
        lab.close()


def test_without_a_syslog_listener_logging_is_not_asked_for(tmp_path):
    lab, sim = provisioned_lab(tmp_path)
    try:
        sim.execute("admin", "/system logging action remove [find where name=tzspips]")
        sim.execute("admin", "/system logging remove [find where action=tzspips]")
        assert round_of(ProvisionWatch(lab.config().routers, remote_logging=False, interval=0.0)) == []
    finally:
        lab.close()


def test_asking_never_waits_for_the_routers_and_rounds_are_spaced(tmp_path):
    lab = Lab(tmp_path)
    lab.add("r1")
    release, calls = threading.Event(), []

    def slow_checker(cfg, items):
        calls.append(cfg.name)
        release.wait(DEADLINE)
        return []

    try:
        now = [0.0]
        watch = ProvisionWatch(lab.config().routers, True, interval=600.0, checker=slow_checker, clock=lambda: now[0])
        assert watch.warnings() == []  # answered while the check still runs
        assert watch.warnings() == [] and not watch.wait(0.05)
        release.set()
        assert watch.wait(DEADLINE) and calls == ["r1"]
        now[0] = 599.0
        watch.warnings()
        assert watch.wait(DEADLINE) and calls == ["r1"]  # not again within the interval
        now[0] = 600.0
        watch.warnings()
        assert watch.wait(DEADLINE) and calls == ["r1", "r1"]
    finally:
        release.set()
        lab.close()
