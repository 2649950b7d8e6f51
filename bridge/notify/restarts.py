"""snort_restarted: tzspd's consumer restarts, read from its /metrics, as events and words. Pure.

tzspd (``--exec``, ``--fanout N``) starts Snort again when it dies and counts it per consumer in
``tzspd_consumer_restarts_by_consumer_total{consumer}`` (only the total, ``tzspd_consumer_restarts_total``,
without --exec). The poller (bridge.notify.poller) reads each endpoint and hands the text to
``read_metrics`` and the reading to ``RestartWatch``, which turns a rise into ``SnortRestarted``.
The first reading of an endpoint is only learnt: restarts before the bridge started are not news.
A tzspd that restarted (a new start time, or a counter that went down) is learnt afresh, silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from bridge.notify.messages import Message
from bridge.notify.text import listing, plural, span, utc

TOTAL = ""  # the consumer key when tzspd gives only its total (no --exec labels)
MAX_CONSUMERS = 64  # tzspd's --fanout limit; labels beyond it are not tzspd's and are ignored
UNREACHABLE_AFTER = 2  # failed polls in a row before an endpoint is told unreachable (one blip is not news)


@dataclass(frozen=True)
class TzspdReading:
    restarts: dict[str, int]  # consumer ("1".."N", or TOTAL) -> restarts since tzspd started
    running: dict[str, bool] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)  # bytes held for a consumer while it restarts
    started: float | None = None  # tzspd_start_time_seconds


def read_metrics(text: str) -> TzspdReading:
    """tzspd's exposition text -> its restart counters; ValueError when it is not tzspd's."""
    total: int | None = None
    per: dict[str, int] = {}
    running: dict[str, bool] = {}
    held: dict[str, int] = {}
    started = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            consumer = sample.labels.get("consumer", TOTAL)
            if consumer != TOTAL and len(per) >= MAX_CONSUMERS and consumer not in per:
                continue
            if sample.name == "tzspd_consumer_restarts_total":
                total = int(sample.value)
            elif sample.name == "tzspd_consumer_restarts_by_consumer_total" and consumer != TOTAL:
                per[consumer] = int(sample.value)
            elif sample.name == "tzspd_consumer_running" and consumer != TOTAL:
                running[consumer] = bool(sample.value)
            elif sample.name == "tzspd_consumer_held_bytes" and consumer != TOTAL:
                held[consumer] = int(sample.value)
            elif sample.name == "tzspd_start_time_seconds":
                started = float(sample.value)
    if total is None and not per:
        raise ValueError("no tzspd_consumer_restarts_total in the answer: not tzspd's /metrics")
    return TzspdReading(per if per else {TOTAL: total or 0}, running, held, started)


# -- the events --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SnortRestarted:
    """tzspd at ``sensor`` started ``consumer`` again ``restarts`` times between ``since`` and ``at``."""

    sensor: str  # the tzspd_metrics entry
    consumer: str  # "1".."N", or TOTAL
    restarts: int
    since: float  # the poll before, when the count was lower
    at: float
    total: int  # restarts since tzspd started
    running: bool | None = None  # as read at ``at``
    held: int | None = None
    tzspd_started: float | None = None


@dataclass(frozen=True)
class TzspdUnreachable:
    """An endpoint could not be read for UNREACHABLE_AFTER polls (``unreachable``), or can again."""

    sensor: str
    unreachable: bool
    at: float
    since: float  # the first failed poll
    error: str = ""


@dataclass
class _Known:
    started: float | None
    counts: dict[str, int]
    checked: dict[str, float]  # when each count was last read unchanged


class RestartWatch:
    """Per endpoint: the counts last read; ``seen`` and ``failed`` give the events to tell."""

    def __init__(self, unreachable_after: int = UNREACHABLE_AFTER) -> None:
        self.unreachable_after = unreachable_after
        self._known: dict[str, _Known] = {}
        self._failures: dict[str, tuple[int, float]] = {}  # sensor -> (failed polls in a row, since)
        self._told_down: dict[str, bool] = {}

    def carry_over(self, previous: RestartWatch) -> None:
        """After a reload: the counts already known, so restarts in between are told, not learnt."""
        self._known.update(dict(previous._known))
        self._failures.update(dict(previous._failures))
        self._told_down.update(dict(previous._told_down))

    def seen(self, sensor: str, reading: TzspdReading, now: float) -> tuple[list[object], str | None]:
        """(events, a line for the log or None) for a reading of ``sensor``."""
        events: list[object] = []
        failures = self._failures.pop(sensor, None)
        if self._told_down.pop(sensor, False) and failures is not None:
            events.append(TzspdUnreachable(sensor, False, now, failures[1]))
        known = self._known.get(sensor)
        if known is None or _restarted(known, reading):
            self._known[sensor] = _Known(reading.started, dict(reading.restarts), {c: now for c in reading.restarts})
            note = (
                None
                if known is None
                else (
                    f"tzspd at {sensor} restarted (its counters start again): its "
                    "consumers' restarts are counted from now"
                )
            )
            return events, note
        for consumer, count in reading.restarts.items():
            before = known.counts.get(consumer)
            if before is not None and count > before:
                events.append(
                    SnortRestarted(
                        sensor,
                        consumer,
                        count - before,
                        known.checked[consumer],
                        now,
                        count,
                        reading.running.get(consumer),
                        reading.held.get(consumer),
                        reading.started,
                    )
                )
            known.counts[consumer] = count  # a consumer not seen before (none in tzspd's life) is learnt
            known.checked[consumer] = now
        return events, None

    def failed(self, sensor: str, error: str, now: float) -> list[object]:
        count, since = self._failures.get(sensor, (0, now))
        self._failures[sensor] = (count + 1, since)
        if count + 1 >= self.unreachable_after and not self._told_down.get(sensor):
            self._told_down[sensor] = True
            return [TzspdUnreachable(sensor, True, now, since, error)]
        return []


def _restarted(known: _Known, reading: TzspdReading) -> bool:
    """tzspd itself started again: a new start time, or a counter lower than before."""
    if known.started is not None and reading.started is not None and reading.started != known.started:
        return True
    return any(reading.restarts.get(consumer, count) < count for consumer, count in known.counts.items())


# -- what the digester gathers, and the words ------------------------------------------------------


@dataclass
class _Restarts:
    count: int
    since: float
    last: SnortRestarted


class RestartBatch:
    def __init__(self) -> None:
        self.restarts: dict[tuple[str, str], _Restarts] = {}  # (sensor, consumer): bounded by the config
        self.reach: dict[str, TzspdUnreachable] = {}  # latest per sensor
        self.count = 0

    def add(self, event: object) -> None:
        self.count += 1
        if isinstance(event, SnortRestarted):
            key = (event.sensor, event.consumer)
            gathered = self.restarts.get(key)
            if gathered is None:
                self.restarts[key] = _Restarts(event.restarts, event.since, event)
            else:
                gathered.count += event.restarts
                gathered.last = event
        elif isinstance(event, TzspdUnreachable):
            self.reach[event.sensor] = event


def tell_restarts(title: Callable[[str], str], batch: RestartBatch, now: float) -> Message:
    """The message for a batch; ``title`` is Voice.title (the host's prefix)."""
    lines: list[str] = []
    down = 0
    for (sensor, consumer), gathered in batch.restarts.items():
        last = gathered.last
        who = f"{sensor} consumer {consumer}" if consumer != TOTAL else f"{sensor} (its --exec consumer)"
        if last.running is None:  # no per-consumer gauge (tzspd without --exec labels)
            state = ""
        elif last.running:
            state = "; running now"
        else:
            state = "; NOT running now" + (f" ({last.held:,} bytes held for it)" if last.held else "")
        started = (
            f" in all since tzspd started {utc(last.tzspd_started)}" if last.tzspd_started is not None else " in all"
        )
        lines.append(
            f"{who}: Snort restarted {plural(gathered.count, 'time')} between {utc(gathered.since)} and "
            f"{utc(last.at, date=False)} ({last.total:,}{started}){state}"
        )
        down += last.running is False
    if batch.restarts:
        lines += [
            "",
            "tzspd started Snort again after it ended. Packets in the dead process's pipe are lost; "
            "those that arrived meanwhile were held (up to --exec-buffer) for the new one.",
            'Check on that host: journalctl -u tzspd ("consumer ... exited with status N; restarting") and Snort\'s own '
            "log (its -l directory, e.g. /var/log/snort/). A Snort that keeps dying is started again after a "
            "growing pause (--exec-backoff).",
        ]
    reach_lines = []
    for sensor, change in batch.reach.items():
        if change.unreachable:
            down += 1
            reach_lines.append(f"{sensor}: tzspd's metrics unreadable since {utc(change.since)}: {change.error}")
        else:
            reach_lines.append(f"{sensor}: tzspd's metrics readable again after {span(change.at - change.since)}")
    if reach_lines:
        lines += ([""] if lines else []) + reach_lines
        if any(change.unreachable for change in batch.reach.values()):
            lines += [
                "",
                "Snort restarts there are not seen meanwhile. Is tzspd running (systemctl status tzspd), "
                "with --metrics on that address, and is its port open to this host?",
            ]
    total = sum(g.count for g in batch.restarts.values())
    sensors = {sensor for sensor, _ in batch.restarts}
    if len(batch.restarts) == 1:
        [(sensor, consumer)] = batch.restarts
        head = (
            f"Snort restarted on {sensor}"
            + (f" (consumer {consumer})" if consumer != TOTAL else "")
            + (f", {total} times" if total > 1 else "")
        )
    elif batch.restarts:
        head = f"Snort restarted {plural(total, 'time')} on {listing(sorted(sensors), 2)}"
    else:
        head = ""
    unreachable = [s for s, c in batch.reach.items() if c.unreachable]
    back = [s for s, c in batch.reach.items() if not c.unreachable]
    parts = [head] if head else []
    if unreachable:
        parts.append(f"tzspd metrics unreadable: {listing(unreachable, 2)}")
    if back:
        parts.append(f"tzspd metrics back: {listing(back, 2)}")
    severity = "failure" if down else "warning" if batch.restarts else "success"
    return Message("snort", title("; ".join(parts)), "\n".join(lines), severity, batch.count)
