"""Who is the attacker: the end chosen for each kind of alert, and the account of why."""

from __future__ import annotations

import ipaddress
from datetime import datetime

import pytest

from bridge.decide.attribution import FlowMemory, attribute
from bridge.events import Alert, Origin

SCANNER = ipaddress.ip_address("192.168.1.10")
VICTIM = ipaddress.ip_address("192.168.1.25")


def make_alert(
    src="192.168.1.10",
    dst="192.168.1.25",
    gid=1,
    sid=1000101,
    priority=1,
    proto="TCP",
    sport=None,
    dport=None,
    fmt="fast",
    msg="LOCAL test",
    time=None,
    **evidence,
) -> Alert:
    """An Alert as a parser would give it (addresses already ipaddress objects)."""
    return Alert(
        gid=gid,
        sid=sid,
        rev=1,
        msg=msg,
        format=fmt,
        origin=Origin("test", 0, 1),
        priority=priority,
        proto=proto,
        src=ipaddress.ip_address(src) if src is not None else None,
        sport=sport,
        dst=ipaddress.ip_address(dst) if dst is not None else None,
        dport=dport,
        time=time,
        **evidence,
    )


def scan(src, dst, **kw) -> Alert:
    kw.setdefault("msg", "(port_scan) TCP portscan")
    kw.setdefault("priority", 3)
    return make_alert(src, dst, gid=122, sid=1, **kw)


def test_rule_alerts_name_the_source_by_default():
    result = attribute(make_alert(sport=58806, dport=80), {})
    assert (result.end, result.attacker) == ("src", SCANNER)
    assert result.how == "src (default)"


def test_per_sid_setting_overrides_everything_including_reply_evidence():
    alert = scan("192.168.1.25", "192.168.1.10", fmt="json", direction="S2C", tcp_flags="***A*R**")
    result = attribute(alert, {"122:1": "src"})
    assert result.attacker == VICTIM  # the admin said so, and the reason says whose choice it was
    assert 'policy.attacker "122:1"' in result.how
    rule = attribute(make_alert(sid=2000), {"1:2000": "dst"})
    assert rule.attacker == VICTIM and rule.end == "dst"


@pytest.mark.parametrize(
    "evidence, sign",
    [
        ({"direction": "S2C"}, "dir S2C"),
        ({"tcp_flags": "***A*R**"}, "RST"),
        ({"direction": "S2C", "tcp_flags": "***A*R**"}, "dir S2C"),
        ({"tcp_flags": "***A**S*"}, "SYN/ACK"),
    ],
)
def test_snort3_scan_on_the_victims_reply_names_the_destination(evidence, sign):
    # TCP_CONNECT_SCAN at Snort 3 med: the 122:1 alert sits on 192.168.1.25's RST/ACK
    alert = scan("192.168.1.25", "192.168.1.10", sport=389, dport=2042, fmt="json", **evidence)
    result = attribute(alert, {})
    assert (result.end, result.attacker) == ("dst", SCANNER)
    assert "reply" in result.how and sign in result.how


def test_snort3_scan_on_icmp_unreachable_names_the_destination():
    alert = scan("192.168.1.25", "192.168.1.10", proto="ICMP", fmt="json", icmp_type=3, msg="(port_scan) UDP portscan")
    result = attribute(alert, {})
    assert result.attacker == SCANNER and "ICMP type 3" in result.how


def test_snort3_scan_on_a_probe_names_the_source():
    syn = attribute(
        scan(
            "192.168.1.10", "192.168.1.25", sport=35503, dport=50006, fmt="json", direction="C2S", tcp_flags="******S*"
        ),
        {},
    )
    assert syn.attacker == SCANNER and "probe" in syn.how
    sweep = attribute(scan("192.168.1.109", "192.168.1.0", proto="ICMP", fmt="json", direction="C2S", icmp_type=8), {})
    assert sweep.attacker == ipaddress.ip_address("192.168.1.109")


def test_contradicting_packet_signs_block_nobody():
    result = attribute(scan("192.168.1.10", "192.168.1.25", fmt="json", direction="C2S", tcp_flags="***A*R**"), {})
    assert result.attacker is None and "contradict" in result.how


