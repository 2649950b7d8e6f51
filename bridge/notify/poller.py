"""The tzspd poller: reads each ``[notify] tzspd_metrics`` endpoint every POLL_INTERVAL, on its own thread.

Never in the alert path: one daemon thread makes one small GET per endpoint in turn (a timeout for
the whole answer, a size cap, no proxy from the environment, no redirect), and hands what
RestartWatch makes of it to the notifications' bounded queue, like any feed event. A slow or dead
endpoint delays only the next endpoint's poll, never a block or another kind's message.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence

from bridge.notify.restarts import RestartWatch, TzspdUnreachable, read_metrics

log = logging.getLogger("snort-bridge")

POLL_INTERVAL = 15.0  # seconds between two readings of an endpoint
TIMEOUT = 3.0  # seconds for one whole answer
MAX_BYTES = 256 * 1024  # tzspd's answer is a few kB; more is not tzspd
CHUNK = 16 * 1024


def metrics_url(endpoint: str) -> str:
    """``HOST:PORT`` -> ``http://HOST:PORT/metrics``; a URL stays as it is."""
    return endpoint if "://" in endpoint else f"http://{endpoint}/metrics"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a 3xx is an error: tzspd never redirects
        return None


# No proxy from the environment (http_proxy is for the apprise URLs' sake, not for the sensors).
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def fetch(url: str, timeout: float = TIMEOUT, limit: int = MAX_BYTES) -> str:
    """The body of a GET, within ``timeout`` in all and ``limit`` bytes; OSError or ValueError saying why not."""
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers={"Accept": "text/plain; version=0.0.4"})
    with _OPENER.open(request, timeout=timeout) as answer:
        chunks: list[bytes] = []
        size = 0
        while True:
            if time.monotonic() > deadline:  # a server that trickles never trips the socket timeout
                raise TimeoutError(f"no whole answer within {timeout:g}s")
            chunk = answer.read1(CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise ValueError(f"answer larger than {limit:,} bytes: not tzspd's /metrics")
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    return str(reason if reason is not None else exc) or type(exc).__name__


class TzspdPoller:
    """Polls the endpoints; ``deliver`` takes each event (the notifications' queue subscriber)."""

    def __init__(
        self,
        endpoints: Sequence[str],
        deliver: Callable[[object], None],
        *,
        interval: float = POLL_INTERVAL,
        timeout: float = TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.endpoints = tuple(endpoints)
        self.deliver = deliver
        self.interval = interval
        self.timeout = timeout
        self.clock = clock
        self.watch = RestartWatch()
        self.polls = 0  # rounds over all endpoints
        self.failures = 0  # failed readings, all endpoints together
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> list[object]:
        """One round: read every endpoint, deliver and return the events."""
        events: list[object] = []
        for endpoint in self.endpoints:
            if self._stopping.is_set():
                break
            try:
                reading = read_metrics(fetch(metrics_url(endpoint), self.timeout))
            except Exception as exc:  # noqa: BLE001 -- a bad answer must not end the thread
                self.failures += 1
                found = self.watch.failed(endpoint, _reason(exc), self.clock())
            else:
                found, note = self.watch.seen(endpoint, reading, self.clock())
                if note:
                    log.info("notify: %s", note)
            for event in found:
                if isinstance(event, TzspdUnreachable):  # once per outage, and once when it is back
                    if event.unreachable:
                        log.warning(
                            "notify: tzspd metrics at %s unreadable: %s; Snort restarts there are not "
                            "seen until it answers",
                            endpoint,
                            event.error,
                        )
                    else:
                        log.info("notify: tzspd metrics at %s readable again", endpoint)
                self.deliver(event)
            events += found
        self.polls += 1
        return events

    def start(self) -> TzspdPoller:
        self._thread = threading.Thread(target=self._run, name="notify-tzspd", daemon=True)
        self._thread.start()
        return self

    def stop(self, deadline: float) -> bool:
        """Stop polling; waits until ``deadline`` (monotonic) at most for a reading under way."""
        self._stopping.set()
        if self._thread is None:
            return True
        self._thread.join(max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.poll()
            self._stopping.wait(self.interval)
