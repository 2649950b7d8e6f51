"""[http] of snort-bridge run: /metrics (Prometheus), /health and the status page at /.

The server (plumbing.httpserver) runs on its own few threads, apart from the alert path: the pages
read the Observer (fed by Service.feed), the ledger, the routers' status and the followed files,
at most once a second however many clients ask (``Snapshots``), and tzspd's metrics with a
short timeout. A slow or hostile client costs one of a handful of threads for a few seconds.

Beyond loopback every request needs the token of ``token_file``: ``Authorization: Bearer``, or
a cookie set once from ``/?token=...``; it is compared in constant time, and refusals are
logged at most once a minute.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import threading
import time
import urllib.request

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.parser import text_string_to_metric_families

from bridge.config import Config, ConfigError, HttpConfig
from bridge.watching.observe import Observer
from bridge.watching.provisioning import ProvisionWatch
from bridge.watching.status import (
    CHART_MINUTES,
    BlockRow,
    RouterRow,
    Snapshot,
    SourceRow,
    TzspdView,
    health_problems,
    render_page,
)
from plumbing.httpserver import HttpServer, Request, Response, is_loopback, parse_listen

log = logging.getLogger("snort-bridge")

DEFAULT_PORT = 9470
SNAPSHOT_TTL = 1.0  # seconds a gathered snapshot serves every request
TZSPD_TIMEOUT = 2.0
COOKIE = "tzsp_ips_token"
REFUSAL_LOG_INTERVAL = 60.0
MAX_BLOCK_ROWS = 500  # the page lists this many blocks in force (the count is always exact)


class TokenError(ValueError):
    pass


def start_web(service, config: Config) -> Web | None:
    """The [http] server for ``service``, started; None without [http]. ConfigError for a bad token file,
    OSError when it cannot listen."""
    if config.http is None:
        return None
    try:
        web = Web(service, config)
    except TokenError as exc:
        raise ConfigError([f"http.token_file: {exc}"], config.path) from None
    except OSError as exc:
        raise OSError(f"http.listen = {config.http.listen!r}: {exc.strerror or exc}") from None
    return web.start()


def read_token(path: str) -> str:
    """The token in ``path`` (first line, stripped); refuses a file others can read, or an empty one."""
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise TokenError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        mode = os.fstat(handle.fileno()).st_mode
        text = handle.read(4096).decode("utf-8", "replace")
    if mode & 0o077:
        raise TokenError(f"{path} is readable by group/others (mode {mode & 0o777:04o}); expected mode 0600")
    token = text.strip().splitlines()[0].strip() if text.strip() else ""
    if len(token) < 16:
        raise TokenError(f"{path}: expected a token of at least 16 characters (e.g. `openssl rand -hex 32 > {path}`)")
    return token


class Gate:
    """Lets a request through when no token is set, or when it carries the token."""

    def __init__(self, token: str | None, clock=time.monotonic):
        self.token = token.encode() if token else None
        self.clock = clock
        self.refused = 0
        self._logged_at: float | None = None
        self._unlogged = 0
        self._lock = threading.Lock()

    def allows(self, request: Request) -> bool:
        if self.token is None:
            return True
        offered = (
            _bearer(request.headers.get("authorization", ""))
            or _cookie(request.headers.get("cookie", ""), COOKIE)
            or request.query.get("token", "")
        )
        if hmac.compare_digest(offered.encode("utf-8", "replace"), self.token):
            return True
        self._note_refusal(request)
        return False

    def _note_refusal(self, request: Request) -> None:
        with self._lock:
            self.refused += 1
            now = self.clock()
            if self._logged_at is not None and now - self._logged_at < REFUSAL_LOG_INTERVAL:
                self._unlogged += 1
                return
            more = f" (and {self._unlogged} more since the last such message)" if self._unlogged else ""
            self._logged_at, self._unlogged = now, 0
        log.warning(
            "http: refused %s %s from %s: missing or wrong token%s", request.method, request.path, request.peer[0], more
        )


def _bearer(header: str) -> str:
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _cookie(header: str, name: str) -> str:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""


class TzspdWatch:
    """Reads tzspd's /metrics; remembers since when its received counter has not moved."""

    def __init__(self, address: str, timeout: float = TZSPD_TIMEOUT):
        host, port = parse_listen(address, 9471)
        self.address = address
        self.url = f"http://[{host}]:{port}/metrics" if ":" in host else f"http://{host}:{port}/metrics"
        self.timeout = timeout
        self._received: float | None = None
        self._moved_at: float | None = None

    def read(self, now: float) -> TzspdView:
        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout) as answer:  # noqa: S310 -- our own http URL
                text = answer.read(1 << 20).decode("utf-8", "replace")
            counters = tzspd_counters(text)
        except (OSError, ValueError) as exc:
            return TzspdView(self.address, {}, error=str(getattr(exc, "reason", exc)))
        received = counters.get("datagrams received")
        if received != self._received or self._moved_at is None:
            self._received, self._moved_at = received, now
        return TzspdView(self.address, counters, silent_since=self._moved_at)


