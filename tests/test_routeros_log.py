"""RouterOS firewall log lines: every framing RouterOS and rsyslog produce, and hostile text."""

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.scan.routeros_log import NotAFirewallLine, parse_firewall_line

# The message bodies are the real examples quoted in RouterOS's documentation and public log parsers.
V7_INPUT = (
    "BAN INPUT 80 input: in:ether1 out:(unknown 0), connection-state:new src-mac aa:bb:cc:dd:dd:ee, "
    "proto TCP (SYN), 80.75.212.9:50264->192.168.0.88:80, len 40"
)
V6_SRCNAT = (
    "prerouting: in:1.ether5 out:(unknown 0), src-mac 2c:c8:1b:ca:7b:2d, proto TCP (ACK,FIN), "
    "172.17.103.127:34923->52.88.118.255:80, NAT (172.17.103.127:34923->103.175.130.19:34923)->52.88.118.255:80, len 52"
)
ICMP_OUTPUT = (
    "output: in:(unknown 0) out:sfp-sfpplus2, connection-state:established src-mac f2:b5:e9:17:18:3b, "
    "proto ICMP (type 8, code 0), 111.15.0.1->111.13.0.1, len 56"
)


@pytest.mark.parametrize(
    "framing",
    [
        "{msg}",  # message only
        "firewall,info {msg}",  # RouterOS remote logging, default format
        "<30>Sep 25 01:37:18 MikroTik {msg}",  # remote-log-format=syslog
        "<30>Sep  5 01:37:18 MikroTik firewall,info {msg}",  # ... with add-topics-string=yes
        "2026-11-22T03:35:41.962312+00:00 core1 firewall,info {msg}",  # rsyslog file
        "Nov 22 03:35:41 192.0.2.1 firewall,info {msg}",  # traditional syslog file
    ],
)
def test_every_framing_gives_the_same_event(framing):
    event = parse_firewall_line(framing.format(msg=V7_INPUT))
    assert event.prefix == "BAN INPUT 80"
    assert event.chain == "input"
    assert event.in_interface == "ether1"
    assert event.proto == "TCP" and event.flags == ("SYN",)
    assert event.src == ipaddress.ip_address("80.75.212.9") and event.sport == 50264
    assert event.dst == ipaddress.ip_address("192.168.0.88") and event.dport == 80
    assert event.is_connection_attempt


def test_router_name_comes_from_the_syslog_header():
    assert parse_firewall_line("<30>Sep 25 01:37:18 edge-2 " + V7_INPUT).router == "edge-2"
    assert parse_firewall_line("firewall,info " + V7_INPUT).router == ""


def test_the_raw_udp_example_with_an_exclamation_in_the_prefix():
    event = parse_firewall_line(
        "<30>Sep 25 01:37:18 MikroTik drop !LAN input: in:pppoe out:(unknown 0), "
        "proto TCP (SYN), 137.124.88.7:43836->137.124.88.8:51104, len 44"
    )
    assert (event.prefix, event.in_interface, str(event.src), event.dport) == (
        "drop !LAN",
        "pppoe",
        "137.124.88.7",
        51104,
    )


def test_nat_keeps_the_original_source_and_is_not_a_probe():
    event = parse_firewall_line(V6_SRCNAT)
    assert str(event.src) == "172.17.103.127" and str(event.dst) == "52.88.118.255" and event.dport == 80
    assert event.flags == ("ACK", "FIN") and not event.is_connection_attempt


def test_icmp_has_type_and_code_and_no_ports():
    event = parse_firewall_line(ICMP_OUTPUT)
    assert event.proto == "ICMP" and event.flags == ("type 8", "code 0")
    assert event.sport is None and event.dport is None
    # the documented example is a ping the router already tracks: not a new probe
    assert event.connection_state == "established" and not event.is_connection_attempt
    fresh = parse_firewall_line(ICMP_OUTPUT.replace("connection-state:established", "connection-state:new"))
    assert fresh.connection_state == "new" and fresh.is_connection_attempt


@pytest.mark.parametrize("state", ["established", "related"])
def test_packets_of_tracked_connections_are_not_probes(state):
    event = parse_firewall_line(V7_INPUT.replace("connection-state:new", f"connection-state:{state}"))
    assert event.connection_state == state and not event.is_connection_attempt


def test_udp_has_no_flags():
    event = parse_firewall_line("forward: in:ether1 out:bridge, proto UDP, 203.0.113.5:5353->198.51.100.7:161, len 60")
    assert event.flags == () and event.dport == 161 and event.is_connection_attempt


def test_ipv6_endpoints_bracketed():
    event = parse_firewall_line(
        "input: in:ether1 out:(unknown 0), proto TCP (SYN), [2001:db8::5]:4444->[2001:db8::1]:22, len 80"
    )
    assert event.src == ipaddress.ip_address("2001:db8::5") and event.dport == 22


@pytest.mark.parametrize(
    "line",
    [
        "",
        "system,info router rebooted",
        "input: in:x out:y, proto TCP (SYN), 1.2.3.4; /system reset-configuration:1->5.6.7.8:2, len 3",
        "input: in:x out:y, proto TCP (SYN), 999.1.1.1:1->5.6.7.8:2, len 3",
        "input: in:x out:y, proto TCP (SYN), 1.2.3.4:99999->5.6.7.8:2, len 3",
        "input: in:x out:y, proto TCP (SYN), evil.example:1->5.6.7.8:2, len 3",
    ],
)
def test_lines_that_are_not_firewall_events_are_refused(line):
    with pytest.raises(NotAFirewallLine):
        parse_firewall_line(line)


@given(st.text(max_size=300))
def test_any_text_gives_an_event_with_real_addresses_or_a_refusal(text):
    try:
        event = parse_firewall_line(text)
    except NotAFirewallLine:
        return
    assert isinstance(event.src, (ipaddress.IPv4Address, ipaddress.IPv6Address))
    assert isinstance(event.dst, (ipaddress.IPv4Address, ipaddress.IPv6Address))
