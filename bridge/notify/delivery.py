"""The shell around the digester: a feed subscriber, one digest thread, one sender thread per URL.

Nothing here runs in the alert path: the feed hands each event to a bounded queue (full = counted,
never waited for), and a line read only updates a per-file time. Each apprise URL has its own
thread and bounded outbox, so a dead or hanging endpoint delays only itself: it is retried with
backoff, then the message is dropped with a counter and one log line per outage. apprise's own
socket timeouts bound each call (``?cto=`` connect, ``?rto=`` read, 4 s by default; mail 15 s),
and stopping waits a bounded time, then leaves the (daemon) threads behind.
"""

from __future__ import annotations

import fnmatch
import glob
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import apprise

from bridge.config import ConfigError, NotifyConfig
from bridge.notify.digest import MAX_SENSORS, Digester, Message
from bridge.notify.poller import POLL_INTERVAL, TzspdPoller
from responder.feed import Feed, LineRead, QueueSubscriber

log = logging.getLogger("snort-bridge")

QUEUE_SIZE = 10_000  # events waiting for the digest thread
OUTBOX = 100  # messages waiting for one URL
RETRIES = 3  # after the first attempt
BACKOFF = (2.0, 10.0, 30.0)  # seconds before each retry
TICK = 1.0  # a sender thread looks at its stop flag at least this often
POLL = 0.25  # the digest thread takes the queued events this often
MAX_URLS = 50
_TYPES = {
    "info": apprise.NotifyType.INFO,
    "success": apprise.NotifyType.SUCCESS,
    "warning": apprise.NotifyType.WARNING,
    "failure": apprise.NotifyType.FAILURE,
}


# -- the URLs ---------------------------------------------------------------------------------


def read_urls(config: NotifyConfig, environ: Mapping[str, str] | None = None) -> tuple[list[str], str]:
    """The apprise URLs and the key they came from; ConfigError naming the key when unusable.

    A file must be private (mode 0600, as password files): the URLs hold tokens and passwords.
    """
    environ = os.environ if environ is None else environ
    if config.urls_file:
        from responder.errors import SecretRefused
        from responder.transport.secrets import _read_private_file  # the same check as for password files

        key = "notify.urls_file"
        try:
            raw = _read_private_file("notify", "urls_file", config.urls_file)
        except SecretRefused as exc:
            raise ConfigError([f"{key}: {exc.message}"]) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError([f"{key}: {config.urls_file} is not UTF-8 text"]) from None
        urls = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    elif config.urls_env:
        key = "notify.urls_env"
        urls = environ.get(config.urls_env, "").split()
        if not urls:
            raise ConfigError(
                [f"{key}: environment variable {config.urls_env} is not set or empty; expected apprise URLs"]
            )
    else:
        raise ConfigError(["notify.urls_file: missing; expected urls_file or urls_env"])
    if not urls:
        raise ConfigError([f"{key}: {config.urls_file} holds no URL; expected apprise URLs, one per line"])
    if len(urls) > MAX_URLS:
        raise ConfigError([f"{key}: {len(urls)} URLs; expected at most {MAX_URLS}"])
    return urls, key


def make_endpoints(urls: Sequence[str], key: str) -> list[Endpoint]:
    """One Endpoint per URL; ConfigError naming each URL apprise does not understand (never its text)."""
    endpoints, problems = [], []
    for number, url in enumerate(urls, 1):
        try:
            endpoints.append(Endpoint(url))
        except ValueError:
            scheme = url.split("://", 1)[0] if "://" in url else "?"
            problems.append(f"{key}: URL {number} ({scheme}://...) is not an apprise URL apprise can use")
    if problems:
        raise ConfigError(problems)
    return endpoints


# apprise warns on every failed attempt; we say it once per outage, with the reason from its result
logging.getLogger("apprise").propagate = False


def _failure(result: object) -> str:
    """The reason apprise gives in its result (apprise 2 keeps each call's log), else a plain word."""
    logs = getattr(result, "logs", None)
    if callable(logs):
        try:
            warnings = [entry.message for entry in logs() if entry.level in ("WARNING", "ERROR", "CRITICAL")]
        except Exception:  # noqa: BLE001 -- only a nicer message is at stake
            warnings = []
        if warnings:
            return str(warnings[-1])[:300]
    return "apprise reported a failure"


# -- one URL --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    ok: bool
    error: str = ""


