"""Real routers' output, captured by others (ntc-templates' ``mikrotik_routeros`` fixtures, see
tests/data/routeros/SOURCES.md), read by our reply parsers; and routeros-sim printing the same
things the same way (v6, the version those captures come from)."""

from __future__ import annotations

import calendar
import ipaddress
from pathlib import Path

import pytest
from responder_rig import FakeClock

from responder.routeros.replies import parse_address_list, parse_uptime
from responder.sim.router.state import RouterProfile, RouterState
from responder.sim.script.interpreter import Interpreter

DATA = Path(__file__).parent / "data" / "routeros"


def fixture(name: str) -> str:
    return (DATA / f"mikrotik_routeros_{name}.raw").read_text()


def test_address_list_print_terse_ipv4_real_router():
    entries = parse_address_list(fixture("ip_firewall_address-list_print_terseIPv4"))
    assert len(entries) == 16
    assert entries[0].list == "Eqinoxe" and entries[0].address == ipaddress.ip_network("185.48.253.0/27")
    assert entries[5].address == ipaddress.ip_address("185.132.66.240") and not entries[5].dynamic
    disabled, dynamic = entries[13], entries[14]
    assert disabled.disabled and not disabled.dynamic and disabled.timeout_s is None
    assert dynamic.dynamic and dynamic.timeout_s == 4 * 60 + 52
    assert entries[15].list == "snmp-monitoring-address-list"  # index 15 without its padding
    assert [e.id for e in entries[:3]] == ["0", "1", "2"]


def test_address_list_print_terse_ipv6_real_router():
    entries = parse_address_list(fixture("ip_firewall_address-list_print_terseIPv6"))
    assert len(entries) == 8
    assert entries[0].address == ipaddress.ip_network("2a05:c100::/48")
    assert entries[4].dynamic and entries[4].timeout_s == 7 * 60 + 49
    assert entries[6].disabled and entries[7].list == "ertyhgfgf"


@pytest.mark.parametrize(
    "number,seconds",
    [
        (1, ((6 * 7 + 5) * 24 + 11) * 3600 + 55 * 60 + 45),
        (2, (24 + 6) * 3600 + 22 * 60),
        (3, (5 * 7 + 3) * 86400 + 20 * 60 + 51),  # its first line is indented with tabs
        (4, ((10 * 7 + 2) * 24 + 6) * 3600 + 21 * 60 + 59),
    ],
)
def test_system_resource_uptime_real_router(number, seconds):
    assert parse_uptime(fixture(f"system_resource_print_{number}")) == seconds


def v6_router(start: float) -> Interpreter:
    state = RouterState(profile=RouterProfile(flavour="v6"), clock=FakeClock(start))
    state.add_user("admin", group="full")
    return Interpreter(state)


def test_sim_prints_filter_rules_as_the_real_v6_router():
    real = fixture("ip_firewall_filter_print_all_without-paging").splitlines()
    sim = v6_router(1_700_000_000.0)
    for rule in (
        'chain=input action=accept connection-state=established,related,untracked comment="defconf: accept established,related,untracked"',
        'chain=input action=drop connection-state=invalid comment="defconf: drop invalid"',
    ):
        assert sim.run_line("admin", f"/ip firewall filter add {rule}").lines == ()
    printed = list(sim.run_line("admin", "/ip firewall filter print").lines)
    assert printed == real[:7]


def test_sim_prints_address_list_terse_as_the_real_v6_router():
    real = fixture("ip_firewall_address-list_print_terseIPv4").splitlines()[10:13]
    start = float(calendar.timegm((2022, 6, 14, 6, 34, 30, 0, 0, 0)))
    sim = v6_router(start)
    clock = sim.state.clock
    for address, at in (("192.168.1.1", start), ("192.168.1.2", start + 579), ("192.168.1.3", start + 621)):
        clock.now = at
        sim.run_line("admin", f"/ip firewall address-list add list=azeazeaze address={address}")
    printed = list(sim.run_line("admin", "/ip firewall address-list print terse").lines)
    assert [line.split(None, 1)[1] for line in printed] == [line.split(None, 1)[1] for line in real]
    assert printed[0] == " 0   " + real[0].split(None, 1)[1]