def tzspd_counters(text: str) -> dict[str, float]:
    """tzspd's exposition text -> the counters a person reads, e.g. {"datagrams received": 10, ...}."""
    counters: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if not family.name.startswith("tzspd_") or family.type not in ("counter", "gauge"):
            continue
        name = family.name[len("tzspd_") :].replace("_", " ")
        if family.name in ("tzspd_start_time_seconds",):
            continue
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            labels = ",".join(f"{v}" for v in sample.labels.values())
            if family.name == "tzspd_datagrams_dropped" and not sample.value:
                continue
            counters[f"{name} ({labels})" if labels else name] = sample.value
    return counters


class Snapshots:
    """Gathers the Snapshot from the running service, at most once per SNAPSHOT_TTL."""

    def __init__(
        self, service, observer: Observer, http: HttpConfig, clock=time.time, provision: ProvisionWatch | None = None
    ):
        self.service = service
        self.provision = provision
        self.observer = observer
        self.http = http
        self.clock = clock
        self.tzspd = TzspdWatch(http.tzspd) if http.tzspd else None
        self._lock = threading.Lock()
        self._cached: tuple[float, Snapshot, int] | None = None

    def get(self) -> tuple[Snapshot, int]:
        """(snapshot, blocks in force); one gatherer at a time, the others wait for its result."""
        with self._lock:
            now = self.clock()
            if self._cached is None or now - self._cached[0] >= SNAPSHOT_TTL:
                snapshot, blocks = self._gather(now)
                self._cached = (now, snapshot, blocks)
            return self._cached[1], self._cached[2]

    def _gather(self, now: float) -> tuple[Snapshot, int]:
        service, observer = self.service, self.observer
        responder = service.responder
        block_rows: list[BlockRow] = []
        router_rows: list[RouterRow] = []
        in_force = 0
        if responder is not None:
            records = responder.ledger.blocks(now)
            in_force = len(records)
            for record in records[-MAX_BLOCK_ROWS:][::-1]:
                block_rows.append(
                    BlockRow(
                        str(record.address),
                        record.reason,
                        record.sid,
                        record.expires_at,
                        tuple((name, state.status) for name, state in sorted(record.routers.items())),
                    )
                )
            seen = observer.routers_seen()
            for status in responder.status():
                since = seen.get(status.name)
                router_rows.append(
                    RouterRow(
                        status.name,
                        status.connected,
                        status.pending,
                        status.last_error,
                        since.since if since is not None and since.up == status.connected else None,
                    )
                )
        last_lines = observer.last_lines()
        sources = []
        follower = service.follower
        for path in service.sources:
            label = observer.label(path)
            sources.append(SourceRow(path, os.path.exists(path), last_lines.get(label), _lag_bytes(follower, path)))
        pipeline = service.pipeline
        guard = getattr(getattr(pipeline, "policy", None), "guard", None)
        tripped = getattr(guard, "tripped", None)
        counts = getattr(pipeline, "counts", None)
        totals = {} if counts is None else {"lines": counts.lines, "alerts": counts.alerts, "blocks": counts.blocks}
        snapshot = Snapshot(
            now=now,
            started=observer.started,
            blocks=tuple(block_rows),
            routers=tuple(router_rows),
            sources=tuple(sources),
            decisions=tuple(observer.recent_decisions()),
            per_minute=tuple(observer.per_minute(now, CHART_MINUTES)),
            flood_guard=tripped.describe() if tripped is not None else None,
            tzspd=self.tzspd.read(now) if self.tzspd is not None else None,
            queue_lines=service.queue.qsize(),
            fatal=service.fatal,
            totals=totals,
            provisioning=tuple(self.provision.warnings()) if self.provision is not None else (),
        )
        return snapshot, in_force


def _remote_logging(config: Config) -> bool:
    """Provision sets up remote logging of the firewall topic when the bridge listens for it."""
    return bool(config.scan and config.scan.syslog)


def _lag_bytes(follower, path: str) -> int | None:
    """Bytes written to ``path`` that were not handled yet (None when unknown)."""
    if follower is None:
        return None
    position = follower.store.get(path)
    try:
        st = os.stat(path)
    except OSError:
        return None
    if position is None or (position.device, position.inode) != (st.st_dev, st.st_ino):
        return None
    return max(0, st.st_size - position.offset)


