"""Writes the generated captures of the live tier (issue 27); run from this directory with scapy.

    python make_generated.py

Each capture is a small, plausible packet exchange, written with scapy because no public capture
shows exactly this case (or none we may copy): the timing is compressed, checksums are correct.

- browser_portsweep.pcap (benign): a browser at 10.0.5.23 loading a page whose 40 third-party web
  hosts are reached on port 80; 8 answer, the other 32 never do (SYN sent three times).
- reverse_shell_cmd_banner.pcap (attack by 203.0.113.66): a compromised Windows host 10.0.5.40
  connects out to its controller's listener (203.0.113.66:4444) and sends cmd.exe's banner; the
  controller types commands.
- ipv6_syn_scan.pcap (attack by 2001:db8:ff::9): SYN probes to 300 ports of 2001:db8:1::20, RST from
  the closed ones, SYN/ACK from 22 and 80.
- ipv6_web_traversal.pcap (attack by 2001:db8:ff::10): a completed handshake to 2001:db8:1::80 port
  80, then GET with ../ in the URI, the server's 200, and the close.
- ipv6_icmp_sweep.pcap (attack by 2001:db8:ff::11): 64 empty ICMPv6 echo requests to
  2001:db8:1::1..64, replies from 10 of them.
- ipv6_benign.pcap (benign): an IPv6 client 2001:db8:1::50 fetching a page from 2001:db8:ffff::80,
  a DNS query over IPv6, four ordinary pings (with payload).
"""

from __future__ import annotations

from scapy.all import DNS, DNSQR, ICMPv6EchoReply, ICMPv6EchoRequest, IP, IPv6, TCP, UDP, Ether, Raw, wrpcap

MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


class Clock:
    def __init__(self, start: float = 1_700_000_000.0, step: float = 0.002):
        self.now, self.step = start, step

    def stamp(self, packet, gap: float | None = None):
        self.now += self.step if gap is None else gap
        packet.time = self.now
        return packet


def ip(src, dst):
    return IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)


def tcp_session(clock, client, server, sport, dport, requests, seq_c=1000, seq_s=5000):
    """Handshake, (client data, server data) exchanges, FIN both ways: the packets, stamped."""
    out = []
    c, s = ip(client, server), ip(server, client)

    def add(layer, flags, seq, ack, data=b""):
        packet = (
            Ether(src=MAC_A, dst=MAC_B)
            / layer
            / TCP(
                sport=sport if layer is c else dport,
                dport=dport if layer is c else sport,
                flags=flags,
                seq=seq,
                ack=ack,
            )
        )
        if data:
            packet = packet / Raw(data)
        out.append(clock.stamp(packet))

    add(c, "S", seq_c, 0)
    add(s, "SA", seq_s, seq_c + 1)
    add(c, "A", seq_c + 1, seq_s + 1)
    cs, ss = seq_c + 1, seq_s + 1
    for client_data, server_data in requests:
        if client_data:
            add(c, "PA", cs, ss, client_data)
            cs += len(client_data)
            add(s, "A", ss, cs)
        if server_data:
            add(s, "PA", ss, cs, server_data)
            ss += len(server_data)
            add(c, "A", cs, ss)
    add(c, "FA", cs, ss)
    add(s, "FA", ss, cs + 1)
    add(c, "A", cs + 1, ss + 1)
    return out


def browser_portsweep():
    clock, packets = Clock(), []
    client = "10.0.5.23"
    hosts = [f"198.51.100.{n}" for n in range(10, 30)] + [f"203.0.113.{n}" for n in range(100, 120)]
    answering = set(hosts[::5])
    page = b"GET / HTTP/1.1\r\nHost: cdn.example\r\nUser-Agent: Mozilla/5.0\r\n\r\n"
    reply = b"HTTP/1.1 200 OK\r\nContent-Type: text/javascript\r\nContent-Length: 2\r\n\r\n{}"
    for attempt in range(3):  # the browser retries the unanswered SYNs
        for n, host in enumerate(hosts):
            if host in answering:
                if attempt == 0:
                    packets += tcp_session(clock, client, host, 50000 + n, 80, [(page, reply)])
                continue
            syn = (
                Ether(src=MAC_A, dst=MAC_B)
                / IP(src=client, dst=host)
                / TCP(sport=50000 + n, dport=80, flags="S", seq=7000 + n)
            )
            packets.append(clock.stamp(syn, 0.01))
        clock.now += 1.0
    return packets


