"""Delivery through apprise to real receivers on loopback: JSON over HTTP, SMTP mail, dead and hanging ports.

`snort-bridge notify test` is run as a process; the service's Notifications are driven through a
real Feed. Waiting is by polling with generous deadlines; the only timed bound is that stopping
does not wait out a hanging endpoint (seconds against its 60 s read timeout).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import subprocess
import time

import pytest
from conftest import console_script, wait_for
from notify_rig import Hanging, JsonReceiver, MailReceiver, free_port
from test_notify_digest import blocked

from bridge.config import ConfigError, NotifyConfig
from bridge.config.load import load_config
from bridge.notify.delivery import Endpoint, Notifications, make_endpoints, read_urls
from responder.feed import Feed, RouterChanged

FAST = NotifyConfig(urls_env="X", min_interval=1.0)
QUICK = (0.05, 0.05, 0.05)  # retry backoff for tests


def write_urls(tmp_path, *urls, mode=0o600) -> str:
    path = tmp_path / "notify.urls"
    path.write_text("# apprise URLs\n" + "".join(f"{url}\n" for url in urls))
    os.chmod(path, mode)
    return str(path)


def write_config(tmp_path, urls_file: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(f'state_dir = "{tmp_path / "state"}"\n[notify]\nurls_file = "{urls_file}"\n')
    return str(path)


def notify_test(config: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*console_script("snort-bridge"), "notify", "test", "--config", config],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_notify_test_sends_to_every_url_and_says_which_worked(tmp_path):
    dead = f"json://127.0.0.1:{free_port()}/hook"
    with JsonReceiver() as hook, MailReceiver() as mail:
        config = write_config(tmp_path, write_urls(tmp_path, hook.url, mail.url, dead))
        result = notify_test(config)
        assert result.returncode == 1, result
        lines = result.stdout.splitlines()
        assert lines[0].startswith(f"OK      1: json://127.0.0.1:{hook.port}/hook")
        assert lines[1].startswith(f"OK      2: mailto://ips:****@127.0.0.1:{mail.port}")
        assert lines[2].startswith("FAILED  3: json://127.0.0.1:") and "Connection error" in lines[2]
        assert "secret" not in result.stdout + result.stderr  # the mail password is masked
        assert "1 of 3 URL(s) failed" in result.stderr
        [post] = hook.posts
        assert post["title"].endswith(": test message") and "notify test" in post["message"]
        [message] = mail.messages
        assert message.rcpt_tos == ["oncall@example.test"] and mail.logins == [True]
        assert b"Subject: tzsp-ips@" in message.content and b"test message" in message.content

        config = write_config(tmp_path, write_urls(tmp_path, hook.url))
        assert notify_test(config).returncode == 0


def test_a_urls_file_others_can_read_is_refused_naming_the_key(tmp_path):
    config = write_config(tmp_path, write_urls(tmp_path, "json://127.0.0.1:9/hook", mode=0o644))
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert any(
        p.startswith("notify.urls_file: ") and "mode 0644" in p and "chmod 600" in p for p in caught.value.problems
    )
    result = notify_test(config)
    assert result.returncode == 2 and "notify.urls_file" in result.stderr


def test_unusable_urls_are_named_by_key_and_number_never_by_their_text(tmp_path):
    with pytest.raises(ConfigError) as caught:
        read_urls(NotifyConfig(urls_env="TZSP_IPS_NOTIFY_URLS"), environ={})
    assert caught.value.problems == [
        "notify.urls_env: environment variable TZSP_IPS_NOTIFY_URLS is not set or empty; expected apprise URLs"
    ]
    urls, key = read_urls(NotifyConfig(urls_env="U"), environ={"U": "json://127.0.0.1:9/a  nope://tok3n@x\n"})
    assert key == "notify.urls_env" and len(urls) == 2
    with pytest.raises(ConfigError) as caught:
        make_endpoints(urls, key)
    assert caught.value.problems == ["notify.urls_env: URL 2 (nope://...) is not an apprise URL apprise can use"]
    empty = write_urls(tmp_path)
    with pytest.raises(ConfigError, match="holds no URL"):
        read_urls(NotifyConfig(urls_file=empty))


def test_blocks_and_routers_reach_a_webhook_and_a_mailbox():
    feed = Feed()
    with JsonReceiver() as hook, MailReceiver() as mail:
        notifications = Notifications(
            FAST, [Endpoint(hook.url), Endpoint(mail.url)], routers=("core1",), host="ips1", settle=0.1
        ).start(feed)
        try:
            feed.publish(blocked("203.0.113.7", time.time()))
            feed.publish(RouterChanged("core1", False, time.time(), "router core1: connection refused"))
            assert wait_for(lambda: len(hook.posts) == 2 and len(mail.messages) == 2, 20)
        finally:
            assert notifications.stop(timeout=10)
    titles = sorted(post["title"] for post in hook.posts)
    assert titles == ["tzsp-ips@ips1: blocked 203.0.113.7 (web attack)", "tzsp-ips@ips1: router core1 down"]
    block = next(p for p in hook.posts if "blocked" in p["title"])
    assert "snort-bridge unblock 203.0.113.7" in block["message"] and block["type"] == "warning"
    assert any(b"snort-bridge unblock 203.0.113.7" in m.content for m in mail.messages)
    assert notifications.sent == 4 and notifications.dropped == 0


def test_a_dead_endpoint_is_retried_then_dropped_with_one_log_line_while_the_live_one_is_served(caplog):
    feed = Feed()
    caplog.set_level(logging.INFO, logger="snort-bridge")
    with JsonReceiver() as hook:
        dead = Endpoint(f"json://127.0.0.1:{free_port()}/hook", backoff=QUICK)
        notifications = Notifications(FAST, [dead, Endpoint(hook.url, backoff=QUICK)], settle=0.1).start(feed)
        try:
            feed.publish(blocked("203.0.113.7", time.time()))
            assert wait_for(lambda: len(hook.posts) == 1 and dead.dropped == 1, 20)
            feed.publish(RouterChanged("core1", False, time.time(), "refused"))
            assert wait_for(lambda: len(hook.posts) == 2 and dead.dropped == 2, 20)
        finally:
            notifications.stop(timeout=10)
    failures = [r.getMessage() for r in caplog.records if "failed, message" in r.getMessage()]
    assert len(failures) == 1, failures  # one line for the outage, not one per message or attempt
    assert "dropped after 4 attempt(s)" in failures[0] and "Connection error" in failures[0]


def test_a_hanging_endpoint_holds_up_neither_the_others_nor_the_stop():
    feed = Feed()
    with JsonReceiver() as hook, Hanging() as hang:
        stuck = Endpoint(f"json://127.0.0.1:{hang.port}/hook?cto=60&rto=60", backoff=QUICK)
        notifications = Notifications(FAST, [stuck, Endpoint(hook.url)], settle=0.1).start(feed)
        feed.publish(blocked("203.0.113.7", time.time()))
        assert wait_for(lambda: len(hook.posts) == 1 and hang.accepted, 20)  # the live one is served meanwhile
        feed.publish(blocked("203.0.113.8", time.time()))
        started = time.monotonic()
        clean = notifications.stop(timeout=2.0)
        took = time.monotonic() - started
        assert not clean and took < 15  # bounded: the hanging call (60 s) is not waited out
        assert wait_for(lambda: len(hook.posts) == 2, 10)  # what was gathered was still told to the live one
        assert "203.0.113.8" in hook.posts[1]["title"]


def test_publishing_never_waits_and_a_full_queue_counts_instead():
    feed = Feed()
    with Hanging() as hang:
        notifications = Notifications(
            FAST, [Endpoint(f"json://127.0.0.1:{hang.port}/x?rto=60")], queue_size=100, settle=0.1
        )
        feed.subscribe(notifications.subscriber)  # subscribed, but nobody takes from the queue
        for n in range(1000):
            feed.publish(blocked(str(ipaddress.ip_address("11.0.0.0") + n), time.time()))
        assert notifications.subscriber.queue.qsize() == 100 and notifications.subscriber.dropped == 900


def test_notify_config_errors_name_the_key(tmp_path):
    from bridge.config.load import parse_config

    with pytest.raises(ConfigError) as caught:
        parse_config(
            '[notify]\nurls_env = "U"\nevents = ["block", "blocks", "snort_restarted"]\n'
            'min_interval = "soon"\nsilent_after = 0\nurls_fil = "x"\n'
        )
    problems = caught.value.problems
    assert "notify.urls_fil: unknown key; did you mean 'urls_file'?" in problems
    assert any(p.startswith("notify.events[1]: expected one of block | unblock | router_down") for p in problems)
    assert any(p.startswith("notify.min_interval: expected a duration") for p in problems)
    assert any(p.startswith("notify.silent_after: ") for p in problems)
    with pytest.raises(ConfigError, match="notify.urls_file: missing"):
        parse_config("[notify]\n")
    assert parse_config('[notify]\nurls_env = "U"\nevents = ["snort_restarted"]\n').notify.events == (
        "snort_restarted",
    )
    config = parse_config('[notify]\nurls_env = "U"\n')
    assert config.notify.events == ("block", "router_down", "router_up", "flood_guard", "sensor_silent", "state")
    assert config.notify.min_interval == 60.0
