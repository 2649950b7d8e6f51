"""Watching it, with the real things: a real Prometheus scrapes a real tzspd and a real
`snort-bridge run` (with one simulated router up and one down) and is asked through its HTTP API;
the status page is loaded in headless Chromium, and the test checks what a person sees."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import urllib.error
import urllib.request

import pytest
from conftest import free_port
from responder_rig import Lab, wait_until
from test_e2e_service import Service, append, fast_line, write_service_config
from test_tzspd import Tzspd, send
from watch_rig import Prometheus, chromium, tallest_run

from bridge.watching.status import ALERT_COLOUR, BLOCK_COLOUR
from tzsp.codec import encode_frame

DEADLINE = 60.0
ATTACKER = "203.0.113.7"
TOKEN = "watch-token-0123456789abcdef"


def colour(hex_text: str) -> tuple:
    return tuple(int(hex_text[i : i + 2], 16) for i in (1, 3, 5))


def get(url: str, token: str = None):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def rig(tmp_path):
    """r1 up, r2 configured but not listening; tzspd with --metrics; the bridge with [http] and a token."""
    lab = Lab(tmp_path)
    lab.add("r1")
    lab.add("r2", start=False, port=free_port(socket.SOCK_STREAM))
    tzspd_metrics = f"127.0.0.1:{free_port(socket.SOCK_STREAM)}"
    tzspd = Tzspd(tmp_path, "--allow", "127.0.0.1/32", "--metrics", tzspd_metrics, "-o", str(tmp_path / "out.pcap"))
    alerts = tmp_path / "alert_fast.txt"
    alerts.write_text("")
    token_file = tmp_path / "http.token"
    token_file.write_text(TOKEN + "\n")
    os.chmod(token_file, 0o600)
    bridge_http = f"127.0.0.1:{free_port(socket.SOCK_STREAM)}"
    config = write_service_config(lab, alerts=alerts)
    with open(config, "a") as handle:
        handle.write(
            f'\n[http]\nlisten = "{bridge_http}"\ntoken_file = "{token_file}"\n'
            f'tzspd = "{tzspd_metrics}"\nsilent_after = "1h"\n'
        )
    service = Service(config, tmp_path / "bridge.log")
    try:
        service.start()
        yield dict(
            lab=lab,
            tzspd=tzspd,
            tzspd_metrics=tzspd_metrics,
            alerts=alerts,
            service=service,
            bridge=f"http://{bridge_http}",
            bridge_http=bridge_http,
            token_file=token_file,
            tmp_path=tmp_path,
            prometheus=lambda: Prometheus(
                tmp_path, {"tzspd": (tzspd_metrics, None), "bridge": (bridge_http, str(token_file))}
            ),
        )
    finally:
        service.kill()
        tzspd.close()
        lab.close()


def test_prometheus_scrapes_tzspd_and_the_bridge(rig):
    lab, service = rig["lab"], rig["service"]
    append(rig["alerts"], fast_line(ATTACKER), "not an alert line\n")
    assert wait_until(lambda: ATTACKER in lab.entries("r1"), DEADLINE), service.text()
    send(rig["tzspd"].port, [encode_frame(bytes(60))] * 4 + [b"\x01"])
    prometheus = rig["prometheus"]()
    try:
        source = str(rig["alerts"])
        expected = {
            "tzspd_datagrams_received_total": 5,
            "tzspd_frames_written_total": 4,
            'tzspd_datagrams_dropped_total{reason="short"}': 1,
            "tzspd_kernel_drops_total": 0,
            "tzspd_consumer_restarts_total": 0,
            f'tzsp_ips_alert_lines_total{{source="{source}"}}': 2,
            f'tzsp_ips_alerts_total{{source="{source}"}}': 1,
            f'tzsp_ips_unparsable_lines_total{{source="{source}"}}': 1,
            'tzsp_ips_decisions_total{action="block",reason="priority"}': 1,
            "tzsp_ips_blocks_in_force": 1,
            'tzsp_ips_router_up{router="r1"}': 1,
            'tzsp_ips_router_up{router="r2"}': 0,
            'tzsp_ips_router_pending{router="r2"}': 1,
            'tzsp_ips_block_latency_seconds_count{router="r1"}': 1,
            "tzsp_ips_flood_guard_tripped": 0,
        }
        seen = {}

        def all_there():
            for expression, _value in expected.items():
                seen[expression] = prometheus.query(expression)
            return all(seen[e] == v for e, v in expected.items())

        assert wait_until(all_there, DEADLINE, interval=0.5), (seen, prometheus.targets_up(), prometheus.text())
        # From the line handled to the entry on r1 on loopback: well under the histogram's 5 s bucket.
        assert prometheus.query('tzsp_ips_block_latency_seconds_bucket{router="r1",le="5.0"}') == 1
        assert prometheus.query('tzsp_ips_router_errors_total{router="r2",kind="connection"}') >= 1
        assert prometheus.targets_up() == {"tzspd": "up", "bridge": "up"}
    finally:
        prometheus.close()


def test_health_and_the_token(rig):
    bridge = rig["bridge"]
    assert get(bridge + "/health")[0] == 401
    assert get(bridge + "/metrics", token="wrong-token-0123456789")[0] == 401
    answers = []

    def r2_down_r1_up():
        answers.append(get(bridge + "/health", token=TOKEN))
        status, body = answers[-1]
        return (
            status == 503
            and len(json.loads(body)["problems"]) == 1
            and json.loads(body)["problems"][0].startswith("router r2 unreachable since ")
        )

    assert wait_until(r2_down_r1_up, DEADLINE, interval=0.5), answers[-1]
    problems = json.loads(answers[-1][1])["problems"]
    assert "refused" in problems[0], problems  # the connection error, as the worker saw it
    assert "refused GET /health from 127.0.0.1: missing or wrong token" in rig["service"].text()
    # tzspd's own /health: its output is a file, nothing to be unwell about.
    assert get(f"http://{rig['tzspd_metrics']}/health") == (200, "ok\n")


def test_status_page_in_chromium(rig):
    lab, service, tmp_path = rig["lab"], rig["service"], rig["tmp_path"]
    append(rig["alerts"], fast_line(ATTACKER))
    assert wait_until(lambda: ATTACKER in lab.entries("r1"), DEADLINE), service.text()
    send(rig["tzspd"].port, [encode_frame(bytes(60))] * 3)
    page = f"{rig['bridge']}/?token={TOKEN}"  # opened once with the token: a cookie keeps it
    dom = chromium(tmp_path, page)
    assert "<h1>tzsp-ips</h1>" in dom, dom[:2000]
    assert f'<code class="addr">{ATTACKER}</code>' in dom  # the blocked address
    assert 'r1: <span class="ok">applied</span>' in dom
    assert '<td>r1</td><td><span class="ok">reachable</span>' in dom
    assert '<td>r2</td><td><span class="bad">unreachable</span>' in dom
    assert "router r2 unreachable since" in dom  # the problem, spelt out
    assert '<rect class="alerts"' in dom and '<rect class="blocks"' in dom
    assert "datagrams received" in dom  # tzspd's counters
    assert "token=" not in dom
    # What was drawn, on a phone and on a desktop: each chart's one alert and one block are bars
    # reaching the top of its scale, far taller than the legend's 10-pixel swatches.
    for size in ((412, 1600), (1280, 1400)):
        shot = tmp_path / f"status-{size[0]}.png"
        chromium(tmp_path, page, screenshot=shot, size=size)
        assert tallest_run(shot, colour(ALERT_COLOUR)) > 60, size
        assert tallest_run(shot, colour(BLOCK_COLOUR)) > 60, size


def test_silent_clients_do_not_slow_the_blocking(rig):
    """Clients that take every HTTP slot and say nothing: alerts are still blocked at once, and
    the page answers again once their time is up."""
    lab, service = rig["lab"], rig["service"]
    host, port = rig["bridge_http"].split(":")
    silent = [socket.create_connection((host, int(port))) for _ in range(8)]
    try:
        append(rig["alerts"], fast_line(ATTACKER))
        assert wait_until(lambda: ATTACKER in lab.entries("r1"), DEADLINE), service.text()
    finally:
        for connection in silent:
            connection.close()
    assert wait_until(lambda: get(rig["bridge"] + "/health", token=TOKEN)[0] in (200, 503), DEADLINE)


def test_config_check_refuses_an_open_listen_without_a_token(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        f'state_dir = "{tmp_path}"\n[[alerts]]\npath = "{tmp_path}/a.txt"\n[http]\nlisten = "0.0.0.0:9470"\n'
    )
    from conftest import console_script

    done = subprocess.run(
        [*console_script("snort-bridge"), "config", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done
    assert "http.token_file: missing" in done.stderr + done.stdout


def test_in_process_service_serves_survives_a_reload_and_closes_its_port(tmp_path):
    import threading

    from bridge.config import load_config
    from bridge.service.service import Service as BridgeService
    from plumbing.sdnotify import Notifier

    alerts = tmp_path / "alert_fast.txt"
    alerts.write_text("")
    port = free_port(socket.SOCK_STREAM)
    config_path = tmp_path / "config.toml"
    text = (
        f'state_dir = "{tmp_path / "state"}"\n[policy]\nprotected = ["10.0.0.0/8"]\n'
        f'[[alerts]]\npath = "{alerts}"\nformat = "fast"\n[http]\nlisten = "127.0.0.1:{port}"\n'
    )
    config_path.write_text(text)
    service = BridgeService(load_config(str(config_path)), notifier=Notifier(environ={}))
    service.start()
    loop = threading.Thread(target=service.run, daemon=True)
    loop.start()
    url = f"http://127.0.0.1:{port}"
    try:
        append(alerts, fast_line(ATTACKER))
        metric = 'tzsp_ips_decisions_total{action="block",reason="priority"} 1.0'
        assert wait_until(lambda: metric in get(url + "/metrics")[1], DEADLINE)
        assert get(url + "/health") == (200, "ok\n")  # no routers to be down, the file is followed
        config_path.write_text(text + "[scan]\nports = 20\n")
        assert service.reload()
        append(alerts, fast_line("198.51.100.9"))
        metric = 'tzsp_ips_decisions_total{action="block",reason="priority"} 2.0'
        assert wait_until(lambda: metric in get(url + "/metrics")[1], DEADLINE)
        # The page is gathered at most once a second: wait for the one that has the new decision.
        assert wait_until(lambda: "198.51.100.9" in get(url + "/")[1], DEADLINE)
        status, page = get(url + "/")
        assert status == 200 and "No routers configured" in page
    finally:
        service.request_stop()
        loop.join(DEADLINE)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
