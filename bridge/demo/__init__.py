"""The whole IPS on one machine, on loopback: ``snort-bridge demo`` (what ``./run demo`` runs).

A capture of a small office network (benign DNS, web and ping; a port scan from the internet; a
compromised host inside the protected LAN scanning and attacking a server) is streamed by
tzsp-replay, as a MikroTik router would, to tzspd; tzspd feeds Snort when it is installed, else the
built-in port-scan detector (`snort-bridge scan --pcap -` under `tzspd --exec`); `snort-bridge run`
follows the alerts; two routeros-sim routers (SSH, key login, host keys pinned) receive the blocks.
Exit status 0 only if the scanner ends up blocked on both routers, and nobody else anywhere.
Bounded in time; everything lives in a temporary directory that is removed at the end.

This module is the run and its verdict; the capture is bridge.demo.capture, the routers, keys and
configuration bridge.demo.rig, the choice of detector bridge.demo.detector.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from plumbing.loopback import free_port, wait_until

from .capture import BENIGN, INSIDER, LAN, SCANNER, SERVER, office_packets
from .detector import snort_setup
from .rig import LIST, ROUTERS, Demo, _text

DEADLINE = 50.0  # seconds for the whole run, start to verdict


def _say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def _interesting(lines: str) -> list[str]:
    keep = ("scan detected", "BLOCK ", "not blocking", "FLOOD GUARD")
    return [line.split("snort-bridge: ", 1)[-1] for line in lines.splitlines() if any(k in line for k in keep)]


def _tzspd_counters(log: str) -> dict | None:
    stats = [line for line in log.splitlines() if line.startswith("{")]
    try:
        return json.loads(stats[-1]) if stats else None
    except ValueError:
        return None


def run(workdir: Path) -> int:
    from scapy.all import wrpcap

    from bridge.config.load import load_config

    started = time.monotonic()
    demo = Demo(workdir)
    try:
        packets = office_packets()
        capture = workdir / "office.pcap"
        wrpcap(str(capture), packets)
        _say(f"1. a capture of an office network ({len(packets)} packets)")
        print(f"   benign: DNS, web and ping among {', '.join(BENIGN)}")
        print(f"   attack: {SCANNER} (internet) scans 100 ports of the web server {SERVER}")
        print(f"   attack: {INSIDER} (inside the protected office LAN {LAN}) scans 20 ports of {SERVER}")
        print("           and asks it for ../../../../etc/passwd")

        _say("2. two simulated MikroTik routers (routeros-sim: SSH, key login, host keys pinned in known_hosts)")
        demo.start_routers()
        for name, port in demo.routers.items():
            print(f"   {name:6} 127.0.0.1:{port}  host key {demo.fingerprints[name]}")

        _say("3. the IPS")
        tzsp_port = free_port()
        snort, detector = snort_setup(workdir)
        snort_environment = None
        if snort is not None:
            consumer, alerts, snort_environment = snort
        else:
            alerts = [(str(workdir / "snort" / "alert_json.txt"), "json")]  # followed, stays empty
        config_path = demo.write_config(alerts)
        if snort is None:
            consumer = f"{sys.executable} -m bridge.cli scan --pcap - --config {config_path}"
        print(f"   detector: {detector}")
        bridge = demo.spawn([sys.executable, "-m", "bridge.cli", "run", "--config", str(config_path)], "run.log")
        if (
            not wait_until(lambda: "started:" in _text(workdir / "run.log") or bridge.poll() is not None, 20)
            or bridge.poll() is not None
        ):
            raise RuntimeError("snort-bridge run did not start:\n" + _text(workdir / "run.log"))
        print(f"   snort-bridge run --config {config_path.name}        (policy: protect {LAN}, block for 10m)")
        shown = "snort-bridge scan --pcap -" if snort is None else consumer.split(" -l ")[0]
        print(f"   tzspd --listen 127.0.0.1 --port {tzsp_port} --allow 127.0.0.1/32 --exec '{shown}'")
        tzspd = demo.spawn(
            [
                sys.executable,
                "-m",
                "tzsp.daemon",
                "--listen",
                "127.0.0.1",
                "--port",
                str(tzsp_port),
                "--allow",
                "127.0.0.1/32",
                "--stats-json",
                "--exec",
                consumer,
            ],
            "tzspd.log",
            env=snort_environment,
        )
        if (
            not wait_until(lambda: "listening" in _text(workdir / "tzspd.log") or tzspd.poll() is not None, 15)
            or tzspd.poll() is not None
        ):
            raise RuntimeError("tzspd did not start:\n" + _text(workdir / "tzspd.log"))

        _say(f"4. the router streams what it sees: tzsp-replay office.pcap --to 127.0.0.1:{tzsp_port} --rate 1000")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "tzsp.replay",
                str(capture),
                "--to",
                f"127.0.0.1:{tzsp_port}",
                "--rate",
                "1000",
                "-q",
            ],
            check=True,
            timeout=30,
        )

        config = load_config(str(config_path))
        lists: dict[str, tuple[set, str]] = {}

        def scanner_blocked_everywhere() -> bool:
            nonlocal lists
            try:
                lists = demo.address_lists(config)
            except Exception:  # noqa: BLE001 -- a router busy or restarting: look again
                return False
            return all(SCANNER in addresses for addresses, _ in lists.values())

        left = max(5.0, DEADLINE - (time.monotonic() - started))
        blocked = wait_until(scanner_blocked_everywhere, left, interval=0.25)
        # give a wrong block (the insider, a benign host) the same chance to show up
        wait_until(lambda: INSIDER in _text(workdir / "run.log") + _text(workdir / "tzspd.log"), 3.0)
        time.sleep(0.5)
        scanner_blocked_everywhere()

        tzspd.send_signal(signal.SIGTERM)  # ends the stream: the detector finishes, tzspd prints its counters
        tzspd.wait(20)
        counters = _tzspd_counters(_text(workdir / "tzspd.log"))
        _say("5. what the sensor saw")
        if counters:
            print(
                f"   tzspd: {counters.get('received')} TZSP datagrams received, {counters.get('written')} frames "
                f"passed to the detector, {counters.get('malformed')} malformed, {counters.get('not_allowed')} not allowed"
            )
        for line in _text(workdir / "tzspd.log").splitlines():
            if line.startswith("snort-bridge: ") and " packets, " in line:
                print(f"   snort-bridge scan: {line.split(': ', 1)[1]}")

        _say("6. what was detected and decided")
        decisions = _interesting(_text(workdir / "tzspd.log")) + _interesting(_text(workdir / "run.log"))
        for line in decisions or ["(nothing)"]:
            print(f"   {line}")

        _say(f"7. the routers' address lists (/ip firewall address-list print where list={LIST})")
        for name, (_, printed) in lists.items():
            print(f"   [{name}]")
            for line in printed.rstrip().splitlines():
                print(f"     {line}")

        wrong = {name: sorted(addresses - {SCANNER}) for name, (addresses, _) in lists.items()}
        ok = blocked and len(lists) == len(ROUTERS) and not any(wrong.values())
        took = time.monotonic() - started
        if ok:
            _say(
                f"OK ({took:.0f} s): the scanner {SCANNER} is blocked on both routers; the benign hosts and "
                f"the attacker inside the protected LAN ({INSIDER}) are not."
            )
            return 0
        problems = []
        if not blocked:
            problems.append(f"{SCANNER} is not blocked on every router")
        for name, extra in wrong.items():
            if extra:
                problems.append(f"{name} also blocks {', '.join(extra)}")
        _say("FAILED: " + "; ".join(problems) + f"  (logs: run.log, tzspd.log in {workdir})")
        return 1
    finally:
        demo.cleanup()


def main() -> int:
    print("tzsp-ips demo: the whole IPS on loopback -- no router, no Snort needed; nothing is left behind.")
    workdir = Path(tempfile.mkdtemp(prefix="tzsp-ips-demo-"))
    keep = os.environ.get("TZSP_IPS_DEMO_KEEP")
    try:
        return run(workdir)
    except (RuntimeError, subprocess.SubprocessError, OSError) as error:
        print(f"demo failed: {error}", file=sys.stderr)
        return 1
    finally:
        if keep:
            print(f"(kept {workdir})")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
