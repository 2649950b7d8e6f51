"""The policy: from an Alert to a Decision (block whom, for how long, and why).

Pure: all state lives in a ``Policy`` object and time is passed in (``now``, seconds since the
epoch), so the same alerts always give the same decisions. Rules, in order:

1. which alerts count: ``exclude_sids`` never; a non-empty ``include_sids`` lists the only ones
   (acted on whatever their priority); the shipped exclusion list (bridge.decide.exclusions) not
   unless ``standard_exclusions = false``; port scans (gid 122, priority 2 or 3) when ``portscan``;
   otherwise priority <= ``min_priority``;
2. which end is the attacker (bridge.decide.attribution; per-SID ``attacker``);
3. a sweep of one port across hosts outside ``protected`` is a client's traffic, not a scan, unless
   ``block_client_sweeps`` (bridge.decide.sweeps);
4. never a protected address (``protected``, loopback, unspecified, multicast, link-local,
   reserved/broadcast, the routers and this host), whichever end it is on; a protected attacker
   with an unprotected peer is said so, naming the peer;
5. ``threshold`` alerts from the address within ``window`` (alert time when known);
6. no repeat while a block is in force (noisy detection_filter rules fold into it);
7. how long (bridge.decide.durations): per network, per rule or ``block_for``, longer for repeat offenders;
8. flood guard: more than ``max_new_blocks_per_minute`` new blocks in a minute stops blocking
   until a quiet minute has passed, and names the ``rollback`` latest blocks to undo.
"""

from __future__ import annotations

import ipaddress
import time as _time
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass

from bridge.config import PolicyConfig
from bridge.decide.attribution import Attribution, FlowMemory, attribute
from bridge.decide.durations import OffenceHistory, OffenceMemory, block_duration
from bridge.decide.exclusions import exclusion_reason
from bridge.decide.sweeps import client_sweep
from bridge.events import Alert, Decision, IPAddress
from responder.routeros.duration import format_duration

FLOOD_WINDOW = 60.0  # seconds: "new blocks per minute", and the quiet time before resuming
MAX_TRACKED = 100_000  # addresses kept for threshold counting / no-repeat, oldest dropped first

Protectable = str | IPAddress | ipaddress.IPv4Network | ipaddress.IPv6Network

_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_SHIELD_CACHE_SIZE = 65536  # ipaddress' is_* properties are slow; an address's answer never changes


@dataclass(frozen=True)
class FloodGuardTrip:
    """The flood guard stopped blocking: the service logs it and undoes ``rollback``."""

    at: float
    new_blocks: int  # new blocks wanted within the last minute, the one that tripped included
    limit: int
    rollback: tuple[IPAddress, ...]  # latest blocks first; the policy has already forgotten them

    def describe(self) -> str:
        undo = f", rolling back {len(self.rollback)} latest blocks" if self.rollback else ""
        return (
            f"FLOOD GUARD TRIPPED: {self.new_blocks} new blocks within {FLOOD_WINDOW:g}s > "
            f"max_new_blocks_per_minute {self.limit}; blocking stopped until a quiet minute{undo}"
        )


@dataclass(frozen=True)
class FloodGuardResume:
    """The flood guard let blocking resume: a quiet minute passed, or a reload replaced the guard."""

    at: float  # when blocking resumed
    tripped_at: float
    held: int  # block decisions not made while it held, the one that tripped it included
    why: str = "a quiet minute"

    def describe(self) -> str:
        return (
            f"FLOOD GUARD CLEARED: blocking resumed after {self.why}; it held from {_clock(self.tripped_at)} for "
            f"{format_duration(max(0.0, self.at - self.tripped_at))}, {self.held} block decisions held back"
        )


