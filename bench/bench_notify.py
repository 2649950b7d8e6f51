"""Does telling people slow the blocking? A storm of blocks through `Service`, with and without [notify].

Each run starts `bridge.service.Service` (what `snort-bridge run` runs) on a fresh state directory,
following an alert_fast file, with one router behind a closed port (so every block is recorded in
the ledger, pending, and nothing else competes for the CPU). It appends N alert lines from N new
attackers at once and times until all N decisions are blocks in the ledger. Variants: no [notify];
[notify] to a local webhook (an HTTP server taking apprise's json:// posts); [notify] to that
webhook plus an endpoint that accepts and never answers. It prints the times and the messages sent.

    python bench/bench_notify.py [--blocks 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bridge.config import load_config  # noqa: E402
from bridge.service.service import Service  # noqa: E402

ENV = "TZSP_IPS_BENCH_NOTIFY"


class Webhook:
    def __init__(self) -> None:
        self.posts: list = []
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                posts.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0)))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(directory: str, alerts: str, notify: bool) -> str:
    key = os.path.join(directory, "id_ed25519")
    with open(key, "w") as handle:
        handle.write("unused: the router behind a closed port is never logged into\n")
    os.chmod(key, 0o600)
    text = (
        f'state_dir = "{directory}/state"\n[policy]\nprotected = ["10.0.0.0/8"]\nblock_for = "10m"\n'
        f"max_new_blocks_per_minute = 10000000\n"
        f'[[alerts]]\npath = "{alerts}"\nformat = "fast"\n'
        f'[[routers]]\nname = "core1"\nhost = "127.0.0.1"\nport = {closed_port()}\nkey_file = "{key}"\n'
        f'known_hosts = "{directory}/known_hosts"\nconnect_timeout = "1s"\n'
    )
    if notify:
        text += f'[notify]\nurls_env = "{ENV}"\nmin_interval = "5s"\n'
    path = os.path.join(directory, "config.toml")
    with open(path, "w") as handle:
        handle.write(text)
    return path


def one_run(blocks: int, urls: str) -> float:
    if urls:
        os.environ[ENV] = urls
    with tempfile.TemporaryDirectory() as directory:
        alerts = os.path.join(directory, "alert_fast.txt")
        open(alerts, "w").close()
        service = Service(load_config(write_config(directory, alerts, bool(urls))))
        service.start()
        runner = threading.Thread(target=service.run, daemon=True)
        runner.start()
        lines = "".join(
            f'12/04-10:00:00.000001 [**] [1:{1000101 + n % 3}:1] "bench attack" [**] [Priority: 1] '
            f"{{TCP}} {ipaddress.ip_address('11.0.0.0') + n}:4444 -> 10.1.2.3:80\n"
            for n in range(blocks)
        )
        started = time.perf_counter()
        with open(alerts, "a") as handle:
            handle.write(lines)
        while service.pipeline.counts.blocks < blocks:
            time.sleep(0.005)
        took = time.perf_counter() - started
        ledger = service.responder.ledger
        assert len([r for r in ledger.blocks(time.time()) if r.state == "active"]) == blocks
        service.request_stop()
        runner.join(60)
        return took


def per_event_costs(count: int = 100_000) -> None:
    """CPU per event, free of the machine's load swings: the publisher's share and the digest thread's."""
    from bridge.config import NotifyConfig
    from bridge.events import Alert, Decision, Origin
    from bridge.notify.delivery import Notifications
    from bridge.notify.digest import Digester
    from responder.feed import Decided, Feed, LineRead

    def decided(n: int) -> Decided:
        address = ipaddress.ip_address("11.0.0.0") + n
        alert = Alert(
            1,
            1000101 + n % 3,
            1,
            "bench attack",
            "fast",
            Origin("/tmp/alert_fast.txt", 0, n + 1),
            priority=1,
            src=address,
            dst=ipaddress.ip_address("10.1.2.3"),
        )
        return Decided(Decision("block", "priority", alert, target=address, block_for=600.0, reason="priority"), 0.0)

    events = [decided(n) for n in range(count)]
    lines = [LineRead("/tmp/alert_fast.txt", "alert", 0.0)] * count
    for label, subscribe in (("feed without subscribers", False), ("feed + notifications", True)):
        feed = Feed()
        if subscribe:
            notifications = Notifications(
                NotifyConfig(urls_env="X"), [], sensors=["/tmp/alert_fast.txt"], queue_size=count * 2
            )
            feed.subscribe(notifications.subscriber)  # the queue only: its thread is not started here
        started = time.perf_counter()
        for line, event in zip(lines, events, strict=True):
            feed.publish(line)
            feed.publish(event)
        took = time.perf_counter() - started
        print(f"publish, {label:26s} {took / count * 1e6:6.2f} µs per alert (a LineRead and a Decided)")
    digester = Digester(("block",), 60.0, now=0.0)
    started = time.perf_counter()
    for n, event in enumerate(events):
        digester.offer(event, n * 0.001)
        if n % 250 == 0:
            digester.due(n * 0.001)
    took = time.perf_counter() - started
    print(f"digest thread: {took / count * 1e6:6.2f} µs per block event (offer, and due() every 250)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--costs-only", action="store_true", help="only the CPU per event, no service runs")
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)
    per_event_costs()
    if args.costs_only:
        return
    hook = Webhook()
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(100)  # accepted by the kernel, never answered
    stuck = f"json://127.0.0.1:{hanging.getsockname()[1]}/hook"
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"{args.blocks} blocks per run, best and median of {args.runs}"
    )
    variants = (("no [notify]", ""), ("webhook", hook.url), ("webhook + hanging endpoint", f"{hook.url} {stuck}"))
    times: dict = {name: [] for name, _ in variants}
    sent: dict = {name: 0 for name, _ in variants}
    for _ in range(args.runs):  # interleaved, so a busy moment of the machine hits every variant alike
        for name, urls in variants:
            before = len(hook.posts)
            times[name].append(one_run(args.blocks, urls))
            sent[name] += len(hook.posts) - before
    for name, _ in variants:
        median = statistics.median(times[name])
        print(
            f"{name:28s} best {min(times[name]):6.2f} s  median {median:6.2f} s  ({args.blocks / median:7.0f} blocks/s)"
            f"  webhook messages per run: {sent[name] / args.runs:.1f}"
        )


if __name__ == "__main__":
    main()
