"""`snort-bridge run`: the service.

Threads read (bridge.service.inputs: the follower and the syslog listener) and only put what they
read on one queue. The main thread takes from it and does all the work (bridge.pipeline), because
the policy is not thread-safe, then commits each followed line. The outputs (bridge.service.outputs:
the responder, whose workers (one per router) do the SSH, the notifications, the [http] server) are
started before the inputs and stopped after them. Signals only set flags: SIGHUP re-reads the
configuration (a bad one is refused and the running one kept; what changed is rebuilt,
bridge.service.reload), SIGTERM/SIGINT stop cleanly (what was read is handled, positions saved,
pending blocks stay in the ledger for the next start). systemd: READY once everything is started,
WATCHDOG from the processing loop, STATUS with the counts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time

from bridge.config import Config, ConfigError
from bridge.config.load import load_config
from bridge.events import Origin
from bridge.follow.follower import Follower, Line
from bridge.pipeline import Pipeline, build_policy
from bridge.service.inputs import Inputs
from bridge.service.keeping import Keeper, lock_state_dir
from bridge.service.outputs import Outputs
from bridge.service.parts import (
    FIREWALL,
    check_runnable,
    make_detector,
    make_notifications,
    protected_addresses,
)
from bridge.service.reload import Changes, reloaded_pipeline
from bridge.service.stderr_log import flush_log
from plumbing.sdnotify import Notifier
from plumbing.statelock import SERVICE, StateDirBusy, StateDirLock
from plumbing.steadyclock import SteadyClock
from responder.degraded import LedgerInMemory
from responder.feed import Feed

log = logging.getLogger("snort-bridge")

PASS_MAX = 64  # queued inputs (a followed batch is up to 256 lines) per pass: one ledger commit
TICK = 0.2  # seconds: how often the loop looks at signals, the watchdog and the clock
STATUS_INTERVAL = 10.0
RESYNC_INTERVAL = 30.0  # seconds between comparisons of the policy's blocks with the ledger


class Service:
    def __init__(self, config: Config, *, notifier: Notifier | None = None):
        check_runnable(config)
        self.config = config
        self.notifier = notifier or Notifier()
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._report = threading.Event()
        self.fatal: str | None = None
        self.pipeline: Pipeline | None = None
        self.feed = Feed()  # what happened: metrics, notifications and the status page subscribe
        self.clock = SteadyClock()  # wall time that NTP does not step: block ends stay put
        self.inputs = Inputs(self._fail)
        self.outputs = Outputs(self.feed, self.clock)
        self.state_lock: StateDirLock | None = None
        self.keeper = Keeper(self, self.clock)  # the state_dir's lock, clock steps, state files in trouble

    # what the status page (bridge.watching.web) and the tests read

    @property
    def queue(self) -> queue.Queue[tuple]:
        return self.inputs.queue

    @property
    def follower(self) -> Follower | None:
        return self.inputs.follower

    @property
    def sources(self) -> dict[str, str]:
        return self.inputs.sources

    @property
    def responder(self):
        return self.outputs.responder

    @property
    def notifications(self):
        return self.outputs.notifications

    # lifecycle

    def start(self) -> None:
        """Start everything; StateDirBusy if another process holds the state_dir."""
        config = self.config
        outputs, inputs = self.outputs, self.inputs
        self.state_lock = lock_state_dir(config.state_dir)
        try:
            outputs.start_web(self, config)  # first: it sees every event from the start
        except BaseException:
            self._release_state_lock()
            raise
        try:
            outputs.start_notifications(config)  # before the routers: a router down at start is told
            outputs.start_responder(config)
            policy = build_policy(config, protect=protected_addresses(config))
            self.pipeline = Pipeline(
                policy,
                self.responder,
                make_detector(config),
                routers=len(config.routers),
                feed=self.feed,
                clock=self.clock,
            )
            if self.responder is not None:
                self.pipeline.resync(self.responder.ledger, self.clock())
            inputs.start_listener(config)
            inputs.start_follower(config)
            inputs.start_router_logs(config)
        except BaseException:
            outputs.stop()
            self._release_state_lock()
            raise
        log.info(
            "started: following %d file(s), %s, %s; %d block(s) in force",
            len(self.sources),
            inputs.listening(),
            outputs.routers_text(),
            len(self.pipeline.noted),
        )
        if not config.routers:
            log.warning("no [[routers]] configured: decisions are logged, nothing is blocked")
        self.notifier.ready(self.status_text())

    def request_stop(self, *_: object) -> None:
        self._stop.set()

    def request_reload(self, *_: object) -> None:
        self._reload.set()

    def request_report(self, *_: object) -> None:
        self._report.set()

    def run(self) -> int:
        """The processing loop, until a stop is asked for; then a clean stop. Returns the exit status."""
        assert self.pipeline is not None
        interval = self.notifier.watchdog_interval
        last_ping = last_status = last_resync = time.monotonic()
        try:
            while not self._stop.is_set() and self.fatal is None:
                try:
                    item = self.queue.get(timeout=TICK)
                except queue.Empty:
                    item = None
                if item is not None:
                    self._handle_pass(item)
                flush_log()
                now = time.monotonic()
                if interval is not None and now - last_ping >= interval:
                    self.notifier.watchdog()
                    last_ping = now
                if self._reload.is_set():
                    self._reload.clear()
                    self.reload()
                if self._report.is_set():  # SIGUSR1
                    self._report.clear()
                    log.info("status: %s", self.status_text())
                if now - last_status >= STATUS_INTERVAL:
                    self.notifier.status(self.status_text())
                    last_status = now
                self.pipeline.tick()  # a flood guard's quiet minute ends by the clock, not only at an alert
                self.keeper.tick()
                if self.responder is not None and now - last_resync >= RESYNC_INTERVAL:
                    self.pipeline.resync(self.responder.ledger, self.clock())
                    last_resync = now
        finally:
            self.stop()
        if self.fatal is not None:
            log.error("stopped: %s", self.fatal)
            return 1
        return 0

    def stop(self) -> None:
        self.notifier.stopping()
        self.inputs.stop_listener()
        self.inputs.stop_router_logs()
        self._stop_follower()
        pending = self.outputs.stop()
        self._release_state_lock()
        summary = self.pipeline.counts.summary() if self.pipeline else "nothing done"
        log.info("stopped: %s%s", summary, f"; {pending} block(s) still pending, kept in the ledger" if pending else "")

    # reload

    def reload(self) -> bool:
        """Re-read the configuration file; True if the new one is in force."""
        self.notifier.reloading()
        path = self.config.path
        inputs, outputs = self.inputs, self.outputs
        try:
            new = load_config(path)
            check_runnable(new)
            changed = Changes.between(self.config, new)
            notifications = make_notifications(new, outputs.pending_blocks) if changed.notify else outputs.notifications
        except ConfigError as exc:
            log.error(
                "reload refused, the running configuration stays in force: %s is not usable:\n  %s",
                exc.path or path,
                "\n  ".join(exc.problems),
            )
            self.notifier.ready(self.status_text())
            return False
        assert self.pipeline is not None
        new_lock = None
        if changed.routers and os.path.abspath(new.state_dir) != os.path.abspath(self.config.state_dir):
            try:
                new_lock = StateDirLock(new.state_dir, SERVICE).acquire()
            except (StateDirBusy, OSError) as exc:
                log.error("reload refused, the running configuration stays in force: state_dir %s", exc)
                self.notifier.ready(self.status_text())
                return False
        if changed.listener:
            try:
                inputs.stop_listener()
                inputs.start_listener(new)
            except OSError as exc:
                log.error("reload: %s; the firewall-log listener is off until the next reload", exc)
        else:
            inputs.allow_senders(new)
        if changed.router_logs:
            inputs.stop_router_logs()
            inputs.start_router_logs(new)
        if changed.routers or changed.files:
            self._stop_follower()  # what it read is handled before anything is swapped
        if changed.routers:
            outputs.replace_responder(new)
        if new_lock is not None:
            self._release_state_lock()
            self.state_lock = new_lock
        outputs.reconfigure_web(new)
        self.pipeline = reloaded_pipeline(
            self.pipeline, new, self.responder, self.feed, scan_changed=changed.scan, clock=self.clock
        )
        self.config = new
        if changed.notify:
            outputs.replace_notifications(notifications)
        if self.follower is None:
            inputs.start_follower(new)
        log.info(
            "reloaded %s: following %d file(s), %s, %s, protected %s",
            path,
            len(self.sources),
            inputs.listening(),
            outputs.routers_text(),
            ", ".join(map(str, new.policy.protected)) or "none",
        )
        self.notifier.ready(self.status_text())
        return True

    # the work

    def _handle_pass(self, first: tuple | None) -> None:
        """``first`` and whatever else is queued (up to PASS_MAX): the ledger's writes for all
        of them are one transaction; followed lines are committed only once it is durable, so
        a crash at any point re-reads (never loses) a line whose block was not recorded."""
        items = [first] if first is not None else []
        while len(items) < PASS_MAX:
            try:
                items.append(self.queue.get_nowait())
            except queue.Empty:
                break
        handled = []
        for attempt in (1, 2):
            try:
                with self.responder.batch() if self.responder is not None else contextlib.nullcontext():
                    for item in items:
                        handled += self._handle(item)
                break
            except LedgerInMemory:  # the ledger went to memory halfway: the pass again, into memory
                handled = []
                if attempt == 2:
                    self.fatal = "the ledger failed twice in one pass"
                    return
            except Exception as exc:  # noqa: BLE001 -- the ledger could not commit: stop, read them again at restart
                self.fatal = self.keeper.ledger_failed(exc, len(items))
                return
        for follower, lines in _by_follower(handled).items():
            follower.commit_all(lines)

    def _handle(self, item: tuple) -> list[tuple[Line, Follower]]:
        """Handle one queued input; followed lines are returned, to be committed after the pass."""
        pipeline = self.pipeline
        assert pipeline is not None
        kind = item[0]
        if kind == "lines":
            _, lines, follower = item
            self.inputs.batch_taken()
            for line in lines:
                fmt = self.inputs.format_of(line.path)
                origin = Origin(line.path, line.offset, line.number)
                if fmt == FIREWALL:
                    pipeline.firewall_line(line.text, origin, self.clock())
                else:
                    pipeline.alert_line(line.text, origin, fmt)
            return [(line, follower) for line in lines]
        elif kind == "syslog":
            _, text, peer, received_at = item
            pipeline.firewall_line(text, Origin(f"udp:{peer[0]}:{peer[1]}"), received_at)
        elif kind == "routerlog":
            _, text, router, received_at = item
            pipeline.firewall_line(text, Origin(f"router:{router}"), received_at)
        return []

    def _drain(self) -> None:
        while not self.queue.empty() and self.fatal is None:
            self._handle_pass(None)

    def _stop_follower(self) -> None:
        self.inputs.stop_follower(self._drain)

    def _release_state_lock(self) -> None:
        lock, self.state_lock = self.state_lock, None
        if lock is not None:
            lock.release()

    def _fail(self, reason: str) -> None:
        """From the follower thread: the loop stops, and the service with it (systemd restarts it)."""
        self.fatal = reason

    # reporting

    def status_text(self) -> str:
        counts = self.pipeline.counts.summary() if self.pipeline else "starting"
        return f"{counts}; {self.outputs.routers_text()}"


def _by_follower(handled) -> dict[Follower, list]:
    grouped: dict[Follower, list] = {}
    for line, follower in handled:
        grouped.setdefault(follower, []).append(line)
    return grouped
