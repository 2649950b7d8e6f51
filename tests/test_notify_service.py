"""Notifications through the real service path: a 10,000-block storm from an alert file to a webhook.

`Service` (what `snort-bridge run` runs) follows a real file; its one router is down (a closed port),
so every block stays pending in the ledger and the worker reports the router down. The webhook is
a local HTTP server taking apprise's json:// posts. Blocking must take every decision whatever the
notifications do; the people on call get a handful of messages that count all 10,000.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import threading
import time

import pytest
from conftest import wait_for
from notify_rig import JsonReceiver, free_port
from responder_rig import write_ed25519

from bridge.config.load import load_config
from bridge.service.service import Service

STORM = 10_000
ATTACKERS = ipaddress.ip_address("11.0.0.0")


@contextlib.contextmanager
def serving(service: Service, join: float = 30):
    """``service`` (started) runs its loop in a thread until the block ends; yields that thread."""
    runner = threading.Thread(target=service.run, daemon=True)
    runner.start()
    try:
        yield runner
    finally:
        service.request_stop()
        runner.join(join)


def fast(src: str, sid: int) -> str:
    return (
        f'12/04-10:00:00.000001 [**] [1:{sid}:1] "TEST attack {sid}" [**] [Priority: 1] '
        f"{{TCP}} {src}:4444 -> 10.1.2.3:80\n"
    )


def storm_config(tmp_path, alerts, notify: bool) -> str:
    key = tmp_path / "id_ed25519"
    write_ed25519(key)
    (tmp_path / "known_hosts").write_text("")
    text = f'''
state_dir = "{tmp_path / "state"}"
[policy]
protected = ["10.0.0.0/8"]
block_for = "10m"
max_new_blocks_per_minute = 1000000
[[alerts]]
path = "{alerts}"
format = "fast"
[[routers]]
name = "core1"
host = "127.0.0.1"
port = {free_port()}
key_file = "{key}"
known_hosts = "{tmp_path / "known_hosts"}"
connect_timeout = "1s"
'''
    if notify:
        text += (
            '[notify]\nurls_env = "TZSP_IPS_TEST_NOTIFY"\nmin_interval = "3s"\n'
            'events = ["block", "router_down", "router_up", "flood_guard"]\n'
        )
    path = tmp_path / "config.toml"
    path.write_text(text)
    return str(path)


def run_storm(tmp_path, notify: bool) -> Service:
    alerts = tmp_path / "alert_fast.txt"
    alerts.write_text("")
    service = Service(load_config(storm_config(tmp_path, alerts, notify)))
    service.start()
    with serving(service, join=60) as runner:
        with open(alerts, "a") as handle:
            handle.write("".join(fast(str(ATTACKERS + n), 1000101 + n % 3) for n in range(STORM)))
        assert wait_for(lambda: service.pipeline.counts.blocks == STORM, 180), service.status_text()
        ledger = service.responder.ledger
        assert len([r for r in ledger.blocks(time.time()) if r.state == "active"]) == STORM
    assert not runner.is_alive()
    return service


@pytest.mark.slow
def test_a_storm_of_ten_thousand_blocks_gives_a_handful_of_messages_that_count_them_all(tmp_path, monkeypatch):
    with JsonReceiver() as hook:
        monkeypatch.setenv("TZSP_IPS_TEST_NOTIFY", hook.url)
        service = run_storm(tmp_path, notify=True)
        assert service.notifications is None  # stopped with the service
        blocks = [p for p in hook.posts if "block" in p["title"]]
        routers = [p for p in hook.posts if "router" in p["title"]]
    told = 0
    for post in blocks:
        many = re.search(r": ([\d,]+) blocks (?:in |at once)", post["title"])
        told += int(many[1].replace(",", "")) if many else 1
    assert told == STORM, [p["title"] for p in blocks]  # every block counted, none twice
    assert 1 <= len(blocks) <= 12, [p["title"] for p in blocks]  # a handful, not 10,000
    assert any("1:1000101  TEST attack 1000101" in p["message"] for p in blocks)
    [down] = routers  # the router behind a closed port, told once
    assert down["title"].endswith("router core1 down") and "UNREACHABLE" in down["message"]


def test_reload_rebuilds_the_notifications_and_a_bad_notify_is_refused(tmp_path, monkeypatch):
    alerts = tmp_path / "alert_fast.txt"
    alerts.write_text("")
    path = tmp_path / "config.toml"

    def write(env: str) -> None:
        path.write_text(
            f'state_dir = "{tmp_path / "state"}"\n[[alerts]]\npath = "{alerts}"\nformat = "fast"\n'
            f'[notify]\nurls_env = "{env}"\nmin_interval = "1s"\nevents = ["block"]\n'
        )

    with JsonReceiver() as first, JsonReceiver() as second:
        monkeypatch.setenv("HOOK_A", first.url)
        monkeypatch.setenv("HOOK_B", second.url)
        write("HOOK_A")
        service = Service(load_config(str(path)))
        service.start()
        old = service.notifications
        write("HOOK_B")
        assert service.reload() and service.notifications is not old and old._stopping.is_set()
        write("HOOK_UNSET")
        assert not service.reload()  # the environment variable is empty: refused, HOOK_B stays
        with serving(service):
            with open(alerts, "a") as handle:
                handle.write(fast("203.0.113.7", 1000101))
            assert wait_for(lambda: second.posts, 30)
        assert first.posts == [] and "blocked 203.0.113.7" in second.posts[0]["title"]


def test_a_router_down_at_start_then_up_says_how_long_and_what_catches_up(tmp_path, monkeypatch):
    """A real router (routeros-sim over SSH) that is not there at start, then comes up."""
    from responder_rig import Lab

    lab = Lab(tmp_path)
    port = free_port()
    sim = lab.add("core1", start=False, port=port)
    alerts = tmp_path / "alert_fast.txt"
    alerts.write_text("")
    table = lab.router_table("core1", port, connect_timeout="2s")
    path = tmp_path / "config.toml"
    path.write_text(
        f'state_dir = "{tmp_path / "state"}"\n[policy]\nprotected = ["10.0.0.0/8"]\n'
        f'[[alerts]]\npath = "{alerts}"\nformat = "fast"\n'
        '[notify]\nurls_env = "TZSP_IPS_TEST_NOTIFY"\nmin_interval = "2s"\n'
        "[[routers]]\n" + "".join(f'{k} = "{v}"\n' if isinstance(v, str) else f"{k} = {v}\n" for k, v in table.items())
    )
    with JsonReceiver() as hook:
        monkeypatch.setenv("TZSP_IPS_TEST_NOTIFY", hook.url)
        service = Service(load_config(str(path)))
        service.start()
        with serving(service):
            assert wait_for(lambda: any("router core1 down" in p["title"] for p in hook.posts), 30), hook.posts
            with open(alerts, "a") as handle:
                handle.write("".join(fast(f"203.0.113.{n}", 1000101) for n in (1, 2, 3)))
            assert wait_for(lambda: service.pipeline.counts.blocks == 3, 30)
            sim.start("127.0.0.1", port)
            assert wait_for(lambda: any("router core1 up" in p["title"] for p in hook.posts), 60), hook.posts
            assert wait_for(lambda: all(f"203.0.113.{n}" in lab.entries("core1") for n in (1, 2, 3)), 30)
            lab.close()
    down = next(p for p in hook.posts if "router core1 down" in p["title"])
    up = next(p for p in hook.posts if "router core1 up" in p["title"])
    assert "core1 is UNREACHABLE since" in down["message"] and "router core1:" in down["message"], down["message"]
    assert "core1 is reachable again after" in up["message"] and "3 pending blocks catching up now" in up["message"]
    assert up["type"] == "success" and down["type"] == "failure"


@contextlib.contextmanager
def silence_watched(tmp_path, monkeypatch, alerts_path, silent_after: str):
    """A running Service told only of silent sensors, following ``alerts_path``; yields the receiver."""
    path = tmp_path / "config.toml"
    path.write_text(
        f'state_dir = "{tmp_path / "state"}"\n[[alerts]]\npath = "{alerts_path}"\nformat = "fast"\n'
        '[notify]\nurls_env = "TZSP_IPS_TEST_NOTIFY"\nmin_interval = "1s"\n'
        f'silent_after = "{silent_after}"\nevents = ["sensor_silent"]\n'
    )
    with JsonReceiver() as hook:
        monkeypatch.setenv("TZSP_IPS_TEST_NOTIFY", hook.url)
        service = Service(load_config(str(path)))
        service.start()
        with serving(service):
            yield hook


def test_a_silent_alert_file_is_told_once_and_again_when_it_speaks(tmp_path, monkeypatch):
    alerts = tmp_path / "alert_fast.txt"
    alerts.write_text("")
    with silence_watched(tmp_path, monkeypatch, alerts, "2s") as hook:
        assert wait_for(lambda: len(hook.posts) == 1, 30)
        time.sleep(1.5)  # still silent: told once, not again
        assert len(hook.posts) == 1
        with open(alerts, "a") as handle:
            handle.write("not an alert, but the file is alive\n")
        assert wait_for(lambda: len(hook.posts) == 2, 30)
    silent, back = hook.posts
    assert silent["title"].endswith(f"sensor silent: {alerts}") and "no line for 2s" in silent["message"]
    assert back["title"].endswith(f"sensor back: {alerts}") and back["type"] == "success"


def test_each_file_of_a_glob_alerts_path_is_a_sensor_of_its_own(tmp_path, monkeypatch):
    sensors = tmp_path / "sensors"
    files = {name: sensors / name / "alert_fast.txt" for name in ("sensor1", "sensor2")}
    for alerts in files.values():
        alerts.parent.mkdir(parents=True)
        alerts.write_text("")
    with silence_watched(tmp_path, monkeypatch, sensors / "*" / "alert_fast.txt", "3s") as hook:
        for alerts in files.values():
            with open(alerts, "a") as handle:
                handle.write("a line: this sensor is alive\n")
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and not hook.posts:  # sensor1 speaks on, sensor2 falls silent
            with open(files["sensor1"], "a") as handle:
                handle.write("still alive\n")
            time.sleep(0.5)
        time.sleep(1.5)
    titles = [post["title"] for post in hook.posts]
    assert titles and all(title.endswith(f"sensor silent: {files['sensor2']}") for title in titles), titles


def guard_config(path, alerts, limit: int) -> None:
    path.write_text(
        f'state_dir = "{path.parent / "state"}"\n[policy]\nprotected = ["10.0.0.0/8"]\n'
        f'max_new_blocks_per_minute = {limit}\n[[alerts]]\npath = "{alerts}"\nformat = "fast"\n'
        '[notify]\nurls_env = "TZSP_IPS_TEST_NOTIFY"\nmin_interval = "1s"\nevents = ["flood_guard"]\n'
    )


def run_guard(tmp_path, monkeypatch, then) -> list:
    """Trip the flood guard of a running Service (limit 2, five attackers), then ``then(service, path)``."""
    alerts = tmp_path / "alert_fast.txt"
    alerts.write_text("")
    path = tmp_path / "config.toml"
    guard_config(path, alerts, 2)
    with JsonReceiver() as hook:
        monkeypatch.setenv("TZSP_IPS_TEST_NOTIFY", hook.url)
        service = Service(load_config(str(path)))
        service.start()
        with serving(service):
            with open(alerts, "a") as handle:
                handle.write("".join(fast(f"203.0.113.{n}", 1000101) for n in range(1, 6)))
            assert wait_for(lambda: len(hook.posts) == 1, 30), hook.posts
            then(service, path)
            assert wait_for(lambda: len(hook.posts) == 2, 30), hook.posts
            time.sleep(1.5)  # nothing more: the resume is told once
        return hook.posts


def test_the_flood_guard_resume_is_told_when_its_quiet_minute_is_over(tmp_path, monkeypatch):
    monkeypatch.setattr("bridge.decide.policy.FLOOD_WINDOW", 2.0)  # a quiet "minute" of 2 s
    trip, cleared = run_guard(tmp_path, monkeypatch, lambda service, path: None)  # no alert: the loop's clock
    assert trip["title"].endswith("FLOOD GUARD tripped: blocking stopped") and trip["type"] == "failure"
    assert "cleared: blocking resumed after 2s; 3 block decisions held back" in cleared["title"], cleared["title"]
    assert "a quiet minute passed" in cleared["message"] and cleared["type"] == "success"


def test_a_reload_with_new_flood_guard_limits_resumes_blocking_and_says_so(tmp_path, monkeypatch):
    def reload(service, path):
        guard_config(path, tmp_path / "alert_fast.txt", 100)
        service.request_reload()  # done by the processing thread, as SIGHUP does
        assert wait_for(lambda: service.config.policy.max_new_blocks_per_minute == 100, 30)

    trip, cleared = run_guard(tmp_path, monkeypatch, reload)
    assert "tripped" in trip["title"]
    assert (
        "FLOOD GUARD cleared: blocking resumed after" in cleared["title"]
        and "3 block decisions held back" in cleared["title"]
    )
    assert "a reload replaced it" in cleared["message"]
