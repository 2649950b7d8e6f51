"""What `snort-bridge run` and `snort-bridge scan` do with each input, in one processing thread.

alert line -> parse_line -> Policy.decide -> Responder.block; RouterOS firewall log line ->
FirewallEvent -> probe -> ScanDetector -> the same policy and responder; a packet's probe ->
the same detector. No sockets, files or threads here: the shell (bridge/service/service.py) feeds this
from its queue, and this calls the responder (which only records and wakes its workers).
Not thread-safe, like the policy it drives.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bridge.config import Config
from bridge.decide.durations import LedgerOffences
from bridge.decide.policy import Policy
from bridge.events import Alert, Decision, IPAddress, Origin
from bridge.parsers import UnparsableLine, parse_line
from bridge.scan.detector import Probe, ScanDetector
from bridge.scan.probes import probe_from_firewall_event
from bridge.scan.routeros_log import NotAFirewallLine, parse_firewall_line
from responder.events import BlockRequest
from responder.feed import NO_FEED, BlockLifted, Decided, Feed, FloodGuardChanged, LineRead

log = logging.getLogger("snort-bridge")

UNPARSABLE_REPORT_INTERVAL = 10.0  # seconds: at most one warning per source this often


@dataclass
class Counts:
    """What the STATUS line and the stop message report."""

    lines: int = 0
    alerts: int = 0
    unparsable: int = 0
    firewall_lines: int = 0
    probes: int = 0
    detections: int = 0
    blocks: int = 0
    ignored: int = 0
    failed: int = 0  # block decisions the responder refused or could not record

    def summary(self) -> str:
        parts = [f"{self.lines} lines", f"{self.alerts} alerts", f"{self.blocks} blocks"]
        if self.firewall_lines or self.probes:
            parts.append(f"{self.detections} scans in {self.probes} probes")
        if self.unparsable:
            parts.append(f"{self.unparsable} unparsable")
        if self.failed:
            parts.append(f"{self.failed} failed")
        return ", ".join(parts)


def build_policy(config: Config, *, protect: Iterable = (), previous: Policy | None = None) -> Policy:
    """The policy for ``config``, with ``protect`` (routers, this host) never blocked.

    ``Pipeline.resync`` then tells it which blocks are in force (from the ledger).
    ``previous`` (on reload) hands over what was learnt about flows, and the flood guard when its
    limits did not change, so a reload neither forgets a tripped guard nor who initiated what.
    """
    policy = Policy(
        config.policy,
        always_protected=list(protect),
        memory=previous.memory if previous else None,
        offences=previous.offences if previous else None,
    )
    if previous is not None and (previous.config.max_new_blocks_per_minute, previous.config.rollback) == (
        config.policy.max_new_blocks_per_minute,
        config.policy.rollback,
    ):
        policy.guard = previous.guard
    return policy


class _Throttle:
    """At most one report per key per ``interval``, saying how many were held back meanwhile."""

    def __init__(self, interval: float = UNPARSABLE_REPORT_INTERVAL, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self.clock = clock
        self._last: dict[str, tuple[float, int]] = {}

    def allow(self, key: str) -> int | None:
        """None to stay quiet; else the number of reports suppressed since the last one."""
        now = self.clock()
        last, held = self._last.get(key, (-1e18, 0))
        if now - last < self.interval:
            self._last[key] = (last, held + 1)
            return None
        if len(self._last) > 1000:
            self._last.clear()
        self._last[key] = (now, 0)
        return held


class Pipeline:
    """Inputs in, decisions and block requests out; keeps the counts."""

    def __init__(
        self,
        policy: Policy,
        responder=None,
        detector: ScanDetector | None = None,
        *,
        clock: Callable[[], float] = time.time,
        routers: int = 0,
        feed: Feed = NO_FEED,
    ):
        self.policy = policy
        self.responder = responder  # None: decisions are only logged (no routers, or --dry-run)
        self.detector = detector
        self.clock = clock
        self.routers = routers
        self.feed = feed  # what happened, for metrics, notifications and the status page
        self.counts = Counts()
        self.noted: dict[IPAddress, float] = {}  # blocks the policy knows of (for resync with the ledger)
        ledger = getattr(responder, "ledger", None)
        if ledger is not None:  # offences are counted where they are kept: across restarts, cleared by unblock
            policy.offences = LedgerOffences(ledger)
        self._throttle = _Throttle()

    # -- inputs ---------------------------------------------------------------------------

    def alert_line(self, text: str, origin: Origin, fmt: str = "auto") -> Decision | None:
        """One line of an alert file; None when it is not an alert (logged, never raised)."""
        self.counts.lines += 1
        try:
            alert = parse_line(text, origin, fmt)
        except UnparsableLine as exc:
            if not exc.noise:
                self.counts.unparsable += 1
                self._report_unparsable(origin, exc.reason)
            self.feed.publish(LineRead(origin.source, "noise" if exc.noise else "unparsable", self.clock()))
            return None
        self.counts.alerts += 1
        self.feed.publish(LineRead(origin.source, "alert", self.clock()))
        return self.act(alert)

    def firewall_line(self, text: str, origin: Origin, received_at: float) -> Decision | None:
        """One RouterOS log line (syslog datagram or followed file): a probe for the scan detector."""
        self.counts.firewall_lines += 1
        self.feed.publish(LineRead(origin.source, "firewall", self.clock()))
        try:
            event = parse_firewall_line(text)
        except NotAFirewallLine as exc:
            # Remote logging often carries other topics too: quietly, unless it claims to be firewall.
            if "firewall" in text[:80]:
                self.counts.unparsable += 1
                self._report_unparsable(origin, str(exc))
            return None
        probe = probe_from_firewall_event(event, received_at)
        return self.probe(probe, via=event.router or origin.source) if probe is not None else None

    def probe(self, probe: Probe, via: str = "") -> Decision | None:
        """A connection attempt for the detector; a Decision when it crossed the threshold."""
        if self.detector is None:
            return None
        self.counts.probes += 1
        alert = self.detector.feed(probe)
        if alert is None:
            return None
        self.counts.detections += 1
        log.info("scan detected: %s from %s%s", alert.msg, alert.src, f" (via {via})" if via else "")
        return self.act(alert)

    # -- the decision and the block ------------------------------------------------------------

    def act(self, alert: Alert) -> Decision:
        now = self.clock()
        decision = self.policy.decide(alert, now)
        if decision.action == "block":
            self._block(decision, now)
        else:
            self.counts.ignored += 1
            self._log_ignore(decision)
        resumed = self.policy.take_guard_resume(now)  # this decision came after a quiet minute
        if resumed is not None:
            self._guard_resumed(resumed)
        self.feed.publish(Decided(decision, now))
        trip = self.policy.take_guard_event()
        if trip is not None:
            self._guard_tripped(trip)
        return decision

    def _block(self, decision: Decision, now: float) -> None:
        assert decision.target is not None
        alert = decision.alert
        where = f"{self.routers} router(s)" if self.responder is not None else "no router (dry run)"
        if self.responder is not None:
            request = BlockRequest(
                decision.target,
                decision.block_for,
                decision.why,
                alert.gid_sid,
                requested_at=now,
                duration_why=decision.duration_why,
                source=str(alert.origin),
            )
            try:
                self.responder.block(request)
            except Exception as exc:  # noqa: BLE001 -- a refused target or a ledger error must not stop the service
                self.counts.failed += 1
                self.policy.forget(decision.target)
                log.error("could not block %s: %s%s", decision.target, exc, _where(alert))
                return
        self.counts.blocks += 1
        self.noted[decision.target] = now + decision.block_for
        log.info("BLOCK %s on %s: %s%s", decision.target, where, decision.why, _where(alert))

    def _log_ignore(self, decision: Decision) -> None:
        # An alert that counted but is not acted on (protected, no safe attacker, threshold) is
        # worth a line; an alert below the priority bar or one more from a blocked attacker is not.
        if not decision.attribution or "already blocked" in decision.why:
            log.debug("ignore: %s%s", decision.why, _where(decision.alert))
            return
        alert = decision.alert
        if self._throttle.allow(f"ignore {alert.gid_sid} {alert.src} {alert.dst}") is not None:
            log.info("not blocking: %s%s", decision.why, _where(alert))

    def _guard_tripped(self, trip) -> None:
        log.error("%s", trip.describe())
        self.feed.publish(FloodGuardChanged(True, trip.at, trip.describe(), tuple(trip.rollback)))
        for address in trip.rollback:
            self.noted.pop(address, None)
            if self.responder is None:
                continue
            try:
                self.responder.unblock(address)
                log.error("FLOOD GUARD: rolled back the block of %s", address)
            except Exception as exc:  # noqa: BLE001
                log.error("FLOOD GUARD: could not roll back %s: %s", address, exc)

    def tick(self) -> None:
        """From the service's loop: a flood guard whose quiet minute is over resumes now, and says so."""
        if self.policy.guard.tripped is None:
            return
        resumed = self.policy.take_guard_resume(self.clock())
        if resumed is not None:
            self._guard_resumed(resumed)

    def guard_replaced(self, old_guard, now: float) -> None:
        """A reload with new flood-guard limits replaced a tripped guard: blocking resumes, and is told so."""
        resumed = old_guard.clear(now, "a reload with new flood-guard limits")
        if resumed is not None:
            old_guard.take_resume()
            self._guard_resumed(resumed)

    def _guard_resumed(self, resumed) -> None:
        log.warning("%s", resumed.describe())
        self.feed.publish(
            FloodGuardChanged(False, resumed.at, resumed.describe(), held=resumed.held, since=resumed.tripped_at)
        )

    def _report_unparsable(self, origin: Origin, reason: str) -> None:
        held = self._throttle.allow(f"unparsable {origin.source}")
        if held is None:
            return
        more = f" ({held} more since the last report)" if held else ""
        where = f"{origin.source} line {origin.line} (byte {origin.offset})" if origin.line else str(origin)
        log.warning("unparsable line at %s: %s%s", where, reason, more)

    # -- keeping the policy in step with the ledger ------------------------------------------

    def resync(self, ledger, now: float) -> None:
        """Make the policy's blocks those in force in the ledger.

        At start it learns the blocks made before (no repeat after a restart); later, a block undone
        by hand (`snort-bridge unblock`) may be wanted again, and one made by hand is not re-sent.
        """
        ledger.purge_offences(now - self.policy.config.remember_for)
        active = {record.address: record.expires_at for record in ledger.blocks(now) if record.state == "active"}
        for address in [a for a in self.noted if a not in active]:
            until = self.noted.pop(address)
            self.policy.forget(address)
            if until > now:  # not expired: undone by hand
                self.feed.publish(BlockLifted(address, now, until))
        for address, until in active.items():
            if self.noted.get(address) != until:
                self.noted[address] = until
                self.policy.note_blocked(address, until)


def _where(alert: Alert) -> str:
    """`` [file:line]`` for an alert read from a file; nothing for the detector's own alerts."""
    return f" [{alert.origin}]" if alert.origin.line else ""