def test_snort2_pseudo_packet_keeps_source_as_scanner():
    alert = scan("192.168.1.10", "192.168.1.25", proto="PROTO:255", msg="(portscan) TCP Portscan", engine="snort2")
    result = attribute(alert, {})
    assert result.attacker == SCANNER and "Snort 2" in result.how
    # also when only the proto shows it (no engine known, syslog line)
    assert attribute(scan("192.168.1.10", "192.168.1.25", proto="PROTO:255", fmt="syslog"), {}).attacker == SCANNER


def test_evidence_less_fast_scan_blocks_nobody_and_says_why():
    # TCP_SYN_SCAN at Snort 3 low, alert_fast: victim -> scanner, both ports high, nothing to tell
    alert = scan("192.168.1.25", "192.168.1.10", sport=50006, dport=35503)
    result = attribute(alert, {}, "evidence", FlowMemory(), now=100.0)
    assert result.attacker is None and result.end is None
    assert "not blocking rather than risk blocking the victim" in result.how
    trusted = attribute(alert, {}, "src", FlowMemory(), now=100.0)
    assert trusted.attacker == VICTIM and 'portscan_attribution = "src"' in trusted.how


def test_port_pattern_tells_the_server():
    # The real TCP_CONNECT_SCAN alert_fast line: 192.168.1.25:389 -> 192.168.1.10:2042
    reply = attribute(scan("192.168.1.25", "192.168.1.10", sport=389, dport=2042), {}, "evidence", FlowMemory())
    assert reply.attacker == SCANNER and "port pattern" in reply.how
    probe = attribute(scan("192.168.1.10", "192.168.1.25", sport=40000, dport=22), {}, "evidence", FlowMemory())
    assert probe.attacker == SCANNER
    # nmap -g 53: a low source port chosen to evade firewalls is no evidence
    evasive = attribute(scan("192.168.1.10", "192.168.1.25", sport=53, dport=8080), {}, "evidence", FlowMemory())
    assert evasive.attacker is None


def test_memory_of_an_earlier_attacker_names_the_scanner():
    memory = FlowMemory()
    memory.note_attacker(ipaddress.ip_address("192.168.1.109"), 10.0, "1:1000131")
    sweep = scan("192.168.1.109", "192.168.1.0", proto="ICMP", msg="(port_scan) ICMP filtered sweep")
    result = attribute(sweep, {}, "evidence", memory, now=11.0)
    assert result.attacker == ipaddress.ip_address("192.168.1.109") and "1:1000131" in result.how
    # forgotten after its time to live
    assert attribute(sweep, {}, "evidence", memory, now=10.0 + memory.ttl + 1).attacker is None


def test_memory_of_who_initiated_the_flow():
    memory = FlowMemory()
    # an earlier alert_json event showed the flow's direction: 192.168.1.10 is the client
    memory.observe(
        make_alert(gid=129, sid=15, priority=3, fmt="json", direction="C2S", sport=50000, dport=50001), now=1.0
    )
    later = scan("192.168.1.25", "192.168.1.10", sport=50001, dport=50000)
    result = attribute(later, {}, "evidence", memory, now=2.0)
    assert result.attacker == SCANNER and "initiated" in result.how


def test_conflicting_context_blocks_nobody():
    memory = FlowMemory()
    memory.note_attacker(VICTIM, 1.0, "1:1")
    memory.note_attacker(SCANNER, 1.0, "1:2")
    result = attribute(scan("192.168.1.25", "192.168.1.10", sport=50001, dport=50000), {}, "evidence", memory, now=2.0)
    assert result.attacker is None and "conflicting" in result.how


def test_flow_memory_is_bounded():
    memory = FlowMemory(max_entries=50, ttl=1000.0)
    for i in range(500):
        a = ipaddress.ip_address(f"10.0.{i // 250}.{i % 250}")
        memory.observe(make_alert(src=str(a), dst="10.9.9.9", sport=40000, dport=80), now=float(i))
        memory.note_attacker(a, float(i), "1:1")
    assert len(memory) <= 100
    assert memory.attacker(ipaddress.ip_address("10.0.0.0"), 500.0) is None  # oldest dropped
    assert memory.attacker(ipaddress.ip_address("10.0.1.249"), 500.0) == "1:1"


def test_missing_attacker_address_is_nobody():
    result = attribute(make_alert(src=None, dst="192.168.1.25"), {})
    assert result.attacker is None and "no src address" in result.how


def test_ipv6_icmp_reply():
    alert = scan("2001:db8::25", "2001:db8::10", proto="IPV6-ICMP", fmt="json", icmp_type=1)
    assert attribute(alert, {}).attacker == ipaddress.ip_address("2001:db8::10")


