"""A reload (SIGHUP): what differs between the running configuration and the re-read one, hence
which parts must be rebuilt, and the pipeline rebuilt for the new configuration. bridge.service
does the rebuilding, in the order that handles every followed line once (Service.reload).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bridge.config import Config
from bridge.pipeline import Pipeline, build_policy
from bridge.service.parts import followed_sources, make_detector, protected_addresses
from responder.feed import Feed


@dataclass(frozen=True)
class Changes:
    """What a reload rebuilds; what is unchanged keeps running, with what it has learnt."""

    listener: bool  # the firewall-log listener: [scan] added, removed, or listening elsewhere
    routers: bool  # the responder: [[routers]] or state_dir (its ledger)
    files: bool  # the follower: the followed files
    scan: bool  # the scan detector
    notify: bool  # the notifications: [notify], or the routers and files they speak of
    router_logs: bool  # the routers whose own log is followed ([scan] routers), or their tables

    @classmethod
    def between(cls, old: Config, new: Config) -> Changes:
        return cls(
            listener=new.scan is None or old.scan is None or new.scan.syslog != old.scan.syslog,
            routers=(new.routers, new.state_dir) != (old.routers, old.state_dir),
            files=followed_sources(new) != followed_sources(old),
            scan=new.scan != old.scan,
            notify=_notify_inputs(new) != _notify_inputs(old),
            router_logs=_followed_routers(new) != _followed_routers(old),
        )


def _followed_routers(config: Config) -> tuple:
    names = config.scan.routers if config.scan is not None else ()
    return tuple(router for router in config.routers if router.name in names)


def _notify_inputs(config: Config) -> tuple:
    return config.notify, tuple(r.name for r in config.routers), tuple(a.path for a in config.alerts)


def reloaded_pipeline(current: Pipeline, new: Config, responder, feed: Feed, *, scan_changed: bool) -> Pipeline:
    """The pipeline for ``new``, going on from ``current``: its policy's memory (bridge.decide.policy,
    ``previous``), its counts, and its detector unless [scan] changed; in line with the ledger."""
    pipeline = Pipeline(
        build_policy(new, protect=protected_addresses(new), previous=current.policy),
        responder,
        make_detector(new) if scan_changed else current.detector,
        routers=len(new.routers),
        feed=feed,
    )
    pipeline.counts = current.counts
    old_guard = current.policy.guard
    if pipeline.policy.guard is not old_guard:
        pipeline.guard_replaced(old_guard, time.time())  # a tripped guard dropped: blocking resumes
    if responder is not None:
        pipeline.resync(responder.ledger, time.time())
    return pipeline