class FloodGuard:
    """Counts new blocks per sliding minute; trips above the limit, resumes after a quiet minute."""

    def __init__(self, limit: int, rollback: int):
        self.limit = limit
        self.rollback_count = rollback
        self._recent: deque[float] = deque()  # times of new blocks within the last minute
        self._latest: deque[IPAddress] = deque(maxlen=max(rollback, 1))
        self.tripped: FloodGuardTrip | None = None
        self.held = 0  # block decisions refused since the trip (reported when it resumes)
        self._resumed: FloodGuardResume | None = None
        self._last_attempt = 0.0

    def check(self, now: float) -> str | None:
        """None when blocking is allowed; else the loud text for every decision's reason.

        Called per decision, and by the service's loop so that a resume is seen (and told) when
        the quiet minute is over, not only at the next alert.
        """
        if self.tripped is None:
            return None
        if now - self._last_attempt >= FLOOD_WINDOW:
            self.clear(self._last_attempt + FLOOD_WINDOW)
            return None
        return self.holding()

    def clear(self, at: float, why: str = "a quiet minute") -> FloodGuardResume | None:
        """Let blocking resume; the resume (also kept for ``take_resume``), or None when not tripped."""
        if self.tripped is None:
            return None
        self._resumed = FloodGuardResume(at, self.tripped.at, self.held, why)
        self.tripped = None
        self.held = 0
        self._recent.clear()
        return self._resumed

    def take_resume(self) -> FloodGuardResume | None:
        """The resume that happened since the last call (once)."""
        resumed, self._resumed = self._resumed, None
        return resumed

    def holding(self) -> str:
        assert self.tripped is not None
        since = _clock(self.tripped.at)
        return f"FLOOD GUARD: blocking stopped since {since} ({self.tripped.new_blocks} new blocks within a minute > {self.limit})"

    def attempt(self, now: float) -> tuple[FloodGuardTrip | None, bool]:
        """A new block is wanted now: (None, False) if it may go out, else (the trip, whether it is new)."""
        self._last_attempt = now
        if self.tripped is not None:
            self.held += 1
            return self.tripped, False
        while self._recent and now - self._recent[0] >= FLOOD_WINDOW:
            self._recent.popleft()
        if len(self._recent) + 1 <= self.limit:
            return None, False
        rollback = tuple(reversed(self._latest))[: self.rollback_count] if self.rollback_count else ()
        self._latest.clear()
        self.tripped = FloodGuardTrip(at=now, new_blocks=len(self._recent) + 1, limit=self.limit, rollback=rollback)
        self.held = 1  # the block that tripped it is not made either
        return self.tripped, True

    def record(self, now: float, address: IPAddress) -> None:
        self._recent.append(now)
        self._latest.append(address)


