"""The distinct-port scan detector (pure) and the probes it is fed from frames and log lines."""

import ipaddress

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6, IPv6ExtHdrHopByHop
from scapy.layers.l2 import Dot1Q, Ether
from scapy.layers.ppp import PPP, PPPoE

from bridge.events import PORTSCAN_GID
from bridge.scan.detector import Probe, ScanDetector
from bridge.scan.probes import probe_from_firewall_event, probe_from_frame
from bridge.scan.routeros_log import parse_firewall_line

SCANNER = ipaddress.ip_address("203.0.113.50")
TARGET = ipaddress.ip_address("198.51.100.10")


def probes(ports, start=1000.0, gap=0.01, src=SCANNER):
    return [Probe(src, TARGET, "TCP", port, start + i * gap) for i, port in enumerate(ports)]


def first_detection(detector, stream):
    for index, probe in enumerate(stream):
        alert = detector.feed(probe)
        if alert is not None:
            return index, alert
    return None, None


def test_detects_at_exactly_the_threshold_and_names_the_scanner():
    index, alert = first_detection(ScanDetector(ports=15, window=10), probes(range(1, 100)))
    assert index == 14
    assert alert.gid == PORTSCAN_GID and alert.src == SCANNER and alert.dst == TARGET
    assert alert.engine == "tzsp-ips" and alert.direction == "C2S"


def test_repeated_ports_do_not_count_twice():
    index, _ = first_detection(ScanDetector(ports=5, window=10), probes([22, 22, 22, 80, 80, 443, 443, 8080]))
    assert index is None


def test_a_slow_scan_stays_below_the_window():
    index, _ = first_detection(ScanDetector(ports=15, window=10), probes(range(1, 200), gap=1.0))
    assert index is None


def test_ports_leave_the_window_as_time_passes():
    detector = ScanDetector(ports=4, window=10)
    assert first_detection(detector, probes([1, 2, 3], start=0.0))[0] is None
    assert first_detection(detector, probes([4], start=20.0))[0] is None  # 1-3 expired
    assert first_detection(detector, probes([5, 6, 7], start=21.0))[0] == 2


def test_low_ports_weigh_more_like_routeros_psd():
    detector = ScanDetector(ports=21, window=3, low_port_weight=3)
    assert first_detection(detector, probes(range(1, 40)))[0] == 6  # 7 low ports x 3 = 21
    detector = ScanDetector(ports=21, window=3, low_port_weight=3)
    assert first_detection(detector, probes(range(2000, 2040)))[0] == 20  # high ports weigh 1


def test_one_detection_per_window_then_again_after_it():
    detector = ScanDetector(ports=3, window=5)
    hits = [bool(detector.feed(p)) for p in probes(range(1, 30), gap=0.5)]
    assert hits.count(True) == 3 and hits.index(True) == 2


def test_sources_are_counted_separately_and_memory_is_bounded():
    detector = ScanDetector(ports=3, window=10, max_sources=100)
    many = [
        Probe(ipaddress.ip_address(f"10.0.{i // 256}.{i % 256}"), TARGET, "TCP", 80 + i % 2, float(i))
        for i in range(5000)
    ]
    assert first_detection(detector, many)[0] is None
    assert detector.tracked_sources() == 100


def test_an_icmp_sweep_counts_destinations():
    detector = ScanDetector(ports=5, window=10)
    sweep = [Probe(SCANNER, ipaddress.ip_address(f"192.0.2.{i}"), "ICMP", None, float(i)) for i in range(1, 10)]
    index, alert = first_detection(detector, sweep)
    assert index == 4 and alert.sid == 26 and "hosts" in alert.msg


def test_probes_from_frames():
    def probe(packet, linktype=1):
        return probe_from_frame(linktype, bytes(packet), 5.0)

    syn = probe(Ether() / IP(src="1.2.3.4", dst="5.6.7.8") / TCP(dport=22, flags="S"))
    assert (str(syn.src), str(syn.dst), syn.proto, syn.dport) == ("1.2.3.4", "5.6.7.8", "TCP", 22)
    assert probe(Ether() / IP(src="5.6.7.8", dst="1.2.3.4") / TCP(sport=22, flags="SA")) is None  # a reply
    assert probe(Ether() / IP() / TCP(flags="R")) is None
    assert probe(Ether() / Dot1Q(vlan=5) / Dot1Q(vlan=6) / IP(src="1.2.3.4") / UDP(dport=53)).dport == 53
    v6 = probe(Ether() / IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrHopByHop() / TCP(dport=443, flags="S"))
    assert v6.src == ipaddress.ip_address("2001:db8::1") and v6.dport == 443
    assert probe(Ether() / IP() / ICMP(type=8)).proto == "ICMP"
    assert probe(Ether() / IP() / ICMP(type=0)) is None
    assert probe(Ether() / IPv6() / ICMPv6EchoRequest()).proto == "ICMPV6"
    assert probe(IP(src="9.9.9.9") / TCP(dport=80, flags="S"), linktype=101).src == ipaddress.ip_address("9.9.9.9")
    assert probe(Ether() / IP(frag=10) / TCP(flags="S")) is None  # a later fragment
    pppoe = probe(
        Ether() / PPPoE(sessionid=7) / PPP(proto=0x0021) / IP(src="1.2.3.4", dst="5.6.7.8") / TCP(dport=23, flags="S")
    )
    assert (str(pppoe.src), pppoe.dport) == ("1.2.3.4", 23)  # a MikroTik WAN link is often PPPoE


