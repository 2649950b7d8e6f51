"""The whole IPS on one machine, on loopback: ``python -m bridge.demo`` (what ``./run demo`` runs).

A capture of a small office network (benign DNS, web and ping; a port scan from the internet; a
compromised host inside the protected LAN scanning and attacking a server) is streamed by
tzsp-replay, as a MikroTik router would, to tzspd; tzspd feeds Snort when it is installed, else the
built-in port-scan detector (`snort-bridge scan --pcap -` under `tzspd --exec`); `snort-bridge run`
follows the alerts; two routeros-sim routers (SSH, key login, host keys pinned) receive the blocks.
Exit status 0 only if the scanner ends up blocked on both routers, and nobody else anywhere.
Bounded in time; everything lives in a temporary directory that is removed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEADLINE = 50.0  # seconds for the whole run, start to verdict
LIST = "tzsp-ips-blocked"
LAN = "10.10.0.0/16"
GATEWAY, CLIENT_A, CLIENT_B, RESOLVER, SERVER = "10.10.0.1", "10.10.0.21", "10.10.0.22", "10.10.0.53", "10.10.0.80"
WEBSITE, VISITOR = "198.51.100.20", "198.51.100.30"
SCANNER = "203.0.113.66"  # on the internet: must be blocked
INSIDER = "10.10.0.66"  # inside the protected LAN: seen, never blocked
BENIGN = (GATEWAY, CLIENT_A, CLIENT_B, RESOLVER, SERVER, WEBSITE, VISITOR)
ROUTERS = ("core1", "edge2")


# -- the capture -----------------------------------------------------------------------------------


def office_packets() -> list:
    """scapy packets, in time order, of benign traffic mixed with the two attackers."""
    from scapy.all import DNS, DNSQR, DNSRR, ICMP, IP, TCP, UDP, Ether, Raw

    def eth(index: int) -> Ether:
        return Ether(src=f"02:00:00:00:00:{index:02x}", dst="02:00:00:00:00:01")

    def tcp_session(client: str, server: str, sport: int, request: bytes, reply: bytes, mac: int) -> list:
        return [
            eth(mac) / IP(src=client, dst=server) / TCP(sport=sport, dport=80, flags="S", seq=1000),
            eth(80) / IP(src=server, dst=client) / TCP(sport=80, dport=sport, flags="SA", seq=5000, ack=1001),
            eth(mac) / IP(src=client, dst=server) / TCP(sport=sport, dport=80, flags="A", seq=1001, ack=5001),
            eth(mac)
            / IP(src=client, dst=server)
            / TCP(sport=sport, dport=80, flags="PA", seq=1001, ack=5001)
            / Raw(request),
            eth(80)
            / IP(src=server, dst=client)
            / TCP(sport=80, dport=sport, flags="PA", seq=5001, ack=1001 + len(request))
            / Raw(reply),
            eth(mac)
            / IP(src=client, dst=server)
            / TCP(sport=sport, dport=80, flags="FA", seq=1001 + len(request), ack=5001 + len(reply)),
        ]

    def get(host: str, path: str) -> bytes:
        return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: demo\r\n\r\n".encode()

    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    benign: list = []
    for index, name in enumerate(("example.org", "intranet.example", "updates.example")):
        query = DNS(id=index + 1, rd=1, qd=DNSQR(qname=name))
        benign.append(eth(21) / IP(src=CLIENT_A, dst=RESOLVER) / UDP(sport=33000 + index, dport=53) / query)
        answer = DNS(id=index + 1, qr=1, rd=1, ra=1, qd=DNSQR(qname=name), an=DNSRR(rrname=name, rdata=WEBSITE))
        benign.append(eth(53) / IP(src=RESOLVER, dst=CLIENT_A) / UDP(sport=53, dport=33000 + index) / answer)
    benign += tcp_session(CLIENT_A, WEBSITE, 40100, get(WEBSITE, "/"), ok, 21)
    benign += tcp_session(VISITOR, SERVER, 51000, get(SERVER, "/index.html"), ok, 30)
    for seq in range(3):
        benign.append(eth(22) / IP(src=CLIENT_B, dst=GATEWAY) / ICMP(type=8, id=9, seq=seq) / Raw(b"ping" * 8))
        benign.append(eth(1) / IP(src=GATEWAY, dst=CLIENT_B) / ICMP(type=0, id=9, seq=seq) / Raw(b"ping" * 8))

    scan: list = []
    for port in range(20, 120):  # the internet scanner: 100 ports of the web server
        scan.append(eth(66) / IP(src=SCANNER, dst=SERVER) / TCP(sport=61000, dport=port, flags="S", seq=77))
        flags = "SA" if port in (22, 80) else "RA"
        scan.append(eth(80) / IP(src=SERVER, dst=SCANNER) / TCP(sport=port, dport=61000, flags=flags, seq=9, ack=78))

    insider: list = []
    for port in (21, 22, 23, 25, 53, 110, 135, 139, 143, 443, 445, 993, 995, 1433, 3306, 3389, 5432, 5900, 8080, 8443):
        insider.append(eth(67) / IP(src=INSIDER, dst=SERVER) / TCP(sport=62000, dport=port, flags="S", seq=5))
        insider.append(eth(80) / IP(src=SERVER, dst=INSIDER) / TCP(sport=port, dport=62000, flags="RA", seq=0, ack=6))
    insider += tcp_session(
        INSIDER,
        SERVER,
        52000,
        get(SERVER, "/cgi-bin/view?file=../../../../etc/passwd"),
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        67,
    )

    # interleave: benign traffic throughout, the attacks in the middle
    packets = benign[:8] + scan[:100] + benign[8:14] + insider + scan[100:] + benign[14:]
    start = time.time()
    for index, packet in enumerate(packets):
        packet.time = start + index * 0.002
    return packets


# -- keys, routers, configuration ------------------------------------------------------------------


def _write_key(path: Path) -> object:
    """A fresh ed25519 key in OpenSSH format (mode 0600), with its .pub beside it; returns the paramiko key."""
    import paramiko
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    )
    os.chmod(path, 0o600)
    key = paramiko.PKey.from_path(str(path))
    Path(f"{path}.pub").write_text(f"{key.get_name()} {key.get_base64()} tzsp-ips-demo\n")
    return key


def _free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def _say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


class Demo:
    def __init__(self, workdir: Path):
        self.dir = workdir
        self.processes: list[subprocess.Popen] = []
        self.handles: list = []
        self.routers: dict[str, int] = {}
        self.fingerprints: dict[str, str] = {}

    def spawn(self, argv: list[str], log_name: str, **kwargs) -> subprocess.Popen:
        handle = open(self.dir / log_name, "ab")
        self.handles.append(handle)
        process = subprocess.Popen(argv, stdout=kwargs.pop("stdout", handle), stderr=handle, **kwargs)
        self.processes.append(process)
        return process

    def cleanup(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in reversed(self.processes):
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for handle in self.handles:
            handle.close()

    # the parts

    def start_routers(self) -> None:
        from responder.transport import known_hosts
        from responder.transport.ssh import key_fingerprint

        _write_key(self.dir / "id_ed25519")
        known = self.dir / "known_hosts"
        for name in ROUTERS:
            host_key = _write_key(self.dir / f"{name}_host_key")
            port = _free_port(socket.SOCK_STREAM)
            process = self.spawn(
                [
                    sys.executable,
                    "-m",
                    "responder.sim.cli",
                    "--listen",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--user",
                    "ips",
                    "--authorized-key",
                    str(self.dir / "id_ed25519.pub"),
                    "--host-key",
                    str(self.dir / f"{name}_host_key"),
                    "--identity",
                    name,
                ],
                f"{name}.log",
            )
            if not wait_until(
                lambda name=name, process=process: (
                    "listening on" in _text(self.dir / f"{name}.log") or process.poll() is not None
                ),
                15,
            ):
                raise RuntimeError(f"routeros-sim {name} did not start")
            if process.poll() is not None:
                raise RuntimeError(f"routeros-sim {name} stopped: {_text(self.dir / f'{name}.log')}")
            known_hosts.record(
                str(known), known_hosts.host_name("127.0.0.1", port), host_key.get_name(), host_key.asbytes()
            )
            self.routers[name] = port
            self.fingerprints[name] = key_fingerprint(host_key)

    def write_config(self, alerts: list[tuple[str, str]]) -> Path:
        lines = [
            "# written by the tzsp-ips demo",
            f'state_dir = "{self.dir / "state"}"',
            "",
            "[policy]",
            f'protected = ["{LAN}"]',
            'block_for = "10m"',
            "",
            "[scan]",
            "ports = 15",
            'window = "10s"',
            "",
        ]
        for path, fmt in alerts:
            lines += ["[[alerts]]", f'path = "{path}"', f'format = "{fmt}"', ""]
        for name, port in self.routers.items():
            lines += [
                "[[routers]]",
                f'name = "{name}"',
                'host = "127.0.0.1"',
                f"port = {port}",
                'user = "ips"',
                f'key_file = "{self.dir / "id_ed25519"}"',
                f'known_hosts = "{self.dir / "known_hosts"}"',
                f'list = "{LIST}"',
                'connect_timeout = "3s"',
                "",
            ]
        path = self.dir / "config.toml"
        path.write_text("\n".join(lines))
        os.chmod(path, 0o600)
        return path

    def address_lists(self, config) -> dict[str, tuple[set, str]]:
        """Per router: the addresses in the list, and the list as the router prints it."""
        from responder.transport.ssh_session import RouterSession

        result = {}
        for router in config.routers:
            with RouterSession(router) as session:
                addresses = {str(address) for address in session.list_blocks()}
                printed = session.run(f"/ip firewall address-list print where list={LIST}")
            result[router.name] = (addresses, printed)
        return result


# -- the detector: Snort when it is there and loads our configuration, else the built-in one -----------


def snort_setup(workdir: Path) -> tuple[tuple[str, list[tuple[str, str]], dict[str, str]] | None, str]:
    """((consumer command for tzspd --exec, alert files to follow, environment), description of the
    detector and why), or (None, why the built-in detector runs). Snort 3 first, then Snort 2: the
    first whose shipped configuration loads here (``snort -T``)."""
    from bridge import snort_engines

    found = snort_engines.find_snorts()
    if not found:
        names = ", ".join(snort_engines.PATH_NAMES)
        return None, f"the built-in port-scan detector (no Snort: none of {names} on PATH, $SNORT3/$SNORT2 unset)"
    refused = []
    for major in sorted(found, reverse=True):
        snort = found[major]
        env = snort_engines.snort_env(snort)
        config = snort_engines.prepare_config(snort, workdir)
        loads, last = snort_engines.check_config(snort, config, env)
        if not loads:
            refused.append(f"Snort {snort.version} ({snort.path}) found, but {config.name} does not load: {last[:160]}")
            continue
        logs = workdir / f"snort{major}"
        logs.mkdir(exist_ok=True)
        name, form = snort.alert_file()
        command = " ".join(snort.command(config, str(logs)))
        why = snort_engines.describe(snort, env)
        others = [f"Snort {other.version}" for other_major, other in found.items() if other_major != major]
        if others or refused:
            why += " (the newest engine whose configuration loads; also found: " + ", ".join(others) + ")"
        return (command, [(str(logs / name), form)], env), why
    for line in refused:
        print(f"   {line}")
    return None, "the built-in port-scan detector (no installed Snort loads the shipped configuration; see above)"


# -- the run -------------------------------------------------------------------------------------------


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

    from bridge.config import load_config

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
        tzsp_port = _free_port()
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


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
