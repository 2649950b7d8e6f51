"""The policy rules one by one, with Alerts built as the parsers build them."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_attribution import make_alert, scan

from bridge.config import PolicyConfig
from bridge.decide.policy import FLOOD_WINDOW, Policy
from bridge.events import Alert, Origin

OPEN = PolicyConfig(protected=())  # the defaults, without protecting 192.168.0.0/16
ATTACKER = ipaddress.ip_address("203.0.113.7")
T0 = 1_800_000_000.0


def attack(src="203.0.113.7", dst="198.51.100.20", **kw) -> Alert:
    kw.setdefault("sport", 40000)
    kw.setdefault("dport", 80)
    return make_alert(src, dst, **kw)


def test_priority_at_or_below_min_priority_blocks():
    policy = Policy(OPEN)
    decision = policy.decide(attack(priority=1), T0)
    assert decision.action == "block" and decision.target == ATTACKER
    assert decision.block_for == 300.0
    assert "priority 1 <= min_priority 1" in decision.why and decision.attribution == "src (default)"
    assert policy.decide(attack(src="203.0.113.8", priority=2), T0).action == "ignore"
    relaxed = Policy(replace(OPEN, min_priority=2))
    assert relaxed.decide(attack(src="203.0.113.8", priority=2), T0).action == "block"


def test_port_scans_match_by_gid_not_priority():
    # gid 122 is priority 3 (Snort 3) or 2 (Snort 2): "priority <= 1" alone would never block one
    for priority in (2, 3):
        alert = scan("203.0.113.7", "198.51.100.20", proto="PROTO:255", priority=priority, engine="snort2")
        decision = Policy(OPEN).decide(replace(alert, priority=priority), T0)
        assert decision.action == "block" and decision.target == ATTACKER
        assert "port scan (122:1" in decision.why
    off = Policy(replace(OPEN, portscan=False))
    decision = off.decide(scan("203.0.113.7", "198.51.100.20", proto="PROTO:255", engine="snort2"), T0)
    assert decision.action == "ignore" and "policy.portscan = false" in decision.why


def test_include_and_exclude_lists():
    excluded = Policy(replace(OPEN, exclude_sids=("1:1000101",)))
    assert "exclude_sids" in excluded.decide(attack(), T0).why
    assert excluded.decide(attack(sid=1000102), T0).action == "block"
    included = Policy(replace(OPEN, include_sids=("1:2000",)))
    assert included.decide(attack(), T0).action == "ignore"  # priority 1, but not listed
    listed = included.decide(attack(sid=2000, priority=3), T0)  # listed: acted on whatever its priority
    assert listed.action == "block" and "include_sids" in listed.why


def test_alert_without_priority_is_not_guessed():
    decision = Policy(OPEN).decide(attack(priority=None, fmt="csv"), T0)
    assert decision.action == "ignore" and "no priority" in decision.why


def test_per_sid_attacker_end():
    policy = Policy(replace(OPEN, attacker={"1:3000": "dst"}))
    decision = policy.decide(attack(src="198.51.100.20", dst="203.0.113.7", sid=3000), T0)
    assert decision.target == ATTACKER and 'policy.attacker "1:3000"' in decision.attribution


@pytest.mark.parametrize(
    "protected, attacker_end, src, dst",
    [
        ("192.168.0.0/16", "src", "192.168.4.4", "203.0.113.9"),
        ("192.168.0.0/16", "dst", "203.0.113.9", "192.168.4.4"),
        ("2001:db8:1::/48", "src", "2001:db8:1::66", "2001:db8:2::1"),
        ("2001:db8:1::/48", "dst", "2001:db8:2::1", "2001:db8:1::66"),
    ],
)
def test_protected_networks_on_either_end(protected, attacker_end, src, dst):
    config = replace(OPEN, protected=(ipaddress.ip_network(protected),), attacker={"1:4000": attacker_end})
    policy = Policy(config)
    decision = policy.decide(attack(src=src, dst=dst, sid=4000), T0)
    assert decision.action == "ignore" and decision.target is None
    assert f"policy.protected {protected}" in decision.why
    # the other end is blockable when it is the attacker
    flipped = {"src": "dst", "dst": "src"}[attacker_end]
    other = Policy(replace(config, attacker={"1:4000": flipped})).decide(attack(src=src, dst=dst, sid=4000), T0)
    assert other.action == "block" and other.target not in ipaddress.ip_network(protected)


@pytest.mark.parametrize(
    "address, kind",
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("255.255.255.255", "reserved/broadcast"),
        ("240.0.0.1", "reserved/broadcast"),
        ("0.1.2.3", "this network"),
        ("::ffff:127.0.0.1", "loopback"),
    ],
)
def test_always_protected_kinds(address, kind):
    decision = Policy(OPEN).decide(attack(src=address), T0)
    assert decision.action == "ignore" and kind in decision.why


def test_routers_and_this_host_are_protected():
    policy = Policy(OPEN, always_protected=["198.51.100.1", ipaddress.ip_address("2001:db8::1"), "10.1.0.0/16"])
    for address in ("198.51.100.1", "2001:db8::1", "10.1.2.3"):
        decision = policy.decide(attack(src=address), T0)
        assert decision.action == "ignore" and "a router or this host" in decision.why
    assert policy.decide(attack(src="198.51.100.2"), T0).action == "block"


def test_ipv4_mapped_ipv6_is_blocked_as_ipv4():
    decision = Policy(OPEN).decide(attack(src="::ffff:203.0.113.7", dst="::ffff:198.51.100.20"), T0)
    assert decision.target == ATTACKER and decision.target.version == 4


def test_threshold_within_window_uses_alert_time():
    policy = Policy(replace(OPEN, threshold=3, window=60.0))
    start = datetime(2026, 3, 1, 12, 0, 0)
    times = [
        start,
        start + timedelta(seconds=30),
        start + timedelta(seconds=100),
        start + timedelta(seconds=110),
        start + timedelta(seconds=120),
    ]
    actions = [policy.decide(attack(time=t), T0).action for t in times]
    # 0s, 30s: 1 and 2 of 3; at 100s the 0s and 30s ones are older than 60s; 120s: 100, 110, 120 -> 3 of 3
    assert actions == ["ignore", "ignore", "ignore", "ignore", "block"]
    first = Policy(replace(OPEN, threshold=3)).decide(attack(), T0)
    assert "1 of 3 alerts from 203.0.113.7 within 1m" in first.why


def test_threshold_without_alert_time_uses_now():
    policy = Policy(replace(OPEN, threshold=2, window=10.0))
    assert policy.decide(attack(), T0).action == "ignore"
    assert policy.decide(attack(), T0 + 11).action == "ignore"  # the first one is too old
    assert policy.decide(attack(), T0 + 15).action == "block"


def test_no_repeat_until_expiry_then_again():
    policy = Policy(OPEN)
    assert policy.decide(attack(), T0).action == "block"
    again = [policy.decide(attack(), T0 + i) for i in range(1, 6)]
    assert all(d.action == "ignore" for d in again)
    assert "already blocked until" in again[-1].why and "5 later alerts folded in" in again[-1].why
    assert policy.blocked_until(ATTACKER, T0 + 10) == T0 + 300
    assert policy.decide(attack(), T0 + 301).action == "block"  # expired: blocked anew


def test_responder_side_tells_what_is_blocked():
    policy = Policy(OPEN)
    policy.note_blocked(ATTACKER, T0 + 100)
    assert policy.decide(attack(), T0).action == "ignore"
    policy.forget(ATTACKER)
    assert policy.decide(attack(), T0 + 1).action == "block"


def test_flood_guard_trips_rolls_back_and_resumes():
    policy = Policy(replace(OPEN, max_new_blocks_per_minute=5, rollback=3))
    addresses = [f"203.0.113.{i}" for i in range(1, 20)]
    decisions = [policy.decide(attack(src=a), T0 + i) for i, a in enumerate(addresses[:5])]
    assert all(d.action == "block" for d in decisions)
    assert policy.take_guard_event() is None
    tripping = policy.decide(attack(src=addresses[5]), T0 + 6)
    assert tripping.action == "ignore" and "FLOOD GUARD TRIPPED" in tripping.why
    event = policy.take_guard_event()
    assert event is not None and event.new_blocks == 6 and event.limit == 5
    assert [str(a) for a in event.rollback] == ["203.0.113.5", "203.0.113.4", "203.0.113.3"]
    assert policy.take_guard_event() is None  # reported once
    # rolled-back addresses are no longer "already blocked"; the others still are
    assert policy.blocked_until(ipaddress.ip_address("203.0.113.5"), T0 + 7) is None
    assert policy.blocked_until(ipaddress.ip_address("203.0.113.1"), T0 + 7) is not None
    # while tripped: nothing is blocked, and every decision says so, also unrelated ignores
    during = [policy.decide(attack(src=a), T0 + 20 + i) for i, a in enumerate(addresses[6:10])]
    assert all(d.action == "ignore" and d.why.startswith("FLOOD GUARD: blocking stopped since") for d in during)
    assert all("rolling back" not in d.why for d in during)  # the rollback is announced once
    low = policy.decide(attack(src="203.0.113.99", priority=3), T0 + 30)
    assert low.why.startswith("FLOOD GUARD") and "priority 3 > min_priority 1" in low.why
    # a storm keeps it tripped: the quiet minute counts from the last wanted block
    assert policy.decide(attack(src=addresses[11]), T0 + 23 + FLOOD_WINDOW - 1).action == "ignore"
    quiet = T0 + 23 + 2 * FLOOD_WINDOW
    resumed = policy.decide(attack(src=addresses[12]), quiet)
    assert resumed.action == "block" and "FLOOD GUARD" not in resumed.why


def test_flood_guard_resume_is_taken_once_with_how_many_blocks_were_held():
    policy = Policy(replace(OPEN, max_new_blocks_per_minute=2))
    for i in range(5):  # two blocks; the third trips it; two more held
        policy.decide(attack(src=f"203.0.113.{i + 1}"), T0 + i)
    assert policy.take_guard_event() is not None and policy.guard.held == 3
    assert policy.take_guard_resume(T0 + 4 + FLOOD_WINDOW - 1) is None  # not a quiet minute yet
    resumed = policy.take_guard_resume(T0 + 500)  # by the clock alone: no alert needed
    assert (resumed.at, resumed.tripped_at, resumed.held) == (T0 + 4 + FLOOD_WINDOW, T0 + 2, 3)
    assert resumed.describe().startswith("FLOOD GUARD CLEARED: blocking resumed after a quiet minute; it held from")
    assert "for 1m2s, 3 block decisions held back" in resumed.describe()
    assert policy.take_guard_resume(T0 + 501) is None and policy.guard.tripped is None
    assert policy.decide(attack(src="203.0.113.9"), T0 + 502).action == "block"


def test_flood_guard_counts_a_sliding_minute():
    policy = Policy(replace(OPEN, max_new_blocks_per_minute=3))
    for i in range(12):  # one new block every 25 s never exceeds 3 per minute
        assert policy.decide(attack(src=f"203.0.113.{i + 1}"), T0 + 25 * i).action == "block"


def test_hostile_messages_never_become_targets():
    text = "1.2.3.4; /system reset-configuration 10.0.0.1 ::1 `rm -rf /`"
    decision = Policy(OPEN).decide(attack(msg=text, src="203.0.113.7"), T0)
    assert decision.target == ATTACKER
    bogus = replace(attack(), src="1.2.3.4; /system reset-configuration")  # a broken parser's output
    assert Policy(OPEN).decide(bogus, T0).action == "ignore"


@settings(max_examples=300, deadline=None)
@given(
    src=st.one_of(st.none(), st.ip_addresses(), st.text(max_size=40)),
    dst=st.one_of(st.none(), st.ip_addresses(), st.text(max_size=40)),
    gid=st.sampled_from([1, 116, 122, 129, 0, 2**31]),
    priority=st.one_of(st.none(), st.integers(-5, 300)),
    sport=st.one_of(st.none(), st.integers(0, 70000)),
    dport=st.one_of(st.none(), st.integers(0, 70000)),
    proto=st.one_of(st.none(), st.sampled_from(["TCP", "UDP", "ICMP", "PROTO:255", "IPV6-ICMP"]), st.text(max_size=10)),
    flags=st.one_of(st.none(), st.text(max_size=10)),
    direction=st.one_of(st.none(), st.sampled_from(["C2S", "S2C", "UNK"]), st.text(max_size=5)),
    icmp_type=st.one_of(st.none(), st.integers(-1, 300)),
    msg=st.text(max_size=80),
)
def test_hostile_alerts_only_ever_target_ipaddresses(
    src, dst, gid, priority, sport, dport, proto, flags, direction, icmp_type, msg
):
    policy = Policy(replace(OPEN, portscan_attribution="src", attacker={"1:1": "dst"}))
    alert = Alert(
        gid=gid,
        sid=1,
        rev=1,
        msg=msg,
        format="json",
        origin=Origin("h"),
        priority=priority,
        proto=proto,
        src=src,
        sport=sport,
        dst=dst,
        dport=dport,
        direction=direction,
        tcp_flags=flags,
        icmp_type=icmp_type,
    )
    decision = policy.decide(alert, T0)
    assert decision.why
    if decision.action == "block":
        assert isinstance(decision.target, (ipaddress.IPv4Address, ipaddress.IPv6Address))
        assert decision.target in (src, dst) or decision.target in (
            getattr(src, "ipv4_mapped", None),
            getattr(dst, "ipv4_mapped", None),
        )
    else:
        assert decision.target is None


def test_host_and_router_addresses_from_this_machine():
    from bridge.decide.hostaddrs import _fib_trie_addresses, host_addresses, router_addresses
    from responder.config import RouterConfig

    mine = host_addresses()
    assert all(isinstance(a, (ipaddress.IPv4Address, ipaddress.IPv6Address)) for a in mine)
    if Path("/proc/net/fib_trie").exists():
        assert ipaddress.ip_address("127.0.0.1") in mine
    sample = "  |-- 10.1.2.3\n     /32 host LOCAL\n  |-- 10.1.2.255\n     /32 link BROADCAST\n  |-- 10.1.2.0\n     /24 link UNICAST\n"
    assert _fib_trie_addresses(sample) == {ipaddress.ip_address("10.1.2.3"), ipaddress.ip_address("10.1.2.255")}
    routers = [
        RouterConfig(name="a", host="192.0.2.1"),
        RouterConfig(name="b", host="localhost"),
        RouterConfig(name="c", host="2001:db8::1"),
    ]
    assert router_addresses(routers, resolve=False) == [
        ipaddress.ip_address("192.0.2.1"),
        ipaddress.ip_address("2001:db8::1"),
    ]
    # "localhost" resolves through the system's resolver (/etc/hosts); whatever it answers is what
    # counts, and a machine that cannot resolve it must still get the literal addresses.
    try:
        resolved = {ipaddress.ip_address(info[4][0].split("%")[0]) for info in socket.getaddrinfo("localhost", None)}
    except socket.gaierror:
        resolved = set()
    assert (
        set(router_addresses(routers, resolve=True))
        == {ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("2001:db8::1")} | resolved
    )
    policy = Policy(OPEN, always_protected=mine)
    for address in mine:
        assert policy.decide(attack(src=str(address)), T0).action == "ignore"


# -- one-port sweeps, victim-side rules and protected attackers (issue 27) -------------------------

HOME = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8:1::/48"))


def sweep(src, dst, sid=7, **kw) -> Alert:
    kw.setdefault("msg", "(port_scan) TCP filtered portsweep")
    kw.setdefault("priority", 3)
    return make_alert(src, dst, gid=122, sid=sid, **kw)


@pytest.mark.parametrize("sid", [3, 7, 11, 15, 19, 23])
def test_a_client_sweeping_one_port_across_outside_hosts_is_not_blocked(sid):
    # a browser whose third-party web servers do not answer: one client, dozens of servers, port 80
    policy = Policy(PolicyConfig(protected=HOME))
    client = "198.18.0.10"  # not in protected: the client is not shielded by that
    alert = sweep(
        client, "93.184.216.34", sid=sid, fmt="json", sport=51000, dport=80, tcp_flags="******S*", direction="C2S"
    )
    decision = policy.decide(alert, T0)
    assert decision.action == "ignore" and decision.reason == "client_sweep", decision.why
    assert "outside policy.protected (93.184.216.34)" in decision.why and "(port 80)" in decision.why
    assert "block_client_sweeps" in decision.why
    blocking = Policy(PolicyConfig(protected=HOME, block_client_sweeps=True))
    assert blocking.decide(alert, T0).action == "block"


def test_real_sweeps_are_still_blocked():
    policy = Policy(PolicyConfig(protected=HOME))
    # an outside host sweeping port 22 across your hosts (Snort 2's pseudo-packet)
    inward = sweep("203.0.113.9", "10.1.2.3", sid=3, proto="PROTO:255", engine="snort2", priority=2)
    assert policy.decide(inward, T0).action == "block"
    # ICMP sweeps are scans whoever sends them and wherever they go
    icmp = sweep(
        "198.18.0.11", "93.184.216.34", sid=25, msg="(port_scan) ICMP sweep", proto="PROTO:255", engine="snort2"
    )
    assert policy.decide(icmp, T0).action == "block"
    # many ports of one host
    ports = sweep(
        "198.18.0.12", "93.184.216.34", sid=1, msg="(port_scan) TCP portscan", proto="PROTO:255", engine="snort2"
    )
    assert policy.decide(ports, T0).action == "block"
    # IPv6: an outside host sweeping your /48
    v6 = sweep("2001:db8:ff::9", "2001:db8:1::20", sid=7, fmt="json", dport=80, tcp_flags="******S*", direction="C2S")
    assert policy.decide(v6, T0).action == "block"


def test_the_controller_of_a_compromised_host_is_blocked_not_the_host():
    policy = Policy(PolicyConfig(protected=()))
    banner = attack(
        "10.1.1.5",
        "203.0.113.66",
        sid=2123,
        sport=49820,
        dport=4444,
        msg="INDICATOR-COMPROMISE Microsoft cmd.exe banner",
    )
    decision = policy.decide(banner, T0)
    assert decision.action == "block" and decision.target == ipaddress.ip_address("203.0.113.66"), decision.why
    assert "the victim is the source" in decision.attribution


def test_a_protected_attacker_is_said_so_and_its_outside_peer_named():
    policy = Policy(PolicyConfig(protected=HOME))
    # an inside host attacks an outside web server
    decision = policy.decide(attack("10.1.1.5", "198.51.100.20"), T0)
    assert decision.action == "ignore" and decision.reason == "protected_attacker"
    assert "10.1.1.5 is protected" in decision.why and "its outside peer is 198.51.100.20" in decision.why
    # both ends yours: plainly protected
    inside = policy.decide(attack("10.1.1.5", "10.1.1.6"), T0)
    assert inside.reason == "protected" and "outside peer" not in inside.why


def test_the_shipped_exclusions_are_not_acted_on_unless_asked():
    android = attack("192.0.2.50", "203.0.113.80", sid=25521, msg="OS-MOBILE Android User-Agent detected")
    decision = Policy(OPEN).decide(android, T0)
    assert decision.action == "ignore" and decision.reason == "excluded"
    assert "shipped exclusion list" in decision.why and "Android" in decision.why
    assert Policy(replace(OPEN, standard_exclusions=False)).decide(android, T0).action == "block"
    assert Policy(replace(OPEN, include_sids=("1:25521",))).decide(android, T0).action == "block"
    # what blocks real attacks stays: our rules, and every rule not listed
    assert Policy(OPEN).decide(attack(sid=1000101), T0).action == "block"
    assert Policy(OPEN).decide(attack(src="203.0.113.9", sid=2006446), T0).action == "block"


def test_every_shipped_exclusion_gives_its_reason():
    from bridge.decide.exclusions import STANDARD_EXCLUSIONS

    for key, reason in STANDARD_EXCLUSIONS.items():
        gid, sid = key.split(":")
        assert gid.isdigit() and sid.isdigit() and len(reason) > 40, key
        assert not sid.startswith("10001"), "our own rules are never excluded"


def test_a_special_address_as_attacker_is_plainly_protected():
    # link-local, loopback, the routers: not "one of your hosts attacking"
    decision = Policy(PolicyConfig(protected=HOME)).decide(attack("169.254.1.1", "198.51.100.20"), T0)
    assert decision.reason == "protected" and "outside peer" not in decision.why


def test_a_port_scan_event_towards_a_broadcast_address_is_discovery_not_a_scan():
    # Snort 2 on NetBIOS name service broadcasts (nDPI's netbios.pcap): 122:24 towards 10.0.5.255
    policy = Policy(PolicyConfig(protected=()))
    netbios = sweep(
        "10.0.5.233",
        "10.0.5.255",
        sid=24,
        msg="(portscan) UDP Filtered Distributed Portscan",
        proto="PROTO:255",
        engine="snort2",
        priority=2,
    )
    decision = policy.decide(netbios, T0)
    assert decision.action == "ignore" and decision.reason == "client_sweep" and "discovery" in decision.why
    ssdp = sweep(
        "10.0.5.234",
        "239.255.255.250",
        sid=17,
        msg="(portscan) UDP Portscan",
        proto="PROTO:255",
        engine="snort2",
        priority=2,
    )
    assert policy.decide(ssdp, T0).reason == "client_sweep"
    # a scan of a host is still a scan
    host = sweep(
        "10.0.5.235", "10.0.5.20", sid=17, msg="(portscan) UDP Portscan", proto="PROTO:255", engine="snort2", priority=2
    )
    assert policy.decide(host, T0).action == "block"
    assert Policy(PolicyConfig(protected=(), block_client_sweeps=True)).decide(netbios, T0).action == "block"
