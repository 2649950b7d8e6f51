"""TZSP encapsulation -> pcap LINKTYPE (TZSP.md §6), and back for replay."""

from __future__ import annotations

import pytest

from tzsp import linktypes as lt

# TZSP.md §6, typed in from the table (values from libpcap pcap-common.c).
TABLE = {
    1: 1,  # Ethernet
    2: 6,  # Token Ring -> LINKTYPE_IEEE802_5
    4: 50,  # PPP in HDLC framing -> LINKTYPE_PPP_HDLC
    5: 10,  # FDDI
    7: 101,  # raw IP -> LINKTYPE_RAW (never DLT_RAW 12)
    18: 105,  # 802.11
    119: 119,  # Prism: same number by coincidence
    126: 127,  # radiotap: off by one
    127: 163,  # AVS: TZSP 127 is NOT LINKTYPE 127
}


@pytest.mark.parametrize("encapsulation, linktype", sorted(TABLE.items()))
def test_linktype_of_every_encapsulation(encapsulation, linktype):
    assert lt.linktype_for(encapsulation, b"\x45" + b"\x00" * 19) == linktype


@pytest.mark.parametrize("encapsulation", [0, 6, 8, 25, 30, 128, 254, 0xFFFF])
def test_unassigned_or_obsolete_encapsulations_have_no_linktype(encapsulation):
    assert lt.linktype_for(encapsulation, b"\x45\x00") is None


@pytest.mark.parametrize(
    "frame, linktype",
    [(b"\x45\x00\x00\x14", 101), (b"\x60\x00\x00\x00", 101), (b"\xc0\x21", None), (b"", None), (b"\x00", None)],
)
def test_slip_only_as_raw_ip_when_it_looks_like_ip(frame, linktype):
    assert lt.linktype_for(lt.ENCAP_SLIP, frame) == linktype


@pytest.mark.parametrize(
    "linktype, encapsulation",
    [
        (1, 1),
        (101, 7),
        (228, 7),
        (229, 7),
        (12, 7),
        (14, 7),
        (50, 4),
        (9, 4),
        (105, 18),
        (119, 119),
        (127, 126),
        (163, 127),
        (6, 2),
        (10, 5),
        (113, None),
        (0, None),
        (147, None),
    ],
)
def test_encapsulation_for_a_capture_linktype(linktype, encapsulation):
    assert lt.encapsulation_for_linktype(linktype) == encapsulation


@pytest.mark.parametrize("encapsulation", sorted(TABLE))
def test_replay_mapping_inverts_the_output_mapping(encapsulation):
    assert lt.encapsulation_for_linktype(lt.linktype_for(encapsulation)) == encapsulation


def test_encapsulation_names_map_into_the_table():
    named = set(lt.ENCAPSULATION_BY_NAME.values())
    assert named == set(TABLE) | {lt.ENCAP_SLIP}


@pytest.mark.parametrize(
    "text, linktype",
    [
        ("ethernet", 1),
        ("Ethernet", 1),
        ("EN10MB", 1),
        ("raw", 101),
        ("ppp", 50),
        ("radiotap", 127),
        ("avs", 163),
        ("ieee802-11", 105),
        ("prism", 119),
        ("token_ring", 6),
        ("fddi", 10),
        ("ipv6", 229),
        ("105", 105),
        ("0x7f", 127),
        (" 1 ", 1),
    ],
)
def test_parse_linktype(text, linktype):
    assert lt.parse_linktype(text) == linktype


@pytest.mark.parametrize("text", ["etherent", "", "-1", "65536", "1.5"])
def test_parse_linktype_errors_list_the_names(text):
    with pytest.raises(ValueError) as info:
        lt.parse_linktype(text)
    message = str(info.value)
    assert all(name in message for name in ("ethernet", "raw", "radiotap", "avs"))


def test_linktype_name_uses_canonical_names():
    assert [lt.linktype_name(n) for n in (1, 50, 101, 127, 163, 105)] == [
        "ethernet",
        "ppp",
        "raw",
        "radiotap",
        "avs",
        "ieee802_11",
    ]
    assert lt.linktype_name(4242) == "linktype-4242"
    for _name, number in lt.LINKTYPE_BY_NAME.items():
        assert lt.parse_linktype(lt.linktype_name(number)) == number


def test_parse_encapsulation():
    assert lt.parse_encapsulation("radiotap") == 126
    assert lt.parse_encapsulation("avs") == 127
    assert lt.parse_encapsulation("7") == 7
    with pytest.raises(ValueError, match="ieee802_11"):
        lt.parse_encapsulation("wifi")