def test_built_in_detector_names_the_source():
    alert = scan("203.0.113.5", "192.0.2.1", fmt="scan-detector", engine="tzsp-ips", time=datetime(2026, 1, 1))
    assert attribute(alert, {}).attacker == ipaddress.ip_address("203.0.113.5")


# -- rules whose alert flows from the victim (issue 27) ------------------------------------------

CMD_BANNER = "INDICATOR-COMPROMISE Microsoft cmd.exe banner"


def test_a_banner_from_a_compromised_host_names_its_controller():
    # 1:2123 (community rules, successful-admin, $HOME_NET !21:23 -> $EXTERNAL_NET any): a reverse shell's
    # banner flows from the compromised host to the attacker's listener
    alert = make_alert("10.1.1.5", "203.0.113.66", sid=2123, sport=49820, dport=4444, msg=CMD_BANNER)
    result = attribute(alert, {})
    assert (result.end, result.attacker, result.basis) == ("dst", ipaddress.ip_address("203.0.113.66"), "victim-side")
    assert "the victim is the source" in result.how
    # the admin's word still wins
    assert attribute(alert, {"1:2123": "src"}).attacker == ipaddress.ip_address("10.1.1.5")
    # an ordinary rule is untouched
    assert attribute(make_alert("10.1.1.5", "203.0.113.66", sid=1000101), {}).end == "src"


def test_victim_side_rules_are_read_from_the_rule_header():
    from bridge.decide.victim_side import victim_side_rules, why_victim_side

    lines = [
        # the banner: our side to the outside, a successful compromise
        'alert tcp $HOME_NET !21:23 -> $EXTERNAL_NET any ( msg:"INDICATOR-COMPROMISE Microsoft cmd.exe banner"; flow:established; classtype:successful-admin; sid:2123; rev:12; )',
        # a backdoor server of ours answering its outside controller (commented out, as shipped)
        '# alert tcp $HOME_NET 2589 -> $EXTERNAL_NET any (msg:"MALWARE-BACKDOOR - Dagger_1.4.0"; flow:to_client,established; classtype:misc-activity; sid:105; rev:14;)',
        # a web server of ours leaking a file to an outside client
        'alert tcp $HTTP_SERVERS $HTTP_PORTS -> $EXTERNAL_NET any (msg:"ET ATTACK_RESPONSE passwd file"; flow:established; classtype:bad-unknown; sid:2002034; rev:5;)',
        # attacker -> victim: untouched
        'alert tcp $EXTERNAL_NET any -> $HOME_NET 21 (msg:"PROTOCOL-FTP ADMw0rm ftp login attempt"; flow:to_server,established; classtype:suspicious-login; sid:144; rev:16;)',
        # an inside host asking a resolver about a bad name: the resolver is not the attacker
        'alert udp $HOME_NET any -> $EXTERNAL_NET 53 (msg:"ET TROJAN DNS query for a C2 domain"; classtype:trojan-activity; sid:2020000; rev:1;)',
        # ours to the outside, but nothing says our host is the victim (a policy rule: the user is)
        'alert tcp $HOME_NET any -> $EXTERNAL_NET any (msg:"POLICY-OTHER BitTorrent"; flow:to_server; classtype:policy-violation; sid:2180; rev:5;)',
        "not a rule at all",
    ]
    assert victim_side_rules(lines) == {
        "1:2123": "successful-admin",
        "1:105": "to_client",
        "1:2002034": "ATTACK_RESPONSE",
    }
    assert why_victim_side(
        'alert tcp $HOME_NET any -> $EXTERNAL_NET any (msg:"x"; classtype:trojan-activity; gid:3; sid:7;)'
    ) == ("3:7", "trojan-activity")


def test_the_shipped_victim_side_list_is_what_the_public_rule_sets_say():
    import lzma

    from conftest import DATA

    from bridge.decide import victim_side

    found: dict[str, str] = {}
    for name in ("snort2-community.rules.xz", "snort3-community.rules.xz", "et-open-snort29.rules.xz"):
        text = lzma.decompress((DATA / "rules" / name).read_bytes()).decode("utf-8", "replace")
        for key, why in victim_side.victim_side_rules(text.splitlines()).items():
            found.setdefault(key, why)
    assert set(found) == victim_side.shipped()
    assert found["1:2123"] == "successful-admin"
