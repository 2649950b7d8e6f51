"""Not one alert lost, none blocked twice: `snort-bridge run` killed with -9 again and again during
an attack whose alert file is rotated every few hundred lines, restarted at once each time.

A writer thread appends one alert line per attacker (in chunks, like Snort under load) and
rotates the file in one scheme; a killer kills the service at random moments -- some in the
middle of a rotation, the rest wherever it is, which during a storm is mostly inside a pass
(parsing, deciding, the ledger's transaction) -- and starts it again. At the end every attacker
must be on every router exactly once (the simulator's list never holds an address twice; its
count of accepted adds must equal the number of attackers), and applied in the ledger.

Sizes: the issue's scenario (2,000 attackers, logrotate every 400 lines, 5 kills, 2 routers over
SSH), one run per rotation scheme over the API, and 10,000 attackers. TZSP_IPS_CRASH_SCALE
multiplies the attacker counts (e.g. 0.2 for a quick run).
"""

from __future__ import annotations

import ipaddress
import os
import random
import signal
import threading
import time

import pytest
from rotation_rig import BASE, History
from test_e2e_service import Service, write_service_config

from responder.ledger import Ledger

SCALE = float(os.environ.get("TZSP_IPS_CRASH_SCALE", "1"))
SETTLE = 180.0  # seconds for the routers to catch up after the last restart (a loaded CI machine)


def attacker(n: int) -> str:
    return str(ipaddress.ip_address("198.18.0.0") + n + 1)


def fast_line(n: int) -> str:
    return (
        f'12/04-05:13:20.{n % 1000000:06d} [**] [1:1000001:1] "STORM attack" [**] [Priority: 1] '
        f"{{TCP}} {attacker(n)}:4444 -> 10.1.2.3:80"
    )


class Crasher:
    """The service, killed with -9 and restarted at once whenever ``kill()`` is called."""

    def __init__(self, config: str, logdir, services: list):
        self.config = config
        self.logdir = logdir
        self.services = services
        self.kills = 0
        self.lock = threading.Lock()
        self.current = self._start()

    def _start(self) -> Service:
        service = Service(self.config, self.logdir / f"run{len(self.services)}.log").start()
        self.services.append(service)
        return service

    def kill(self) -> None:
        with self.lock:
            self.current.process.send_signal(signal.SIGKILL)
            self.current.process.wait()
            self.kills += 1
            self.current = self._start()

    def text(self) -> str:
        return "".join(service.text() for service in self.services)


def storm(
    history: History, crasher: Crasher, *, attackers: int, rotate_every: int, kills: int, seed: int, chunk: int = 50
) -> None:
    """Write ``attackers`` lines, rotating every ``rotate_every``; ``kills`` kill -9s spread over
    the storm, every third in the middle of a rotation."""
    rng = random.Random(seed)
    kill_at = sorted(rng.sample(range(1, attackers), kills))
    midway_kills = set(kill_at[::3])
    written = 0
    while written < attackers:
        step = min(chunk, attackers - written)
        if rotate_every:
            step = min(step, rotate_every - written % rotate_every)
        history.write(step, fast_line)
        written += step
        due = [at for at in kill_at if at <= written]
        kill_at = [at for at in kill_at if at > written]
        if written % rotate_every == 0 and written < attackers:
            midway = [at for at in due if at in midway_kills]
            due = [at for at in due if at not in midway_kills]
            history.rotate(midway=(lambda midway=midway: [crasher.kill() for _ in midway]))
        for _ in due:
            time.sleep(rng.uniform(0.0, 0.3))  # somewhere in what it is doing now
            crasher.kill()
        time.sleep(0.002)