class Policy:
    """Holds what the decisions depend on: counts, current blocks, flood guard, flow memory."""

    def __init__(
        self,
        config: PolicyConfig,
        always_protected: Iterable[Protectable] = (),
        memory: FlowMemory | None = None,
        offences: OffenceHistory | None = None,
    ):
        self.config = config
        self.offences: OffenceHistory = offences if offences is not None else OffenceMemory()
        self.protected_networks = tuple(config.protected)
        self.always_protected: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self._shield_cache: dict[IPAddress, str | None] = {}
        for item in always_protected:
            self.protect(item)
        self.memory = memory if memory is not None else FlowMemory()
        self.guard = FloodGuard(config.max_new_blocks_per_minute, config.rollback)
        self._blocked: OrderedDict[IPAddress, float] = OrderedDict()  # address -> until
        self._folded: dict[IPAddress, int] = {}  # alerts folded into a block in force
        self._hits: OrderedDict[IPAddress, deque[float]] = OrderedDict()
        self._guard_event: FloodGuardTrip | None = None

    # -- what the responder side tells the policy ----------------------------------------------

    def protect(self, item: Protectable) -> None:
        """Add an address or network that is never blocked (routers, this host)."""
        network = (
            ipaddress.ip_network(item, strict=False)
            if not isinstance(item, (ipaddress.IPv4Network, ipaddress.IPv6Network))
            else item
        )
        self.always_protected.append(network)
        self._shield_cache = {}

    def note_blocked(self, address: IPAddress, until: float) -> None:
        """``address`` is blocked until ``until`` (e.g. from the ledger at start): don't send it again."""
        address = _unmapped(address)
        self._blocked.pop(address, None)
        self._blocked[address] = until
        self._bound(self._blocked)

    def forget(self, address: IPAddress) -> None:
        """``address`` is no longer blocked (unblocked by hand, rolled back, or the block failed)."""
        address = _unmapped(address)
        self._blocked.pop(address, None)
        self._folded.pop(address, None)
        self._hits.pop(address, None)
        forget_offences = getattr(self.offences, "forget", None)  # the ledger's history clears on unblock
        if forget_offences is not None:
            forget_offences(address)

    def blocked_until(self, address: IPAddress, now: float) -> float | None:
        until = self._blocked.get(_unmapped(address))
        return until if until is not None and until > now else None

    def take_guard_event(self) -> FloodGuardTrip | None:
        """The flood-guard trip that happened since the last call (once), for the service to act on."""
        event, self._guard_event = self._guard_event, None
        return event

    def take_guard_resume(self, now: float) -> FloodGuardResume | None:
        """The flood guard's resume since the last call (once): found by a decision, or now by the clock."""
        self.guard.check(now)
        return self.guard.take_resume()

    # -- the decision --------------------------------------------------------------------------

    def decide(self, alert: Alert, now: float) -> Decision:
        guard_text = self.guard.check(now)
        decision = self._decide(alert, now)
        if guard_text is not None and not decision.why.startswith("FLOOD GUARD"):
            # While the guard holds, every decision says so: nobody should miss it in the log.
            decision = Decision(
                action=decision.action,
                why=f"{guard_text}; {decision.why}",
                alert=alert,
                target=decision.target,
                block_for=decision.block_for,
                attribution=decision.attribution,
                reason=decision.reason,
                duration_why=decision.duration_why,
            )
        return decision

    def _decide(self, alert: Alert, now: float) -> Decision:
        config = self.config
        counts, reason, label = self._counts(alert)
        if not counts:
            self.memory.observe(alert, now)
            return _ignore(alert, reason, label)
        attribution = attribute(alert, config.attacker, config.portscan_attribution, self.memory, now)
        self.memory.observe(alert, now)  # after attributing: an alert is no evidence for itself
        target = attribution.attacker
        if target is None:
            return _ignore(alert, f"{reason}; attacker {attribution.how}", "no_attacker", attribution)
        target = _unmapped(target)
        if attribution.basis != "context":
            self.memory.note_attacker(target, now, alert.gid_sid)
        why = f"{reason}; attacker {attribution.how}"
        peer = _unmapped_or_none(alert.dst if attribution.end == "src" else alert.src)
        if not config.block_client_sweeps:
            sweep = client_sweep(alert, peer, self.protected_networks)
            if sweep is not None:
                return _ignore(alert, f"{why}; but {sweep}", "client_sweep", attribution)
        shield = self._protection(target)
        if shield:
            # your own network (policy.protected), not a special address, attacking an outside host
            if (
                shield.startswith("policy.protected")
                and peer is not None
                and peer != target
                and not self._protection(peer)
            ):
                return _ignore(
                    alert,
                    f"{why}; but {target} is protected ({shield}): one of your hosts is the attacker end "
                    f"(compromised, or misbehaving?); its outside peer is {peer}; not blocking either, look at {target}",
                    "protected_attacker",
                    attribution,
                )
            return _ignore(alert, f"{why}; but {target} is protected ({shield})", "protected", attribution)
        seen = self._count_hit(target, alert, now)
        if seen < config.threshold:
            return _ignore(
                alert,
                f"{why}; {seen} of {config.threshold} alerts from {target} within {format_duration(config.window)}",
                "threshold",
                attribution,
            )
        until = self.blocked_until(target, now)
        if until is not None:
            folded = self._folded.get(target, 0) + 1
            self._folded[target] = folded
            return _ignore(
                alert,
                f"{target} already blocked until {_clock(until)} ({folded} later alerts folded in); {why}",
                "already_blocked",
                attribution,
            )
        trip, fresh = self.guard.attempt(now)
        if trip is not None:
            if fresh:
                for address in trip.rollback:
                    self.forget(address)
                self._guard_event = trip
            text = trip.describe() if fresh else self.guard.holding()
            return _ignore(alert, f"{text}; not blocking {target}: {why}", "flood_guard", attribution)
        self.guard.record(now, target)
        duration = block_duration(config, target, alert.gid_sid, self.offences.count(target, now - config.remember_for))
        self.offences.note(target, now)
        self.note_blocked(target, now + duration.seconds)
        self._folded.pop(target, None)
        explained = duration.explain()
        return Decision(
            action="block",
            why=f"block {target} for {format_duration(duration.seconds)} ({explained}): {why}",
            alert=alert,
            target=target,
            block_for=duration.seconds,
            attribution=attribution.how,
            reason=label,
            duration_why=explained,
        )

    def _counts(self, alert: Alert) -> tuple[bool, str, str]:
        """Does this alert count at all, the reason in words, and as a DECISION_REASONS label."""
        config = self.config
        key = alert.gid_sid
        if key in config.exclude_sids:
            return False, f"{key} is in policy.exclude_sids", "excluded"
        if config.include_sids:
            if key in config.include_sids:
                return True, f"{key} is in policy.include_sids", "included"
            return False, f"{key} is not in policy.include_sids", "not_included"
        if config.standard_exclusions:
            reason = exclusion_reason(key)
            if reason is not None:
                return (
                    False,
                    f"{key} is in the shipped exclusion list: {reason} (policy.standard_exclusions)",
                    "excluded",
                )
        if alert.is_portscan:
            # gid 122 comes with priority 3 (Snort 3) or 2 (Snort 2): matched by gid, not priority.
            if config.portscan:
                return True, f"port scan ({key}, priority {_text(alert.priority)})", "portscan"
            return False, f"port scan ({key}) but policy.portscan = false", "portscan_off"
        if alert.priority is None:
            return (
                False,
                f"{key} carries no priority in this format; list it in policy.include_sids to act on it",
                "no_priority",
            )
        if alert.priority <= config.min_priority:
            return True, f"{key} priority {alert.priority} <= min_priority {config.min_priority}", "priority"
        return False, f"{key} priority {alert.priority} > min_priority {config.min_priority}", "low_priority"

    def _protection(self, address: IPAddress) -> str | None:
        """Why ``address`` must never be blocked, or None (cached per address)."""
        try:
            return self._shield_cache[address]
        except (KeyError, TypeError):
            pass
        shield = self._find_protection(address)
        if len(self._shield_cache) >= _SHIELD_CACHE_SIZE:
            self._shield_cache.clear()
        try:
            self._shield_cache[address] = shield
        except TypeError:
            pass  # unhashable garbage from a broken parser: just not cached
        return shield

    def _find_protection(self, address: IPAddress) -> str | None:
        if not isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            return "not an IP address"
        kinds = (
            ("loopback", address.is_loopback),
            ("unspecified", address.is_unspecified),
            ("multicast", address.is_multicast),
            ("link-local", address.is_link_local),
            ("reserved/broadcast", address.is_reserved or address == _BROADCAST),
            ("'this network' 0.0.0.0/8", address.version == 4 and address in _THIS_NETWORK),
        )
        for name, hit in kinds:
            if hit:
                return name
        for network in self.protected_networks:
            if address.version == network.version and address in network:
                return f"policy.protected {network}"
        for network in self.always_protected:
            if address.version == network.version and address in network:
                return f"a router or this host ({network})"
        return None

    def _count_hit(self, address: IPAddress, alert: Alert, now: float) -> int:
        stamp = now
        if alert.time is not None:
            try:
                stamp = alert.time.timestamp()
            except (OverflowError, ValueError, OSError):
                pass  # a year the platform cannot convert: count it at the time it was read
        hits = self._hits.pop(address, None) or deque()
        hits.append(stamp)
        while hits and stamp - hits[0] > self.config.window:
            hits.popleft()
        while len(hits) > self.config.threshold:
            hits.popleft()  # only the latest N matter
        self._hits[address] = hits
        self._bound(self._hits)
        return len(hits)

    def _bound(self, table: OrderedDict) -> None:
        while len(table) > MAX_TRACKED:
            oldest, _ = table.popitem(last=False)
            self._folded.pop(oldest, None)


def _ignore(alert: Alert, why: str, reason: str, attribution: Attribution | None = None) -> Decision:
    return Decision(
        action="ignore", why=why, alert=alert, attribution=attribution.how if attribution else "", reason=reason
    )


def _unmapped(address: IPAddress) -> IPAddress:
    """::ffff:a.b.c.d is the IPv4 host a.b.c.d: check and block it as such."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _unmapped_or_none(address: IPAddress | None) -> IPAddress | None:
    if not isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return None
    return _unmapped(address)


def _text(value: int | None) -> str:
    return "unknown" if value is None else str(value)


def _clock(stamp: float) -> str:
    return _time.strftime("%Y-%m-%d %H:%M:%SZ", _time.gmtime(stamp))
