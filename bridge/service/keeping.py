"""What the service keeps right around its state, beside the work: the state_dir to itself (a
lock), the stored block ends through a wall-clock step, the ledger back on its file once it can be
written, the positions file's trouble told, and why it stops when the ledger is damaged.

The service calls ``Keeper.tick()`` from its loop; each part is cheap when nothing is wrong.
"""

from __future__ import annotations

import logging
import os

from plumbing.statelock import SERVICE, StateDirBusy, StateDirLock
from plumbing.steadyclock import SteadyClock
from responder.feed import StateTrouble
from responder.ledger import DAMAGE_MARK, is_damage, mark_damaged
from responder.ledger.timeshift import shift_times

log = logging.getLogger("snort-bridge")

COMMAND_LOCK_WAIT = 60.0  # seconds a start waits for a `snort-bridge block` holding the state_dir


def lock_state_dir(state_dir: str) -> StateDirLock:
    """The state_dir for this service alone: one follower, one position file, one set of workers.
    A `snort-bridge block` holding it for a moment is waited for; another service is not."""
    lock = StateDirLock(state_dir, SERVICE)
    try:
        return lock.acquire()
    except StateDirBusy as exc:
        if SERVICE in exc.holder:
            raise
        log.info("waiting for %s to finish with %s", exc.holder, exc.state_dir)
        return lock.acquire(wait=COMMAND_LOCK_WAIT)


class Keeper:
    def __init__(self, service, clock: SteadyClock):
        self.service = service  # bridge.service.service.Service: its responder, follower, pipeline, feed
        self.clock = clock
        self._positions_failing = False

    def tick(self) -> None:
        self.keep_time()
        self.keep_state()

    def keep_time(self) -> None:
        """A step of the wall clock (NTP at boot) moves every stored end by as much, so no block
        ends early or lasts longer: the blocks' timers run on the monotonic clock."""
        delta = self.clock.step()
        if not delta:
            return
        responder = self.service.responder
        if responder is None:
            self.clock.rebase(delta)
        else:
            with responder.ledger.lock:  # the workers see the ledger and the clock move together
                shift_times(responder.ledger, delta)
                self.clock.rebase(delta)
            if self.service.pipeline is not None:
                self.service.pipeline.resync(responder.ledger, self.clock())
        log.warning(
            "the wall clock stepped %+.0fs (NTP?): every block still ends when it was going to; "
            "its end in the ledger moved by as much",
            delta,
        )

    def keep_state(self) -> None:
        """The ledger back to its file when it can be; the positions file's trouble told."""
        service = self.service
        if service.responder is not None:
            service.responder.keep_ledger()
            self._damage_found(service.responder.ledger.path)
        follower = service.follower
        failing = bool(follower is not None and follower.save_failing)
        if failing != self._positions_failing:
            self._positions_failing = failing
            path = follower.store.path if follower is not None else "the positions file"
            text = (
                f"the positions file {path} cannot be written: alert lines are followed from memory "
                "(a restart meanwhile reads some again); retried at each line"
                if failing
                else f"the positions file {path} is written again"
            )
            service.feed.publish(StateTrouble("positions", not failing, self.clock(), text))

    def _damage_found(self, path: str) -> None:
        """A worker found the ledger damaged (its mark is there): stop, so that the next start
        (systemd's Restart=on-failure) sets it aside and rebuilds it from the routers."""
        if self.service.fatal is None and os.path.exists(path + DAMAGE_MARK):
            self.service.fatal = (
                f"the ledger {path} is damaged; at the next start it is moved aside and rebuilt from the routers"
            )

    def ledger_failed(self, exc: Exception, inputs: int) -> str:
        """Why the service stops after the ledger refused a pass. A damaged file is noted, so
        the next start (systemd restarts us) sets it aside and rebuilds it from the routers."""
        responder = self.service.responder
        damage = next((e for e in (exc, exc.__cause__, exc.__context__) if e is not None and is_damage(e)), None)
        if damage is None or responder is None:
            log.exception("the ledger could not record a pass of %d input(s)", inputs)
            return f"the ledger cannot be written: {exc}"
        path = responder.ledger.path
        mark_damaged(path, str(damage))
        log.error("the ledger %s is damaged (%s) while recording a pass of %d input(s)", path, damage, inputs)
        return (
            f"the ledger {path} is damaged ({damage}); at the next start it is moved aside and rebuilt "
            "from the routers, and the inputs of this pass are read again"
        )
