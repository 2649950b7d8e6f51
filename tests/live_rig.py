"""Real Snort in the loop: tzsp-replay -> tzspd -> Snort -> snort-bridge run -> two routeros-sim routers.

Shared by the live tests (tests/test_live_snort.py) and the live benchmark (bench/bench_live.py).
Snort is the real binary found by bridge.snort_engines ($SNORT3/$SNORT2, or snort3/snort2/snort on
PATH); it reads tzspd's stream through a pipe and stays up while captures are streamed one after
another, as a router would mirror them. The routers run in this process (SimRouter over real SSH on
loopback), so their address lists are read directly, cheaply and often.

Ground truth for the captures comes from their sources (tests/data/SOURCES.md) and the calibration
runs (tests/data/snort/calibration): who attacks whom, and which captures are benign.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from conftest import DATA, console_script
from responder_rig import Lab, wait_until

from bridge import snort_engines
from bridge.snort_engines import Snort

CAPTURES = DATA / "captures"
ROUTERS = ("core1", "edge2")
RATE = 4000  # datagrams per second from tzsp-replay: a capture of 2000 packets takes half a second
START_DEADLINE = 60.0  # Snort 3 compiles its rules at start; slow under load


@dataclass(frozen=True)
class Capture:
    name: str
    attacker: str | None  # None: benign, nobody in it may be blocked
    victims: tuple[str, ...] = ()
    directory: Path = CAPTURES

    @property
    def path(self) -> Path:
        return self.directory / self.name


DVWA_TRAVERSAL = Capture("http_dvwa_directorytraversal.pcapng", "10.2.2.101", ("10.2.2.104",))
DVWA_SQLI = Capture("http_dvwa_sqlinjection_passwords.pcapng", "10.2.2.101", ("10.2.2.104",))
SSH_BRUTEFORCE = Capture("malicious-ssh-bruteforce.pcap", "147.32.80.40", ("147.32.80.37",))
TCP_SYN_SCAN = Capture("TCP_SYN_SCAN.pcap", "192.168.1.10", ("192.168.1.25",))
XMAS_SCAN = Capture("XMAS_TREE_SCAN.pcap", "192.168.1.10", ("192.168.1.25",))
ICMP_SWEEP = Capture("test12-icmp-portscan.pcap", "192.168.1.109")
OS_FINGERPRINT = Capture("activeosfingerprinting.pcapng", "172.16.16.128", ("172.16.16.150",))
ANDROID = Capture("android.pcap", None)
HTTP_GOOGLE = Capture("http_google.pcapng", None)
DNS_LAB = Capture("dns_lab.pcapng", None)
ICMP_ECHO = Capture("icmp_echo.pcapng", None)
DVWA_SQLI_PLAIN = Capture("http_dvwa_sqlinjection.pcapng", "10.2.2.101", ("10.2.2.104",))
TCP_CONNECT_SCAN = Capture("TCP_CONNECT_SCAN.pcap", "192.168.1.10", ("192.168.1.25",))
UDP_SCAN = Capture("UDP_SCAN.pcap", "192.168.1.10", ("192.168.1.25",))
VERSION_SCAN = Capture("version_scan.pcap", "192.168.1.10", ("192.168.1.25",))
FIN_SCAN = Capture("FIN_SCAN.pcap", "192.168.1.10", ("192.168.1.25",))
NULL_SCAN = Capture("NULL_SCAN.pcap", "192.168.1.10", ("192.168.1.25",))
# Generated (tests/data/captures/make_generated.py): issue 27's cases and the IPv6 attacks.
BROWSER_SWEEP = Capture("browser_portsweep.pcap", None)  # one client, 40 web servers, port 80, 32 silent
REVERSE_SHELL = Capture("reverse_shell_cmd_banner.pcap", "203.0.113.66", ("10.0.5.40",))  # cmd.exe banner, 1:2123
IPV6_SYN_SCAN = Capture("ipv6_syn_scan.pcap", "2001:db8:ff::9", ("2001:db8:1::20",))
IPV6_WEB_ATTACK = Capture("ipv6_web_traversal.pcap", "2001:db8:ff::10", ("2001:db8:1::80",))
IPV6_ICMP_SWEEP = Capture("ipv6_icmp_sweep.pcap", "2001:db8:ff::11")
IPV6_BENIGN = Capture("ipv6_benign.pcap", None)
# Every attack of the calibration set whose shipped prefix Snort detects (synscan.pcapng's 100 packets
# reach too few ports for Snort 2), each attacker distinct per capture or the same scanner throughout.
CALIBRATION_ATTACKS = (
    DVWA_TRAVERSAL,
    DVWA_SQLI,
    DVWA_SQLI_PLAIN,
    SSH_BRUTEFORCE,
    TCP_SYN_SCAN,
    TCP_CONNECT_SCAN,
    UDP_SCAN,
    VERSION_SCAN,
    FIN_SCAN,
    NULL_SCAN,
    XMAS_SCAN,
    ICMP_SWEEP,
    OS_FINGERPRINT,
)
# Public benign captures (nDPI) on which priority-1 rules of the Snort 3 community set fire: the shipped
# exclusion list's cases (bridge/decide/exclusions.py).
NDPI_BITTORRENT = Capture("ndpi-bt-http.pcapng", None)  # 1:2180 BitTorrent announce
NDPI_ANDROID_VIDEO = Capture("ndpi-mpeg-dash.pcap", None)  # 1:25521 Android User-Agent
NDPI_FINS = Capture("ndpi-fins.pcap", None)  # 1:1394 x86 NOOP ("AAAA...") in industrial data
BENIGN = (
    ANDROID,
    HTTP_GOOGLE,
    DNS_LAB,
    ICMP_ECHO,
    BROWSER_SWEEP,
    IPV6_BENIGN,
    NDPI_BITTORRENT,
    NDPI_ANDROID_VIDEO,
    NDPI_FINS,
)
IPV6_ATTACKS = (IPV6_SYN_SCAN, IPV6_WEB_ATTACK, IPV6_ICMP_SWEEP)
ALL = (
    DVWA_TRAVERSAL,
    DVWA_SQLI,
    SSH_BRUTEFORCE,
    TCP_SYN_SCAN,
    XMAS_SCAN,
    ICMP_SWEEP,
    OS_FINGERPRINT,
    ANDROID,
    HTTP_GOOGLE,
    DNS_LAB,
    ICMP_ECHO,
)


def benign_hosts(capture: Capture) -> set:
    """Every IPv4 and IPv6 address in a benign capture (none of them may end up blocked)."""
    from scapy.all import IP, IPv6, rdpcap

    found = set()
    for packet in rdpcap(str(capture.path)):
        for layer in (IP, IPv6):
            if layer in packet:
                found |= {packet[layer].src, packet[layer].dst}
    return found


def rule_set(name: str, directory: Path) -> Path:
    """A public rule set of tests/data/rules (``name``.rules.xz), decompressed into ``directory``."""
    import lzma

    target = directory / f"{name}.rules"
    if not target.exists():
        target.write_bytes(lzma.decompress((DATA / "rules" / f"{name}.rules.xz").read_bytes()))
    return target


# The public rule set each engine loads (tests/data/rules/SOURCES.md).
RULE_SETS = {3: ("snort3-community",), 2: ("snort2-community", "et-open-snort29")}


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _reading_pipe(pid: int) -> bool:
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return False
    for task in tasks:
        try:
            if "pipe" in (task / "wchan").read_text():
                return True
        except OSError:
            continue
    return False


class LiveIPS:
    """One Snort setup (``mode``: "exec" = tzspd --exec, "pipe" = the shell's ``tzspd | snort``), the
    bridge and two routers. ``start()``, stream captures with ``replay()``, look with ``blocked()``."""

    def __init__(
        self,
        tmp_path: Path,
        snort: Snort,
        *,
        mode: str = "exec",
        fanout: int = 1,
        protected: Sequence[str] = (),
        rules: Path | None = None,
    ):
        assert mode in ("exec", "pipe") and (fanout == 1 or mode == "exec")
        self.tmp = tmp_path
        self.snort = snort
        self.mode = mode
        self.fanout = fanout
        self.protected = list(protected)
        self.lab = Lab(tmp_path)
        self.env = snort_engines.snort_env(snort, dict(os.environ, PYTHONUNBUFFERED="1"))
        self.config = snort_engines.prepare_config(snort, tmp_path)
        self.rules = rules
        if rules is not None and snort.major == 2:  # the README's one line for Snort 2
            self.config.write_text(self.config.read_text() + f"include {rules}\n")
        self.port = 0  # tzspd's, once started
        self.processes: list[subprocess.Popen] = []
        self.handles = []
        self.snort_log = tmp_path / "snort-and-tzspd.log"
        self.bridge_log = tmp_path / "bridge.log"

    # -- start and stop

    def log_dir(self, consumer: int) -> Path:
        return self.tmp / f"snort-logs-{consumer}"

    def snort_command(self, log_dir: str) -> list[str]:
        extra = ["-R", str(self.rules)] if self.rules is not None and self.snort.major == 3 else []
        return self.snort.command(self.config, log_dir, *extra)

    def _spawn(self, argv, log: Path, **kwargs) -> subprocess.Popen:
        handle = open(log, "ab")
        self.handles.append(handle)
        process = subprocess.Popen(argv, stdout=kwargs.pop("stdout", handle), stderr=handle, env=self.env, **kwargs)
        self.processes.append(process)
        return process

    def start(self) -> LiveIPS:
        for name in ROUTERS:
            self.lab.add(name)
        name, form = self.snort.alert_file()
        alerts = []
        for consumer in range(1, self.fanout + 1):
            self.log_dir(consumer).mkdir()
            alerts.append((self.log_dir(consumer) / name, form))
        self._write_bridge_config(alerts)
        self.bridge = self._spawn(
            [*console_script("snort-bridge"), "run", "--config", str(self.tmp / "config.toml")],
            self.bridge_log,
            stdout=subprocess.DEVNULL,
        )
        assert wait_until(lambda: "started:" in self.bridge_text() or self.bridge.poll() is not None, START_DEADLINE), (
            self.bridge_text()
        )
        assert self.bridge.poll() is None, self.bridge_text()
        # port 0: the kernel picks a free one and tzspd says which ("listening on [127.0.0.1]:PORT")
        tzspd = [*console_script("tzspd"), "--listen", "127.0.0.1", "--port", "0", "--allow", "127.0.0.1/32"]
        if self.mode == "exec":
            logs = str(self.tmp / "snort-logs-{consumer}") if self.fanout > 1 else str(self.log_dir(1))
            command = " ".join(self.snort_command(logs))
            argv = [*tzspd, "--exec", command, "--exec-backoff", "0.2"]
            if self.fanout > 1:
                argv += ["--fanout", str(self.fanout)]
            self.tzspd = self._spawn(argv, self.snort_log)
            self.snort_process = None
        else:  # the README's literal form: the shell's pipe, nobody restarts Snort
            self.tzspd = self._spawn(tzspd, self.snort_log, stdout=subprocess.PIPE)
            self.snort_process = self._spawn(
                self.snort_command(str(self.log_dir(1))), self.snort_log, stdin=self.tzspd.stdout
            )
            self.tzspd.stdout.close()
        listening = re.compile(r"listening on \[127\.0\.0\.1\]:(\d+)")
        assert wait_until(
            lambda: listening.search(self.snort_log_text()) or self.tzspd.poll() is not None, START_DEADLINE
        ), self.snort_log_text()
        found = listening.search(self.snort_log_text())
        assert found, self.snort_log_text()
        self.port = int(found.group(1))
        self.wait_for_snort(self.fanout)
        return self

    def _write_bridge_config(self, alerts: Iterable[tuple[Path, str]]) -> None:
        lines = [
            f'state_dir = "{self.tmp / "state"}"',
            "",
            "[policy]",
            'block_for = "10m"',
            "protected = [" + ", ".join(f'"{p}"' for p in self.protected) + "]",
            "",
        ]
        for path, form in alerts:
            lines += ["[[alerts]]", f'path = "{path}"', f'format = "{form}"', ""]
        for name, port in self.lab.ports.items():
            lines.append("[[routers]]")
            for key, value in self.lab.router_table(name, port).items():
                lines.append(f"{key} = {value}" if isinstance(value, int) else f'{key} = "{value}"')
            lines.append("")
        path = self.tmp / "config.toml"
        path.write_text("\n".join(lines))
        os.chmod(path, 0o600)

    def wait_for_snort(self, count: int, previous: Sequence[int] = ()) -> list[int]:
        """Until ``count`` Snort processes (none of ``previous``) wait for packets on their pipe; their pids.

        Snort's "Commencing packet processing" sits in its stdout buffer until it exits, so the sign
        is a Snort thread asleep in the kernel's pipe read (/proc/PID/task/*/wchan)."""

        def fresh() -> list[int]:
            return [pid for pid in self.snort_pids() if pid not in previous]

        def ready() -> bool:
            pids = fresh()
            return len(pids) >= count and all(_reading_pipe(pid) for pid in pids)

        def dead() -> bool:
            return self.tzspd.poll() is not None or (
                self.snort_process is not None and self.snort_process.poll() is not None
            )

        assert wait_until(lambda: ready() or dead(), START_DEADLINE), self.snort_log_text()[-3000:]
        assert not dead(), self.snort_log_text()[-3000:]
        return fresh()

    def snort_log_text(self) -> str:
        return self.snort_log.read_text(errors="replace") if self.snort_log.exists() else ""

    def bridge_text(self) -> str:
        return self.bridge_log.read_text(errors="replace") if self.bridge_log.exists() else ""

    def snort_pids(self) -> list[int]:
        if self.snort_process is not None:
            return [self.snort_process.pid]
        return sorted(pid for pid in _children(self.tzspd.pid) if _comm(pid).startswith("snort"))

    def kill_snort(self) -> int:
        """SIGKILL one Snort that tzspd runs; returns its pid."""
        pids = self.snort_pids()
        assert pids, "no Snort process under tzspd"
        os.kill(pids[0], signal.SIGKILL)
        return pids[0]

    def close(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for handle in self.handles:
            handle.close()
        self.lab.close()

    # -- traffic and what the routers hold

    def replay(self, capture: Capture, rate: int | None = RATE, background: bool = False):
        """Stream ``capture`` to tzspd as a router would (``rate`` None: with its own timing); returns the
        monotonic time its last packet went out (or the running tzsp-replay when ``background``)."""
        pace = ["--realtime"] if rate is None else ["--rate", str(rate)]
        argv = [*console_script("tzsp-replay"), str(capture.path), "--to", f"127.0.0.1:{self.port}", *pace, "-q"]
        if background:
            return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        subprocess.run(argv, check=True, timeout=120, stdout=subprocess.DEVNULL)
        return time.monotonic()

    def lists(self) -> dict[str, set]:
        """Every router's blocked hosts: /ip firewall address-list and /ipv6 firewall address-list."""
        return {name: set(self.lab.entries(name, 4)) | set(self.lab.entries(name, 6)) for name in ROUTERS}

    def ipv6_lists(self) -> dict[str, set]:
        return {name: set(self.lab.entries(name, 6)) for name in ROUTERS}

    def blocked_anywhere(self) -> set:
        return set().union(*self.lists().values())

    def blocked_everywhere(self, address: str) -> bool:
        return all(address in entries for entries in self.lists().values())

    def wait_blocked(self, address: str, timeout: float) -> float | None:
        """Monotonic time at which ``address`` was seen on every router, or None after ``timeout``."""
        if wait_until(lambda: self.blocked_everywhere(address), timeout, interval=0.02):
            return time.monotonic()
        return None

    def alert_lines(self) -> int:
        name, _ = self.snort.alert_file()
        return sum(len(path.read_bytes().splitlines()) for path in self.tmp.glob(f"snort-logs-*/{name}*"))
