"""TZSP encapsulation numbers versus pcap LINKTYPE numbers.

The two numbering spaces only coincide for 1 (Ethernet) and 119 (Prism): TZSP 126 (radiotap)
is LINKTYPE 127, and TZSP 127 (AVS) is LINKTYPE 163. Never copy one into the other.
LINKTYPE values are the ones written in files (libpcap pcap-common.c), not DLT_* values.
"""

from __future__ import annotations

# TZSP encapsulation values (Wireshark packet-tzsp.c, current list).
ENCAP_ETHERNET = 1
ENCAP_TOKEN_RING = 2
ENCAP_SLIP = 3
ENCAP_PPP = 4
ENCAP_FDDI = 5
ENCAP_RAW = 7
ENCAP_IEEE_802_11 = 18
ENCAP_IEEE_802_11_PRISM = 119
ENCAP_IEEE_802_11_RADIOTAP = 126
ENCAP_IEEE_802_11_AVS = 127

ENCAPSULATION_BY_NAME = {
    "ethernet": ENCAP_ETHERNET,
    "token_ring": ENCAP_TOKEN_RING,
    "slip": ENCAP_SLIP,
    "ppp": ENCAP_PPP,
    "fddi": ENCAP_FDDI,
    "raw": ENCAP_RAW,
    "ieee802_11": ENCAP_IEEE_802_11,
    "prism": ENCAP_IEEE_802_11_PRISM,
    "radiotap": ENCAP_IEEE_802_11_RADIOTAP,
    "avs": ENCAP_IEEE_802_11_AVS,
}

# LINKTYPE values as written in pcap/pcapng files.
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_IEEE802_5 = 6
LINKTYPE_PPP = 9
LINKTYPE_FDDI = 10
LINKTYPE_DLT_RAW_12 = 12  # DLT_RAW leaking into files written on some systems
LINKTYPE_DLT_RAW_14 = 14  # DLT_RAW on OpenBSD
LINKTYPE_PPP_HDLC = 50
LINKTYPE_RAW = 101
LINKTYPE_IEEE802_11 = 105
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IEEE802_11_PRISM = 119
LINKTYPE_IEEE802_11_RADIOTAP = 127
LINKTYPE_IEEE802_11_AVS = 163
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229

# Canonical names first: linktype_name() returns the first name listed for a number.
LINKTYPE_BY_NAME = {
    "ethernet": LINKTYPE_ETHERNET,
    "token_ring": LINKTYPE_IEEE802_5,
    "ppp": LINKTYPE_PPP_HDLC,
    "fddi": LINKTYPE_FDDI,
    "raw": LINKTYPE_RAW,
    "ipv4": LINKTYPE_IPV4,
    "ipv6": LINKTYPE_IPV6,
    "ieee802_11": LINKTYPE_IEEE802_11,
    "prism": LINKTYPE_IEEE802_11_PRISM,
    "radiotap": LINKTYPE_IEEE802_11_RADIOTAP,
    "avs": LINKTYPE_IEEE802_11_AVS,
    # aliases people type
    "en10mb": LINKTYPE_ETHERNET,
    "ppp_hdlc": LINKTYPE_PPP_HDLC,
    "wlan": LINKTYPE_IEEE802_11,
}

_LINKTYPE_BY_ENCAPSULATION = {
    ENCAP_ETHERNET: LINKTYPE_ETHERNET,
    ENCAP_TOKEN_RING: LINKTYPE_IEEE802_5,
    ENCAP_PPP: LINKTYPE_PPP_HDLC,
    ENCAP_FDDI: LINKTYPE_FDDI,
    ENCAP_RAW: LINKTYPE_RAW,
    ENCAP_IEEE_802_11: LINKTYPE_IEEE802_11,
    ENCAP_IEEE_802_11_PRISM: LINKTYPE_IEEE802_11_PRISM,
    ENCAP_IEEE_802_11_RADIOTAP: LINKTYPE_IEEE802_11_RADIOTAP,
    ENCAP_IEEE_802_11_AVS: LINKTYPE_IEEE802_11_AVS,
}

_ENCAPSULATION_BY_LINKTYPE = {
    LINKTYPE_ETHERNET: ENCAP_ETHERNET,
    LINKTYPE_RAW: ENCAP_RAW,
    LINKTYPE_IPV4: ENCAP_RAW,
    LINKTYPE_IPV6: ENCAP_RAW,
    LINKTYPE_DLT_RAW_12: ENCAP_RAW,
    LINKTYPE_DLT_RAW_14: ENCAP_RAW,
    LINKTYPE_PPP_HDLC: ENCAP_PPP,
    LINKTYPE_PPP: ENCAP_PPP,
    LINKTYPE_IEEE802_11: ENCAP_IEEE_802_11,
    LINKTYPE_IEEE802_11_PRISM: ENCAP_IEEE_802_11_PRISM,
    LINKTYPE_IEEE802_11_RADIOTAP: ENCAP_IEEE_802_11_RADIOTAP,
    LINKTYPE_IEEE802_11_AVS: ENCAP_IEEE_802_11_AVS,
    LINKTYPE_IEEE802_5: ENCAP_TOKEN_RING,
    LINKTYPE_FDDI: ENCAP_FDDI,
}

_IP_VERSIONS = (4, 6)


def linktype_for(encapsulation: int, frame: bytes = b"") -> int | None:
    """The LINKTYPE to write for a TZSP encapsulation, or None when the frame cannot go in a pcap.

    SLIP (3) has no usable pcap form (LINKTYPE_SLIP needs a pseudo-header TZSP lacks), so it is
    written as raw IP only when the frame visibly starts with an IPv4/IPv6 header.
    """
    if encapsulation == ENCAP_SLIP:
        if frame and frame[0] >> 4 in _IP_VERSIONS:
            return LINKTYPE_RAW
        return None
    return _LINKTYPE_BY_ENCAPSULATION.get(encapsulation)


def encapsulation_for_linktype(linktype: int) -> int | None:
    """The TZSP encapsulation that carries frames of a capture file's link type (for replay)."""
    return _ENCAPSULATION_BY_LINKTYPE.get(linktype)


def _parse_name(text: str, table: dict, what: str) -> int:
    key = text.strip().lower().replace("-", "_")
    if key in table:
        return table[key]
    try:
        number = int(key, 0)
    except ValueError:
        number = -1
    if 0 <= number <= 0xFFFF:
        return number
    raise ValueError(f"unknown {what} {text!r}: use a number 0-65535 or one of {', '.join(table)}")


def parse_linktype(text: str) -> int:
    """A LINKTYPE from a name in LINKTYPE_BY_NAME (case-insensitive) or a number."""
    return _parse_name(text, LINKTYPE_BY_NAME, "link type")


def parse_encapsulation(text: str) -> int:
    """A TZSP encapsulation from a name in ENCAPSULATION_BY_NAME or a number."""
    return _parse_name(text, ENCAPSULATION_BY_NAME, "encapsulation")


def linktype_name(linktype: int) -> str:
    for name, value in LINKTYPE_BY_NAME.items():
        if value == linktype:
            return name
    return f"linktype-{linktype}"
