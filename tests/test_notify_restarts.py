"""snort_restarted: tzspd's consumer restarts, polled from its /metrics and told to the people on call.

The pure parts (reading the exposition, the baseline, a tzspd restart, the words) without sockets;
the poller's bounded GET against small local servers; and a real tzspd whose --exec consumer
exits after one packet, read by the real poller and told to a local webhook.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import free_port, wait_for
from notify_rig import JsonReceiver
from prometheus_client import CollectorRegistry, generate_latest

from bridge.config import ConfigError, NotifyConfig, parse_config
from bridge.notify.delivery import Endpoint, Notifications
from bridge.notify.digest import SETTLE, Digester
from bridge.notify.poller import TzspdPoller, fetch, metrics_url
from bridge.notify.restarts import TOTAL, RestartWatch, SnortRestarted, TzspdUnreachable, read_metrics
from bridge.notify.text import utc
from responder.feed import Feed
from tzsp.metrics import TzspdCollector
from tzsp.output import Consumer, ExecSink
from tzsp.stats import Counters

T0 = 1_796_342_400.0  # 2026-12-04 00:00:00 UTC
SENSOR = "10.0.0.5:9471"


def exposition(restarts=(0, 0), running=(True, True), started=1_796_000_000.0) -> str:
    """What a real tzspd --fanout N serves: its own collector over consumers in the given state."""
    stats = Counters(consumer_restarts=sum(restarts))
    consumers = []
    for count, alive in zip(restarts, running, strict=True):
        consumer = Consumer([sys.executable, "-c", "pass"], b"H", stats, 1 << 20)
        consumer.starts = count + 1
        if alive:
            consumer.process = type("Running", (), {"returncode": None})()
        else:
            consumer.pending += b"x" * 4096
        consumers.append(consumer)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        TzspdCollector(stats, ExecSink(consumers, split=lambda r: []) if consumers else None, started=started)
    )
    return generate_latest(registry).decode()


# -- reading tzspd's metrics --------------------------------------------------------------------


def test_the_exposition_gives_each_consumers_restarts_whether_it_runs_and_tzspds_start():
    reading = read_metrics(exposition((3, 0), (False, True)))
    assert reading.restarts == {"1": 3, "2": 0}
    assert reading.running == {"1": False, "2": True} and reading.held == {"1": 4096, "2": 0}
    assert reading.started == 1_796_000_000.0
    alone = read_metrics(exposition((), ()))  # tzspd without --exec: only the total
    assert alone.restarts == {TOTAL: 0} and alone.running == {}
    with pytest.raises(ValueError, match="not tzspd's /metrics"):
        read_metrics("# TYPE something_else counter\nsomething_else_total 1\n")


# -- the baseline ------------------------------------------------------------------------------


def test_the_first_reading_is_only_learnt_and_a_rise_is_told_once():
    watch = RestartWatch()
    assert watch.seen(SENSOR, read_metrics(exposition((5, 1))), T0) == ([], None)  # before us: not news
    assert watch.seen(SENSOR, read_metrics(exposition((5, 1))), T0 + 15) == ([], None)
    events, note = watch.seen(SENSOR, read_metrics(exposition((7, 1), (False, True))), T0 + 30)
    assert note is None
    assert events == [SnortRestarted(SENSOR, "1", 2, T0 + 15, T0 + 30, 7, False, 4096, 1_796_000_000.0)]
    assert watch.seen(SENSOR, read_metrics(exposition((7, 1))), T0 + 45) == ([], None)  # no new restart: nothing


def test_a_tzspd_restart_resets_the_baseline_without_a_message():
    watch = RestartWatch()
    watch.seen(SENSOR, read_metrics(exposition((5, 1))), T0)
    events, note = watch.seen(SENSOR, read_metrics(exposition((0, 0))), T0 + 15)  # counters went down
    assert events == [] and "restarted" in note
    assert watch.seen(SENSOR, read_metrics(exposition((1, 0))), T0 + 30)[0][0].restarts == 1  # counted from there
    events, note = watch.seen(SENSOR, read_metrics(exposition((4, 0), started=1_796_100_000.0)), T0 + 45)
    assert events == [] and note  # a new start time, even with higher counts: a new tzspd, learnt afresh


def test_an_unreadable_endpoint_is_told_once_after_two_polls_and_once_when_it_answers():
    watch = RestartWatch()
    assert watch.failed(SENSOR, "connection refused", T0) == []  # one blip is not news
    assert watch.failed(SENSOR, "connection refused", T0 + 15) == [
        TzspdUnreachable(SENSOR, True, T0 + 15, T0, "connection refused")
    ]
    assert watch.failed(SENSOR, "connection refused", T0 + 30) == []  # told once per outage
    events, _ = watch.seen(SENSOR, read_metrics(exposition()), T0 + 45)
    assert events == [TzspdUnreachable(SENSOR, False, T0 + 45, T0)]
    watch.failed(SENSOR, "timed out", T0 + 60)
    assert watch.seen(SENSOR, read_metrics(exposition()), T0 + 75) == ([], None)  # a blip: no "back" either


def test_a_reload_keeps_the_counts_so_restarts_in_between_are_told():
    old, new = RestartWatch(), RestartWatch()
    old.seen(SENSOR, read_metrics(exposition((5, 1))), T0)
    new.carry_over(old)
    assert [e.restarts for e in new.seen(SENSOR, read_metrics(exposition((6, 1))), T0 + 15)[0]] == [1]


def test_rebuilt_notifications_keep_the_counts_of_the_old_ones():
    config = NotifyConfig(urls_env="X", events=("snort_restarted",), tzspd_metrics=(SENSOR,))
    old, new = Notifications(config, []), Notifications(config, [])
    old.poller.watch.seen(SENSOR, read_metrics(exposition((5, 1))), T0)
    new.carry_over(old)
    assert [e.restarts for e in new.poller.watch.seen(SENSOR, read_metrics(exposition((5, 3))), T0 + 15)[0]] == [2]
    assert Notifications(NotifyConfig(urls_env="X", tzspd_metrics=(SENSOR,), events=("block",)), []).poller is None


# -- the words ---------------------------------------------------------------------------------


def digester(events=("snort_restarted",)) -> Digester:
    return Digester(events, 60.0, now=T0, host="ips1")


def restarted(consumer="2", count=3, at=T0 + 15, since=T0, running=True) -> SnortRestarted:
    return SnortRestarted(SENSOR, consumer, count, since, at, 17, running, 0 if running else 2048, T0 - 86400)


def test_a_restart_says_which_sensor_which_consumer_how_often_since_when_and_what_to_check():
    d = digester()
    d.offer(restarted(), T0 + 15)
    [message] = d.due(T0 + 15 + SETTLE)
    assert message.kind == "snort" and message.severity == "warning"
    assert message.title == f"tzsp-ips@ips1: Snort restarted on {SENSOR} (consumer 2), 3 times"
    assert (
        f"{SENSOR} consumer 2: Snort restarted 3 times between {utc(T0)} and 00:00:15 UTC "
        f"(17 in all since tzspd started {utc(T0 - 86400)}); running now"
    ) in message.body
    assert "journalctl -u tzspd" in message.body and "Snort's own log" in message.body


def test_restarts_within_the_interval_are_one_digest_and_a_dead_consumer_is_a_failure():
    d = digester()
    d.offer(restarted(count=1), T0 + 15)
    [first] = d.due(T0 + 15 + SETTLE)
    d.offer(restarted(count=2, at=T0 + 30, since=T0 + 15), T0 + 30)
    d.offer(restarted(count=4, at=T0 + 45, since=T0 + 30, running=False), T0 + 45)
    d.offer(TzspdUnreachable("10.0.0.6:9471", True, T0 + 45, T0 + 30, "connection refused"), T0 + 45)
    assert d.due(T0 + 50) == []
    [digest] = d.due(T0 + 15 + SETTLE + 60)
    assert digest.events == 3 and digest.severity == "failure"
    assert digest.title == (
        f"tzsp-ips@ips1: Snort restarted on {SENSOR} (consumer 2), 6 times; tzspd metrics unreadable: 10.0.0.6:9471"
    )
    assert "restarted 6 times between" in digest.body and "NOT running now (2,048 bytes held for it)" in digest.body
    assert f"10.0.0.6:9471: tzspd's metrics unreadable since {utc(T0 + 30)}: connection refused" in digest.body


def test_nothing_is_queued_without_the_event():
    d = digester(events=("block",))
    assert not d.wants(restarted()) and not d.wants(TzspdUnreachable(SENSOR, True, T0, T0))
    assert digester().wants(restarted())


# -- the configuration -------------------------------------------------------------------------


def test_tzspd_metrics_adds_snort_restarted_to_the_default_events_and_bad_entries_are_named():
    config = parse_config('[notify]\nurls_env = "U"\ntzspd_metrics = ["127.0.0.1:9471", "http://[::1]:9471/metrics"]\n')
    assert config.notify.tzspd_metrics == ("127.0.0.1:9471", "http://[::1]:9471/metrics")
    assert config.notify.events[-1] == "snort_restarted"
    assert "snort_restarted" not in parse_config('[notify]\nurls_env = "U"\n').notify.events
    chosen = parse_config(
        '[notify]\nurls_env = "U"\nevents = ["snort_restarted"]\ntzspd_metrics = ["127.0.0.1:9471"]\n'
    )
    assert chosen.notify.events == ("snort_restarted",)  # chosen events are kept as they are
    with pytest.raises(ConfigError, match=r'notify.tzspd_metrics: set, but notify.events leaves out "snort_restarted"'):
        parse_config('[notify]\nurls_env = "U"\nevents = ["block"]\ntzspd_metrics = ["127.0.0.1:9471"]\n')
    with pytest.raises(ConfigError) as caught:
        parse_config(
            '[notify]\nurls_env = "U"\ntzspd_metrics = ["127.0.0.1", "ftp://h/x", "http://u:pw@h:1/", '
            '"127.0.0.1:9471", "127.0.0.1:9471"]\n'
        )
    problems = caught.value.problems
    assert any(p.startswith('notify.tzspd_metrics[0]: expected "HOST:PORT" of tzspd --metrics') for p in problems)
    assert any(p.startswith("notify.tzspd_metrics[1]: expected") for p in problems)
    assert any(p.startswith("notify.tzspd_metrics[2]: expected no user or password") for p in problems)
    assert "notify.tzspd_metrics[4]: '127.0.0.1:9471' is listed twice; expected each endpoint once" in problems
    with pytest.raises(ConfigError, match=r"notify.tzspd_metrics: expected a list"):
        parse_config('[notify]\nurls_env = "U"\ntzspd_metrics = "127.0.0.1:9471"\n')


# -- the poller's GET, bounded -------------------------------------------------------------------


class Server:
    """A local HTTP server answering every GET with ``answer(handler)``."""

    def __init__(self, answer) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 -- http.server's name
                answer(self)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_get_is_bounded_in_size_and_time_and_never_follows_a_redirect():
    def huge(handler):
        handler.send_response(200)
        handler.end_headers()
        handler.wfile.write(b"#" * (1 << 20))

    def trickle(handler):
        handler.send_response(200)
        handler.end_headers()
        for _ in range(40):
            handler.wfile.write(b"#")
            handler.wfile.flush()
            time.sleep(0.1)

    def redirect(handler):
        handler.send_response(302)
        handler.send_header("Location", "http://192.0.2.1/metrics")
        handler.end_headers()

    servers = [Server(answer) for answer in (huge, trickle, redirect)]
    try:
        with pytest.raises(ValueError, match="larger than"):
            fetch(metrics_url(servers[0].endpoint))
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            fetch(metrics_url(servers[1].endpoint), timeout=1.0)
        assert time.monotonic() - started < 2.5  # 4 s of trickle, cut at the 1 s deadline
        with pytest.raises(OSError, match="302"):
            fetch(metrics_url(servers[2].endpoint))
    finally:
        for server in servers:
            server.close()
    assert metrics_url("10.0.0.5:9471") == "http://10.0.0.5:9471/metrics"
    assert metrics_url("https://h:1/m") == "https://h:1/m"


def test_a_dead_endpoint_is_a_failure_counted_not_an_end_of_the_poller():
    delivered = []
    dead = f"127.0.0.1:{free_port(socket.SOCK_STREAM)}"
    poller = TzspdPoller([dead], delivered.append, timeout=1.0)
    assert poller.poll() == [] and poller.poll() != []
    [event] = delivered
    assert event.unreachable and event.sensor == dead and "refused" in event.error.lower()
    assert poller.failures == 2 and poller.polls == 2


# -- a real tzspd ------------------------------------------------------------------------------


def test_a_real_tzspd_restarting_its_consumer_is_told_once_naming_the_sensor_and_consumer(tmp_path):
    from test_tzspd import Tzspd, send

    from tzsp.codec import encode_frame

    port = free_port(socket.SOCK_STREAM)
    # The pcap header (24 bytes) and one record of a 60-byte frame (16 + 60) make 100 bytes: the
    # consumer reads one packet and exits, and tzspd starts it again (after --exec-backoff).
    consumer = "sh -c 'head -c 100 >/dev/null'"
    endpoint = f"127.0.0.1:{port}"
    config = NotifyConfig(urls_env="X", min_interval=60.0, events=("snort_restarted",), tzspd_metrics=(endpoint,))
    with (
        Tzspd(tmp_path, "--exec", consumer, "--exec-backoff", "0.2", "--metrics", endpoint) as tzspd,
        JsonReceiver() as hook,
    ):
        assert wait_for(lambda: _restarts(endpoint) == 0, 15)  # serving, its consumer started once
        notifications = Notifications(config, [Endpoint(hook.url)], host="ips1", settle=0.1, poll_interval=0.3).start(
            Feed()
        )
        try:
            poller = notifications.poller
            assert wait_for(lambda: poller.polls >= 1, 15)  # the baseline is learnt
            send(tzspd.port, [encode_frame(bytes(60))])
            assert wait_for(lambda: _restarts(endpoint) == 1, 15)
            assert wait_for(lambda: len(hook.posts) == 1, 15), hook.posts
            polls = poller.polls
            assert wait_for(lambda: poller.polls >= polls + 2, 15)  # two more readings, no new restart
            time.sleep(0.3)  # past the settle time of anything they could have found
            assert len(hook.posts) == 1
        finally:
            notifications.stop(timeout=10)
        tzspd.stop()
    [post] = hook.posts
    assert post["title"] == f"tzsp-ips@ips1: Snort restarted on {endpoint} (consumer 1)", post
    assert f"{endpoint} consumer 1: Snort restarted 1 time between" in post["message"]
    assert "journalctl -u tzspd" in post["message"] and post["type"] == "warning"
    assert poller.failures == 0


def _restarts(endpoint):
    try:
        return read_metrics(fetch(metrics_url(endpoint))).restarts.get("1")
    except (OSError, ValueError):
        return None
