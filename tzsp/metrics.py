"""tzspd --metrics HOST:PORT: /metrics (Prometheus) and /health, read from the counters at scrape time.

The receive loop keeps counting in its plain ``Counters`` object exactly as before; a custom
prometheus_client Collector reads those integers when Prometheus asks, on the HTTP server's
thread. So serving metrics costs the receive path nothing per packet.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from plumbing.httpserver import HttpServer, Request, Response, parse_listen

from .stats import Counters

DEFAULT_METRICS_PORT = 9471

# Every reason a datagram is dropped (tzsp.codec's malformed reasons, then the receiver's own):
# all are exported from the start, at 0, so a rate() over them works before the first drop.
MALFORMED_REASONS = ("malformed", "short", "bad-version", "unknown-type", "tag-overrun", "no-end")
DROP_REASONS = tuple(r.replace("-", "_") for r in MALFORMED_REASONS) + (
    "not_allowed",
    "other_linktype",
    "non_frame",
    "consumer_buffer_full",
)


def drop_counts(stats: Counters) -> dict:
    """reason -> datagrams dropped for it (the label set is bounded: reasons are class constants)."""
    counts = {reason: 0 for reason in DROP_REASONS}
    for reason, count in dict(stats.malformed).items():  # dict(): one atomic copy under the GIL
        key = reason.replace("-", "_")
        counts[key] = counts.get(key, 0) + count
    counts["not_allowed"] = stats.not_allowed
    counts["other_linktype"] = stats.other_linktype
    counts["non_frame"] = stats.non_frame
    counts["consumer_buffer_full"] = stats.buffer_overflow
    return counts


def consumers_of(sink) -> Sequence:
    """The --exec consumers of a sink (none for stdout or files)."""
    return tuple(getattr(sink, "consumers", ()) or ())


def _consumer_label(consumer, index: int) -> str:
    return str(index + 1)


def _consumer_running(consumer) -> bool:
    process = getattr(consumer, "process", None)
    return process is not None and process.returncode is None


class TzspdCollector:
    """Reads tzspd's counters (and its consumers) each time Prometheus scrapes."""

    def __init__(self, stats: Counters, sink=None, started: float | None = None):
        self.stats = stats
        self.sink = sink
        self.started = time.time() if started is None else started

    def collect(self) -> Iterable:
        stats = self.stats
        yield CounterMetricFamily(
            "tzspd_datagrams_received", "Datagrams read from the UDP socket", value=stats.received
        )
        yield CounterMetricFamily("tzspd_frames_written", "pcap records handed to the output", value=stats.written)
        yield CounterMetricFamily(
            "tzspd_output_bytes", "Bytes of pcap records written (headers excluded)", value=stats.output_bytes
        )
        dropped = CounterMetricFamily("tzspd_datagrams_dropped", "Datagrams not written, by reason", labels=["reason"])
        for reason, count in drop_counts(stats).items():
            dropped.add_metric([reason], count)
        yield dropped
        yield CounterMetricFamily(
            "tzspd_kernel_drops", "Datagrams the kernel dropped (socket buffer full)", value=stats.kernel_drops
        )
        yield CounterMetricFamily(
            "tzspd_tag40_gaps", "Packet ids missing from the sender's tag-40 sequence", value=stats.tag40_gaps
        )
        yield CounterMetricFamily(
            "tzspd_consumer_restarts", "--exec consumers started again after they ended", value=stats.consumer_restarts
        )
        consumers = consumers_of(self.sink)
        if consumers:
            restarts = CounterMetricFamily(
                "tzspd_consumer_restarts_by_consumer", "Restarts of each --exec consumer", labels=["consumer"]
            )
            held = GaugeMetricFamily(
                "tzspd_consumer_held_bytes", "Bytes held for a consumer that is restarting", labels=["consumer"]
            )
            running = GaugeMetricFamily(
                "tzspd_consumer_running", "1 while the consumer process runs", labels=["consumer"]
            )
            for index, consumer in enumerate(consumers):
                label = [_consumer_label(consumer, index)]
                restarts.add_metric(label, max(0, getattr(consumer, "starts", 1) - 1))
                held.add_metric(label, len(getattr(consumer, "pending", b"")))
                running.add_metric(label, 1 if _consumer_running(consumer) else 0)
            yield restarts
            yield held
            yield running
        yield GaugeMetricFamily("tzspd_start_time_seconds", "When tzspd started (Unix time)", value=self.started)


def health_problems(stats: Counters, sink=None) -> list[str]:
    """What is wrong now, for /health: an --exec consumer that is not running."""
    problems = []
    for index, consumer in enumerate(consumers_of(sink)):
        if getattr(consumer, "starts", 0) and not _consumer_running(consumer):
            held = len(getattr(consumer, "pending", b""))
            problems.append(f"consumer {index + 1} is not running ({held} bytes held for it)")
    return problems


def metrics_response(registry: CollectorRegistry, request: Request) -> Response:
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(200, encoder(registry), content_type)


def health_response(problems: list[str]) -> Response:
    if not problems:
        return Response(200, b"ok\n")
    return Response(503, (json.dumps({"problems": problems}, indent=1) + "\n").encode(), "application/json")


def start_metrics_server(listen: str, stats: Counters, sink=None) -> HttpServer:
    """Serve /metrics and /health on ``listen`` (HOST:PORT); OSError if it cannot bind."""
    host, port = parse_listen(listen, DEFAULT_METRICS_PORT)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TzspdCollector(stats, sink))
    routes = {
        "/metrics": lambda request: metrics_response(registry, request),
        "/health": lambda request: health_response(health_problems(stats, sink)),
    }
    return HttpServer(host, port, routes).start()