def check_everything_once(lab, state_dir, attackers: int, crasher: Crasher) -> None:
    wanted = {attacker(n) for n in range(attackers)}

    def caught_up() -> bool:
        return all(len(lab.sims[name].address_list("blacklist")) >= attackers for name in lab.sims)

    deadline = time.monotonic() + SETTLE
    while not caught_up() and time.monotonic() < deadline:
        time.sleep(0.2)
    for name, sim in lab.sims.items():
        listed = [entry.address.split("/")[0] for entry in sim.address_list("blacklist")]
        missing = wanted - set(listed)
        assert not missing, (
            f"{name}: {len(missing)} of {attackers} attackers never blocked, e.g. "
            f"{sorted(missing)[:5]}; {crasher.kills} kills\n" + crasher.text()[-3000:]
        )
        assert len(listed) == len(set(listed)) == attackers, name  # nothing extra, nothing twice
        accepted = sim.state.addresses[4].next_number - 1
        assert accepted == attackers, f"{name}: {accepted} adds accepted for {attackers} attackers"
    ledger = Ledger.in_state_dir(str(state_dir))
    try:
        records = [r for r in ledger.blocks(time.time()) if str(r.address) in wanted]
        assert len(records) == attackers
        for record in records:
            for name, state in record.routers.items():
                assert state.status == "applied", (record.address, name, state)
    finally:
        ledger.close()


def run_storm(
    lab, services, tmp_path, *, scheme: str, attackers: int, rotate_every: int, kills: int, seed: int, routers
) -> None:
    logdir = tmp_path / "log"
    logdir.mkdir()
    history = History(logdir, scheme)
    open(history.path, "ab").close()
    config = write_service_config(lab, alerts=logdir / BASE, routers=routers)
    # a storm of distinct attackers: the flood guard would (rightly) stop it
    text = open(config).read().replace("[policy]\n", "[policy]\nmax_new_blocks_per_minute = 1000000\n")
    open(config, "w").write(text)
    crasher = Crasher(config, tmp_path, services)
    storm(history, crasher, attackers=attackers, rotate_every=rotate_every, kills=kills, seed=seed)
    check_everything_once(lab, tmp_path / "state", attackers, crasher)
    assert crasher.current.stop() == 0
    assert crasher.kills == kills


def test_the_issue_scenario_2000_attackers_logrotate_every_400_lines_5_kills_2_ssh_routers(lab, services, tmp_path):
    lab.add("r1")
    lab.add("r2")
    routers = [lab.router_table(name, port) for name, port in lab.ports.items()]
    run_storm(
        lab,
        services,
        tmp_path,
        scheme="numeric",
        attackers=int(2000 * SCALE),
        rotate_every=400,
        kills=5,
        seed=17,
        routers=routers,
    )


def api_lab(lab, tmp_path, names=("r1", "r2")):
    """Routers that speak the RouterOS API (pipelined adds): the storm reaches them sooner."""
    from responder_rig import shared_host_key

    from responder.sim import SimRouter

    password_file = tmp_path / "router.password"
    password_file.write_text("storm-password\n")
    os.chmod(password_file, 0o600)
    tables = []
    for name in names:
        sim = SimRouter(host_key=shared_host_key())
        sim.add_user("ips", password="storm-password", policies=("api", "read", "write"))
        port = sim.start_api("127.0.0.1", 0)
        lab.sims[name] = sim
        tables.append(
            dict(
                name=name,
                host="127.0.0.1",
                port=port,
                user="ips",
                transport="api",
                password_file=str(password_file),
                list="blacklist",
                connect_timeout="3s",
                command_timeout="10s",
                reconcile_interval="60s",
            )
        )
    return tables


@pytest.mark.parametrize("scheme", ["numeric-gz", "copytruncate", "dateext", "seconds"])
def test_kill_9_in_a_loop_while_rotating_in_every_scheme(lab, services, tmp_path, scheme):
    run_storm(
        lab,
        services,
        tmp_path,
        scheme=scheme,
        attackers=int(1500 * SCALE),
        rotate_every=250,
        kills=4,
        seed=sum(map(ord, scheme)),
        routers=api_lab(lab, tmp_path),
    )


def test_10000_attackers_rotated_every_300_lines_and_compressed_with_kills_in_a_loop(lab, services, tmp_path):
    run_storm(
        lab,
        services,
        tmp_path,
        scheme="numeric-gz",
        attackers=int(10000 * SCALE),
        rotate_every=300,
        kills=8,
        seed=10000,
        routers=api_lab(lab, tmp_path),
    )