def reverse_shell():
    clock = Clock()
    banner = (
        b"Microsoft Windows XP [Version 5.1.2600]\r\n(C) Copyright 1985-2001 Microsoft Corp.\r\n\r\n"
        b"C:\\Documents and Settings\\user>"
    )
    # the compromised host is the TCP client: it calls out to the listener and sends the banner first
    packets = tcp_session(
        clock,
        "10.0.5.40",
        "203.0.113.66",
        49820,
        4444,
        [(banner, b"whoami\r\n"), (b"whoami\r\nxp-desk\\user\r\n\r\nC:\\Documents and Settings\\user>", b"exit\r\n")],
    )
    return packets


def ipv6_syn_scan():
    clock, packets = Clock(step=0.0005), []
    scanner, target = "2001:db8:ff::9", "2001:db8:1::20"
    for n, port in enumerate(range(1, 301)):
        probe = (
            Ether(src=MAC_A, dst=MAC_B)
            / IPv6(src=scanner, dst=target)
            / TCP(sport=40000, dport=port, flags="S", seq=100 + n)
        )
        packets.append(clock.stamp(probe))
        flags = "SA" if port in (22, 80) else "RA"
        answer = (
            Ether(src=MAC_B, dst=MAC_A)
            / IPv6(src=target, dst=scanner)
            / TCP(sport=port, dport=40000, flags=flags, seq=9000, ack=101 + n)
        )
        packets.append(clock.stamp(answer))
    return packets


def ipv6_web_traversal():
    request = b"GET /dvwa/vulnerabilities/fi/?page=../../../../../../etc/passwd HTTP/1.1\r\nHost: [2001:db8:1::80]\r\nUser-Agent: Mozilla/5.0\r\n\r\n"
    reply = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 31\r\n\r\nroot:x:0:0:root:/root:/bin/bash"
    return tcp_session(Clock(), "2001:db8:ff::10", "2001:db8:1::80", 51515, 80, [(request, reply)])


def ipv6_icmp_sweep():
    clock, packets = Clock(step=0.01), []
    sweeper = "2001:db8:ff::11"
    for n in range(1, 65):
        host = f"2001:db8:1::{n:x}"
        packets.append(
            clock.stamp(Ether(src=MAC_A, dst=MAC_B) / IPv6(src=sweeper, dst=host) / ICMPv6EchoRequest(id=0x77, seq=n))
        )
        if n % 6 == 0:
            packets.append(
                clock.stamp(Ether(src=MAC_B, dst=MAC_A) / IPv6(src=host, dst=sweeper) / ICMPv6EchoReply(id=0x77, seq=n))
            )
    return packets


def ipv6_benign():
    clock = Clock(step=0.01)
    client, server, resolver = "2001:db8:1::50", "2001:db8:ffff::80", "2001:db8:ffff::53"
    packets = []
    query = (
        Ether(src=MAC_A, dst=MAC_B)
        / IPv6(src=client, dst=resolver)
        / UDP(sport=53000, dport=53)
        / DNS(id=7, rd=1, qd=DNSQR(qname="www.example.org", qtype="AAAA"))
    )
    packets.append(clock.stamp(query))
    answer = (
        Ether(src=MAC_B, dst=MAC_A)
        / IPv6(src=resolver, dst=client)
        / UDP(sport=53, dport=53000)
        / DNS(id=7, qr=1, rd=1, ra=1, qd=DNSQR(qname="www.example.org", qtype="AAAA"))
    )
    packets.append(clock.stamp(answer))
    page = b"GET /index.html HTTP/1.1\r\nHost: www.example.org\r\nUser-Agent: Mozilla/5.0\r\nAccept: text/html\r\n\r\n"
    reply = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 25\r\n\r\n<html><p>hello</p></html>"
    packets += tcp_session(clock, client, server, 50123, 80, [(page, reply)])
    for n in range(1, 5):
        data = bytes(range(32, 88))
        packets.append(
            clock.stamp(
                Ether(src=MAC_A, dst=MAC_B) / IPv6(src=client, dst=server) / ICMPv6EchoRequest(id=1, seq=n, data=data),
                1.0,
            )
        )
        packets.append(
            clock.stamp(
                Ether(src=MAC_B, dst=MAC_A) / IPv6(src=server, dst=client) / ICMPv6EchoReply(id=1, seq=n, data=data)
            )
        )
    return packets


CAPTURES = {
    "browser_portsweep.pcap": browser_portsweep,
    "reverse_shell_cmd_banner.pcap": reverse_shell,
    "ipv6_syn_scan.pcap": ipv6_syn_scan,
    "ipv6_web_traversal.pcap": ipv6_web_traversal,
    "ipv6_icmp_sweep.pcap": ipv6_icmp_sweep,
    "ipv6_benign.pcap": ipv6_benign,
}

if __name__ == "__main__":
    for name, make in CAPTURES.items():
        wrpcap(name, make())
        print(name)