class Endpoint:
    """One apprise URL: its own sender thread and bounded outbox, retries with backoff."""

    def __init__(self, url: str, *, backoff: Sequence[float] = BACKOFF, outbox: int = OUTBOX) -> None:
        asset = apprise.AppriseAsset(async_mode=False, storage_mode="memory")
        self._apprise = apprise.Apprise(asset=asset)
        if not self._apprise.add(url):
            raise ValueError("not an apprise URL")
        self.label = self._apprise[0].url(privacy=True)  # tokens and passwords masked: fit for logs
        self.backoff = tuple(backoff)
        self._outbox: queue.Queue[Message | None] = queue.Queue(outbox)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.dropped = 0  # given up after the retries, or no room in the outbox
        self._failing = False

    def send(self, message: Message) -> Outcome:
        """One attempt, in the calling thread (bounded by apprise's socket timeouts)."""
        try:
            result = self._apprise.notify(
                body=message.body,
                title=message.title,
                notify_type=_TYPES.get(message.severity, apprise.NotifyType.INFO),
                body_format=apprise.NotifyFormat.TEXT,
            )
        except Exception as exc:  # noqa: BLE001 -- a plugin's bug must not end the sender thread
            return Outcome(False, f"{type(exc).__name__}: {exc}")
        return Outcome(True) if result else Outcome(False, _failure(result))

    # the sender thread

    def start(self) -> Endpoint:
        self._thread = threading.Thread(target=self._run, name="notify-sender", daemon=True)
        self._thread.start()
        return self

    def post(self, message: Message) -> None:
        try:
            self._outbox.put_nowait(message)
        except queue.Full:
            self._dropped(message, "its outbox is full (the endpoint is slower than the messages)")

    def stop(self, deadline: float) -> bool:
        """Send what is queued (one attempt each, no more backoff), until ``deadline`` (monotonic)."""
        self._stopping.set()
        try:
            self._outbox.put_nowait(None)
        except queue.Full:
            pass
        if self._thread is None:
            return True
        self._thread.join(max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            try:
                message = self._outbox.get(timeout=TICK)
            except queue.Empty:
                message = None
            if message is None:
                if self._stopping.is_set() and self._outbox.empty():
                    return
                continue
            self._deliver(message)

    def _deliver(self, message: Message) -> None:
        outcome = Outcome(False)
        for attempt in range(len(self.backoff) + 1):
            if attempt:
                if self._stopping.is_set() or self._stopping.wait(self.backoff[attempt - 1]):
                    break  # stopping: no more waiting on a dead endpoint
            outcome = self.send(message)
            if outcome.ok:
                self.sent += 1
                if self._failing:
                    self._failing = False
                    log.info("notify: %s works again (%d message(s) dropped so far)", self.label, self.dropped)
                return
        self._dropped(message, outcome.error or "not sent")

    def _dropped(self, message: Message, why: str) -> None:
        self.dropped += 1
        if not self._failing:  # one line per outage, not one per message
            self._failing = True
            log.warning(
                "notify: %s failed, message %r dropped after %d attempt(s): %s; "
                "further failures are only counted until it works again",
                self.label,
                message.title,
                len(self.backoff) + 1,
                why,
            )


# -- the whole -------------------------------------------------------------------------------------


class Notifications:
    """Subscribes to the feed and tells the endpoints; ``start`` / ``stop`` from the service."""

    def __init__(
        self,
        config: NotifyConfig,
        endpoints: Sequence[Endpoint],
        *,
        routers: Sequence[str] = (),
        sensors: Sequence[str] = (),
        host: str = "",
        pending_blocks: Callable[[str], int | None] = lambda router: None,
        clock: Callable[[], float] = time.time,
        queue_size: int = QUEUE_SIZE,
        settle: float | None = None,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self.config = config
        self.endpoints = list(endpoints)
        self.clock = clock
        extra = {} if settle is None else {"settle": settle}
        self.digester = Digester(
            config.events,
            config.min_interval,
            now=clock(),
            routers=routers,
            sensors=sensors,
            silent_after=config.silent_after,
            host=host,
            pending_blocks=pending_blocks,
            **extra,
        )
        self._watch_lines = self.digester.silent_after is not None
        self._sensors = frozenset(sensors)  # only these files' clocks are kept: bounded, whatever the peers
        self._patterns = tuple(s for s in sensors if glob.has_magic(s))  # and the files these globs match
        self._matches: dict[str, bool] = {}  # source -> matches a pattern (files only, at most MAX_SENSORS)
        self._last_line: dict[str, float] = {}
        self.subscriber = QueueSubscriber(queue_size, accept=self._accept)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._feed: Feed | None = None
        self.messages = 0  # messages handed to the endpoints
        self._dropped_told = 0
        # snort_restarted: tzspd's counters, read on their own thread into the same queue as the feed's events
        self.poller = (
            TzspdPoller(config.tzspd_metrics, self.subscriber, interval=poll_interval, clock=clock)
            if config.tzspd_metrics and "snort_restarted" in self.digester.events
            else None
        )

    def carry_over(self, previous: Notifications) -> None:
        """After a reload: what the old ones knew (routers down, silent files, tzspd's counts)."""
        self.digester.carry_over(previous.digester)
        if self.poller is not None and previous.poller is not None:
            self.poller.watch.carry_over(previous.poller.watch)

    def _accept(self, event: object) -> bool:
        """In the publisher's thread: cheap. A line only moves its file's clock; nothing is queued."""
        if isinstance(event, LineRead):
            if self._watch_lines and (event.source in self._sensors or self._matched(event.source)):
                self._last_line[event.source] = event.at
            return False
        return self.digester.wants(event)

    def _matched(self, source: str) -> bool:
        if not self._patterns or source.startswith(("udp:", "pcap:")):
            return False
        known = self._matches.get(source)
        if known is None:
            if len(self._matches) >= MAX_SENSORS:
                return False
            known = self._matches[source] = any(fnmatch.fnmatchcase(source, p) for p in self._patterns)
        return known

    def start(self, feed: Feed) -> Notifications:
        for endpoint in self.endpoints:
            endpoint.start()
        self._feed = feed
        feed.subscribe(self.subscriber)
        self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
        self._thread.start()
        if self.poller is not None:
            self.poller.start()
        return self

    def stop(self, timeout: float = 5.0) -> bool:
        """Tell what is gathered, give the endpoints until ``timeout`` to send it; never longer."""
        deadline = time.monotonic() + timeout
        if self._feed is not None:
            self._feed.unsubscribe(self.subscriber)
        if self.poller is not None:  # a reading under way is not waited out: it would tell nothing new
            self.poller.stop(min(deadline, time.monotonic() + 0.5))
        self._stopping.set()
        clean = True
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
            clean = not self._thread.is_alive()
        for endpoint in self.endpoints:
            clean = endpoint.stop(deadline) and clean
        if not clean:
            log.warning("notify: stopped without waiting for a slow endpoint; its messages are dropped")
        return clean

    @property
    def sent(self) -> int:
        return sum(e.sent for e in self.endpoints)

    @property
    def dropped(self) -> int:
        return sum(e.dropped for e in self.endpoints)

    # the digest thread

    def _run(self) -> None:
        events = self.subscriber.queue
        while True:
            now = self.clock()
            next_due = self.digester.next_due(now)
            # Polled, not woken by each event: in a storm the events are taken in batches, and
            # this thread does not contend with the alert path for the interpreter at every block.
            wait = POLL if next_due is None else min(POLL, max(0.01, next_due - now))
            if self._stopping.wait(wait):
                break
            now = self.clock()
            try:
                while True:
                    self.digester.offer(events.get_nowait(), now)
            except queue.Empty:
                pass
            if self._watch_lines:
                self.digester.lines_seen(dict(self._last_line), now)
            self._post(self.digester.due(now))
        while True:  # stopping: what was queued is still told, in the digest sent now
            try:
                self.digester.offer(events.get_nowait(), self.clock())
            except queue.Empty:
                break
        self._post(self.digester.flush(self.clock()))

    def _post(self, messages: list[Message]) -> None:
        dropped = self.subscriber.dropped
        if dropped > self._dropped_told:
            log.warning(
                "notify: %d event(s) did not fit the queue and are missing from the digests",
                dropped - self._dropped_told,
            )
            self._dropped_told = dropped
        for message in messages:
            self.messages += 1
            for endpoint in self.endpoints:
                endpoint.post(message)


def build_notifications(
    config, *, pending_blocks: Callable[[str], int | None] = lambda r: None, environ: Mapping[str, str] | None = None
) -> Notifications | None:
    """The notifications for ``config`` (a bridge Config), not started; None without [notify].

    Reads the URLs now, so a bad file or URL is a ConfigError at start (or a refused reload).
    """
    if config.notify is None:
        return None
    import socket

    urls, key = read_urls(config.notify, environ)
    endpoints = make_endpoints(urls, key)
    sensors = [os.path.abspath(a.path) for a in config.alerts]
    log.info(
        "notify: %d URL(s), events %s, digests every %gs",
        len(endpoints),
        ", ".join(config.notify.events),
        config.notify.min_interval,
    )
    tzspd = config.notify.tzspd_metrics
    if "snort_restarted" in config.notify.events and not tzspd:
        log.warning(
            "notify.events: snort_restarted needs notify.tzspd_metrics (the tzspd --metrics endpoints to "
            "poll); without it no Snort restart is told"
        )
    elif tzspd:
        log.info("notify: snort_restarted from tzspd's metrics at %s, read every %gs", ", ".join(tzspd), POLL_INTERVAL)
    return Notifications(
        config.notify,
        endpoints,
        routers=[r.name for r in config.routers],
        sensors=sensors,
        host=socket.gethostname(),
        pending_blocks=pending_blocks,
    )
