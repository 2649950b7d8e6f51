"""Sweeps of one port across many hosts: a client's traffic, or a scan to block.

Snort's port scan detectors (gid 122) raise a "portsweep" when one host reaches many hosts on one
port. A browser loading a news site whose third-party hosts do not answer does exactly that (one
client, dozens of web servers, port 80, most SYNs unanswered: 122:7 "TCP filtered portsweep" with
both engines), and so do a mail server delivering to many domains and a monitoring probe. Blocking
them cuts off a client for doing its job, so by default a one-port sweep is a scan to block only when
it reaches into the protected networks (an outside host sweeping yours). ICMP sweeps, scans of many
ports and the built-in detector's events are scans whoever sends them.

Pure: no state, no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from bridge.events import Alert, IPAddress

# gid-122 sids of one-port sweeps (same numbers in Snort 2's sfportscan and Snort 3's port_scan).
ONE_PORT_SWEEPS = {
    3: "TCP portsweep",
    7: "TCP filtered portsweep",
    11: "IP protocol sweep",
    15: "IP filtered protocol sweep",
    19: "UDP portsweep",
    23: "UDP filtered portsweep",
}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def one_port_sweep(alert: Alert) -> str | None:
    """The kind of sweep ``alert`` reports, or None when it is not a one-port sweep."""
    if not alert.is_portscan or alert.format in ("scan-detector", "routeros-log") or alert.engine == "tzsp-ips":
        return None
    return ONE_PORT_SWEEPS.get(alert.sid)


def client_sweep(alert: Alert, swept: IPAddress | None, protected: Iterable[Network]) -> str | None:
    """Why ``alert`` reads as a client's sweep (not blocked by default), or None when it is a scan.

    ``swept`` is the end that is not the sweeper (a host it reached); ``protected`` the networks that
    are yours (policy.protected). A sweep that reaches into them is an outside host sweeping yours.
    A port-scan event of Snort's towards a broadcast or multicast address is a discovery protocol
    (NetBIOS name service, SSDP, mDNS, LAN sync), not a scan of a host.
    """
    if discovery_target(alert, swept):
        return (
            f"a port-scan event towards {swept}, a broadcast or multicast address, is a discovery protocol's "
            "traffic (NetBIOS, SSDP, mDNS), not a scan of a host; policy.block_client_sweeps = true blocks it"
        )
    kind = one_port_sweep(alert)
    if kind is None or swept is None:
        return None
    for network in protected:
        if swept.version == network.version and swept in network:
            return None
    port = f" (port {alert.dport})" if alert.dport else ""
    return (
        f"a {kind}{port} towards hosts outside policy.protected ({swept}) reads as a client's traffic "
        "(a browser, a mail server, a monitoring probe), not a scan of your networks; "
        "policy.block_client_sweeps = true blocks it"
    )


def discovery_target(alert: Alert, target: IPAddress | None) -> bool:
    """A Snort gid-122 event whose other end is multicast, 255.255.255.255 or an IPv4 x.x.x.255 (the
    broadcast address of the /24 and longer subnets LANs use)."""
    if target is None or not alert.is_portscan or not _snort_scan(alert):
        return False
    if target.is_multicast:
        return True
    return target.version == 4 and target.packed[-1] == 255


def _snort_scan(alert: Alert) -> bool:
    return alert.format not in ("scan-detector", "routeros-log") and alert.engine != "tzsp-ips"