def test_truncated_frames_never_raise():
    frame = bytes(Ether() / IP(src="1.2.3.4") / TCP(dport=22, flags="S"))
    for cut in range(len(frame)):
        for linktype in (1, 101, 105):
            result = probe_from_frame(linktype, frame[:cut], 0.0)
            assert result is None or isinstance(result, Probe)


def test_probes_from_firewall_log_lines_drive_the_detector():
    detector = ScanDetector(ports=10, window=10)
    lines = [
        f"firewall,info SCAN input: in:ether1 out:(unknown 0), proto TCP (SYN), 203.0.113.50:40000->198.51.100.10:{port}, len 44"
        for port in range(1000, 1012)
    ]
    stream = [probe_from_firewall_event(parse_firewall_line(line), 100.0 + i / 10) for i, line in enumerate(lines)]
    index, alert = first_detection(detector, stream)
    assert index == 9 and alert.src == SCANNER
    reply = parse_firewall_line(
        "forward: in:a out:b, proto TCP (SYN,ACK), 198.51.100.10:80->203.0.113.50:40000, len 44"
    )
    assert probe_from_firewall_event(reply, 0.0) is None


def resolver_answers(count, start=0.0):
    """A DNS server answering ``count`` clients, each from port 53 to a different client port."""
    resolver = ipaddress.ip_address("198.51.100.53")
    return [
        Probe(resolver, ipaddress.ip_address(f"10.0.{i // 200}.{i % 200 + 1}"), "UDP", 30000 + i, start + i * 0.01, 53)
        for i in range(count)
    ]


def test_a_busy_resolver_is_not_a_udp_scanner():
    detector = ScanDetector(ports=15, window=10)
    assert first_detection(detector, resolver_answers(500))[0] is None
    assert detector.snapshot()["replies_ignored"] == 500


def test_udp_replies_to_seen_requests_are_ignored_whatever_the_ports():
    detector = ScanDetector(ports=5, window=10)
    server = ipaddress.ip_address("198.51.100.7")
    requests = [Probe(SCANNER, server, "UDP", 7000, float(i), 40000 + i) for i in range(3)]
    answers = [Probe(server, SCANNER, "UDP", 40000 + i, 5.0 + i, 7000) for i in range(3)]
    assert first_detection(detector, requests + answers)[0] is None
    assert detector.snapshot()["replies_ignored"] == 3


def test_a_udp_scan_from_a_high_port_is_still_caught():
    detector = ScanDetector(ports=15, window=10)
    scan = [Probe(SCANNER, TARGET, "UDP", port, 100.0 + port / 100, 62025) for port in range(1, 60)]
    index, alert = first_detection(detector, scan)
    assert index == 14 and alert.src == SCANNER and alert.sid == 17


def test_udp_probes_from_frames_carry_the_source_port():
    probe = probe_from_frame(
        1, bytes(Ether() / IP(src="198.51.100.53", dst="10.0.0.9") / UDP(sport=53, dport=41000)), 1.0
    )
    assert (probe.sport, probe.dport) == (53, 41000)


def test_stealth_probes_from_firewall_log_lines_carry_their_scan_type():
    def probe(flags, state="invalid"):
        line = (
            f"firewall,info tzsp-ips-stealth input: in:ether1 out:(unknown 0), connection-state:{state} "
            f"src-mac 00:0c:29:aa:bb:cc, proto TCP{flags}, 203.0.113.50:35503->198.51.100.10:80, len 40"
        )
        return probe_from_firewall_event(parse_firewall_line(line), 1.0)

    assert probe(" (FIN)").kind == "FIN"
    assert probe(" (FIN,PSH,URG)").kind == "XMAS"
    assert probe(" ()").kind == "NULL" and probe("").kind == "NULL"  # with or without the empty parentheses
    assert probe(" (SYN,FIN)").kind == "SYN+FIN"
    assert probe(" (SYN)", state="new").kind == "SYN"
    assert probe(" (RST)") is None and probe(" (ACK,FIN)") is None  # answers, even when invalid
    assert probe(" (FIN)", state="established") is None


def test_a_detection_names_the_main_scan_type_and_the_others():
    detector = ScanDetector(ports=6, window=10)
    stream = [Probe(SCANNER, TARGET, "TCP", port, 1.0 + port / 100, 40000, "FIN") for port in range(1, 5)]
    stream += [Probe(SCANNER, TARGET, "UDP", port, 2.0 + port / 100, 40000) for port in range(7, 9)]
    _, alert = first_detection(detector, stream)
    assert "(tzsp-ips scan) TCP FIN scan, 4 ports in 10 s (also UDP scan 2) (score 6)" == alert.msg