class ScrapeTimeCollector:
    """The gauges read when Prometheus scrapes: blocks in force, routers, flood guard, follower lag."""

    def __init__(self, snapshots: Snapshots):
        self.snapshots = snapshots

    def collect(self):
        snap, in_force = self.snapshots.get()
        yield GaugeMetricFamily("tzsp_ips_blocks_in_force", "Addresses blocked now", value=in_force)
        up = GaugeMetricFamily("tzsp_ips_router_up", "1 while the router's session is up", labels=["router"])
        pending = GaugeMetricFamily(
            "tzsp_ips_router_pending", "Blocks and unblocks not yet done on the router", labels=["router"]
        )
        for router in snap.routers:
            up.add_metric([router.name], 1 if router.reachable else 0)
            pending.add_metric([router.name], router.pending)
        yield up
        yield pending
        yield GaugeMetricFamily(
            "tzsp_ips_flood_guard_tripped", "1 while the flood guard stops blocking", value=1 if snap.flood_guard else 0
        )
        yield GaugeMetricFamily("tzsp_ips_queue_lines", "Lines read and waiting to be handled", value=snap.queue_lines)
        lag = GaugeMetricFamily(
            "tzsp_ips_follower_lag_bytes", "Bytes written to an alert file and not handled yet", labels=["source"]
        )
        present = GaugeMetricFamily(
            "tzsp_ips_alert_source_present", "1 while the followed file exists", labels=["source"]
        )
        last = GaugeMetricFamily(
            "tzsp_ips_alert_source_last_line_timestamp_seconds",
            "When the last line of the source was handled (Unix time)",
            labels=["source"],
        )
        for source in snap.sources:
            if source.lag_bytes is not None:
                lag.add_metric([source.path], source.lag_bytes)
            present.add_metric([source.path], 1 if source.present else 0)
            if source.last_line is not None:
                last.add_metric([source.path], source.last_line)
        yield lag
        yield present
        yield last
        yield GaugeMetricFamily(
            "tzsp_ips_start_time_seconds", "When snort-bridge run started (Unix time)", value=snap.started
        )


class Web:
    """The [http] server of the service: start() binds and serves, stop() closes."""

    def __init__(self, service, config: Config):
        http = config.http
        assert http is not None
        self.http = http
        host, port = parse_listen(http.listen, DEFAULT_PORT)
        token = read_token(http.token_file) if http.token_file else None
        if token is None and not is_loopback(host):
            raise TokenError(f"http.listen = {http.listen!r} is beyond loopback: http.token_file is required")
        self.gate = Gate(token)
        self.observer = Observer(
            [a.path for a in config.alerts] + list(config.scan.files if config.scan else ()),
            [r.name for r in config.routers],
        )
        self.provision = (
            ProvisionWatch(config.routers, _remote_logging(config), interval=http.provision_check)
            if http.provision_check > 0
            else None
        )
        self.snapshots = Snapshots(service, self.observer, http, provision=self.provision)
        self.registry = self.observer.registry
        self.registry.register(ScrapeTimeCollector(self.snapshots))
        self.service = service
        self._server = HttpServer(
            host,
            port,
            {
                "/": self._guarded(self.page),
                "/metrics": self._guarded(self.metrics),
                "/health": self._guarded(self.health),
            },
        )

    @property
    def address(self) -> tuple[str, int]:
        return self._server.address

    def start(self) -> Web:
        self.service.feed.subscribe(self.observer)
        self._server.start()
        log.info(
            "http: status page, /metrics and /health on http://%s:%d/%s",
            *self.address[:2],
            " (token required)" if self.gate.token else "",
        )
        return self

    def stop(self) -> None:
        self.service.feed.unsubscribe(self.observer)
        self._server.stop()

    def reconfigure(self, config: Config) -> None:
        """A reload: follow the new routers and alert files; a changed [http] needs a restart."""
        self.observer.reconfigure(
            [a.path for a in config.alerts] + list(config.scan.files if config.scan else ()),
            [r.name for r in config.routers],
        )
        if self.provision is not None:
            self.provision.reconfigure(config.routers, _remote_logging(config))
        if config.http != self.http:
            log.warning("reload: [http] changed; it takes effect at the next start")

    def _guarded(self, route):
        def serve(request: Request) -> Response:
            if not self.gate.allows(request):
                return Response(
                    401,
                    b"a token is required: Authorization: Bearer <token>\n",
                    headers=(("WWW-Authenticate", 'Bearer realm="tzsp-ips"'),),
                )
            if "token" in request.query and self.gate.token is not None:
                # Opened once as /?token=...: keep it in a cookie and drop it from the address bar.
                cookie = f"{COOKIE}={request.query['token']}; Path=/; HttpOnly; SameSite=Strict; Max-Age=31536000"
                return Response(303, b"", headers=(("Set-Cookie", cookie), ("Location", request.path)))
            return route(request)

        return serve

    def page(self, request: Request) -> Response:
        snap, _ = self.snapshots.get()
        body = render_page(snap, health_problems(snap, self.http.silent_after))
        return Response(
            200,
            body.encode("utf-8"),
            "text/html; charset=utf-8",
            headers=(
                ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:"),
                ("X-Content-Type-Options", "nosniff"),
                ("Referrer-Policy", "no-referrer"),
            ),
        )

    def metrics(self, request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(200, encoder(self.registry), content_type)

    def health(self, request: Request) -> Response:
        snap, _ = self.snapshots.get()
        problems = health_problems(snap, self.http.silent_after)
        if not problems:
            return Response(200, b"ok\n")
        return Response(503, (json.dumps({"problems": problems}, indent=1) + "\n").encode(), "application/json")
