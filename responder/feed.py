"""What the IPS did, as it happens: one feed that metrics, notifications and the status page read.

The pipeline and the router workers ``publish`` small frozen events; subscribers take them. The
feed sits beside the alert path, never in it: ``publish`` only hands each event to each
subscriber, and a subscriber must return at once (put it on its own bounded queue, bump a
counter). A subscriber that raises is logged once and dropped, so a broken output cannot stop
the blocking.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from responder.events import IPAddress

log = logging.getLogger("snort-bridge")

Subscriber = Callable[[object], None]


# -- the events -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineRead:
    """One line of a followed alert file (or firewall log) was handled."""

    source: str  # the file, "udp:host:port", or "pcap:..."
    outcome: str  # "alert" | "unparsable" | "noise" | "firewall"
    at: float


@dataclass(frozen=True)
class Decided:
    """The policy decided on one alert; ``decision`` is a bridge.events.Decision."""

    decision: object
    at: float  # when its line was handled: the start of the block latency


@dataclass(frozen=True)
class FloodGuardChanged:
    """The flood guard stopped blocking (``tripped``), or let it resume (then ``held`` and ``since``)."""

    tripped: bool
    at: float
    description: str
    rolled_back: tuple[IPAddress, ...] = ()
    held: int = 0  # resume: block decisions not made while it held
    since: float | None = None  # resume: when it tripped


@dataclass(frozen=True)
class RouterChanged:
    """A router's worker connected (``up``) or lost / could not make its connection."""

    router: str
    up: bool
    at: float
    error: str | None = None
    pending: int | None = None  # up: blocks (and unblocks) waiting in the ledger for it, as it connected


@dataclass(frozen=True)
class BlockLifted:
    """A block in force left the ledger before its end: `snort-bridge unblock` (seen at a resync)."""

    address: IPAddress
    at: float
    was_until: float


@dataclass(frozen=True)
class EntryApplied:
    """The router took (or already had) ``address`` in its list."""

    router: str
    address: IPAddress
    at: float
    expires_at: float | None = None


@dataclass(frozen=True)
class EntryRemoved:
    router: str
    address: IPAddress
    at: float


@dataclass(frozen=True)
class EntryRefused:
    router: str
    address: IPAddress
    at: float
    error: str


@dataclass(frozen=True)
class StateTrouble:
    """A state file (``what``: "ledger", "positions") cannot be written (``ok`` False), can be
    written again (``ok`` True), or was found damaged and set aside (``damaged``); ``text`` says it
    for a person."""

    what: str
    ok: bool
    at: float
    text: str
    damaged: bool = False  # found damaged and set aside (news, told once), not a lasting state


# -- the feed -------------------------------------------------------------------------------------


class Feed:
    """Hands every published event to every subscriber, in the publisher's thread."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> Subscriber:
        with self._lock:
            self._subscribers = [*self._subscribers, subscriber]
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers = [s for s in self._subscribers if s is not subscriber]

    def publish(self, event: object) -> None:
        for subscriber in self._subscribers:  # a snapshot: (un)subscribing replaces the list
            try:
                subscriber(event)
            except Exception:  # noqa: BLE001 -- an output must never break the alert path
                log.exception("an output failed on %s and is disconnected", type(event).__name__)
                self.unsubscribe(subscriber)


NO_FEED = Feed()  # for publishers that were given none: publishing to nobody costs one loop


class QueueSubscriber:
    """A bounded queue of events for a consumer thread; counts what did not fit instead of waiting."""

    def __init__(self, maxsize: int = 10_000, accept: Callable[[object], bool] = lambda event: True) -> None:
        self.queue: queue.Queue[object] = queue.Queue(maxsize)
        self.accept = accept
        self.dropped = 0

    def __call__(self, event: object) -> None:
        if not self.accept(event):
            return
        try:
            self.queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1
