"""The demo's capture: a small office network (benign DNS, web and ping) with an internet port
scanner and a compromised host inside the protected LAN, as scapy packets; and its addresses.
"""

from __future__ import annotations

import time

LAN = "10.10.0.0/16"
GATEWAY, CLIENT_A, CLIENT_B, RESOLVER, SERVER = "10.10.0.1", "10.10.0.21", "10.10.0.22", "10.10.0.53", "10.10.0.80"
WEBSITE, VISITOR = "198.51.100.20", "198.51.100.30"
SCANNER = "203.0.113.66"  # on the internet: must be blocked
INSIDER = "10.10.0.66"  # inside the protected LAN: seen, never blocked
BENIGN = (GATEWAY, CLIENT_A, CLIENT_B, RESOLVER, SERVER, WEBSITE, VISITOR)


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
