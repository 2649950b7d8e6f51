"""TZSP codec: published vectors, scapy as an independent encoder/decoder, property tests."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.contrib import tzsp as sz
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from tzsp import codec
from tzsp.codec import Datagram, Tag

VECTORS = Path(__file__).parent / "data" / "tzsp_hex_vectors.tsv"


def load_vectors() -> dict:
    vectors = {}
    for line in VECTORS.read_text().splitlines():
        if line and not line.startswith("#"):
            name, hexdata, _notes = line.split("\t")
            vectors[name] = bytes.fromhex(hexdata)
    return vectors


# Expected results worked out by hand from each vector's notes in the TSV:
# (type, encapsulation, tags, frame hex) or the error class.
EXPECTED = {
    "sip3_PACKET_1": (0, 1, (), "4b000825201ae00800"),
    "sip3_PACKET_2": (0, 1, ((2, "5e00014b02"),), "00005e00014b000825201ae0810001550800"),
    "promptzero_rx_80211_tags": (
        0,
        0x12,
        ((10, "d6"), (11, "28"), (12, "6c"), (18, "06"), (17, "01")),
        "66778899aabb0011223344550800",
    ),
    "promptzero_keepalive": (4, 1, (), ""),
    "promptzero_short_rssi": (0, 0x12, ((10, "ffd6"),), ""),
    "promptzero_reject_02000012": codec.BadVersion,
    "promptzero_reject_0100": codec.ShortDatagram,
    "rs_tzsp_real_frame": (
        0,
        1,
        (),
        "d4ca6d1d36fff4f5d8a67e04080045000034fa0c400040069b890a000025d83ac2ce8e2501bb82b2c18d"
        "59f3785e801001ef6ccd00000101080a00577b51ac319486",
    ),
    "rs_tzsp_valid_packet": (0, 1, ((10, "02"),), "010203"),
    "rs_tzsp_truncated_header": codec.ShortDatagram,
    "rs_tzsp_invalid_version": codec.BadVersion,
    # rs/tzsp rejects type 1; TZSP.md §3 says accept TX (RSniffer sends received frames as 1).
    "rs_tzsp_unsupported_packet_type": (1, 1, (), "010203"),
    "rs_tzsp_truncated_tag": codec.TagOverrun,
    "rs_tzsp_truncated_tag_length": codec.TagOverrun,
    "rs_tzsp_missing_end_tag": codec.MissingEnd,
}


def test_every_vector_has_an_expectation():
    assert set(load_vectors()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_published_vector(name):
    data = load_vectors()[name]
    expected = EXPECTED[name]
    if isinstance(expected, type):
        with pytest.raises(expected) as info:
            codec.decode(data)
        assert isinstance(info.value, codec.TzspError)
        assert info.value.reason == expected.reason
        return
    kind, encapsulation, tags, frame_hex = expected
    datagram = codec.decode(data)
    assert datagram.version == 1
    assert datagram.type == kind
    assert datagram.encapsulation == encapsulation
    assert datagram.tags == tuple(Tag(n, bytes.fromhex(v)) for n, v in tags)
    assert datagram.frame == bytes.fromhex(frame_hex)
    assert datagram.carries_frame == (kind in (0, 1))


def test_real_routeros_frame_is_the_fast_header_and_a_tcp_ack():
    data = load_vectors()["rs_tzsp_real_frame"]
    assert data.startswith(codec.FAST_HEADER)
    frame = codec.decode(data).frame
    assert len(frame) == 66
    packet = Ether(frame)
    assert packet.dst == "d4:ca:6d:1d:36:ff"  # MikroTik OUI
    assert packet[IP].src == "10.0.0.37" and packet[IP].dst == "216.58.194.206"
    assert packet[TCP].sport == 36389 and packet[TCP].dport == 443 and packet[TCP].flags == "A"
    assert codec.encode_frame(frame) == data


@pytest.mark.parametrize(
    "hexdata, error, words",
    [
        ("010000010a01", codec.TagOverrun, "tag 10 at offset 4 claims 1 bytes but only 0 remain"),
        ("01000001294102", codec.TagOverrun, "tag 41 at offset 4 claims 65 bytes but only 1 remain"),
        ("0100000102", codec.TagOverrun, "tag 2 at offset 4 has no length byte"),
        ("0100000100000a0100", codec.MissingEnd, "no END tag"),
        ("0107000101", codec.UnknownType, "packet type 7"),
        ("02000001", codec.BadVersion, "version 2"),
        ("", codec.ShortDatagram, "0 bytes"),
    ],
)
def test_errors_say_why(hexdata, error, words):
    with pytest.raises(error, match=words):
        codec.decode(bytes.fromhex(hexdata))


def test_error_reasons_are_distinct_counter_labels():
    classes = [codec.ShortDatagram, codec.BadVersion, codec.UnknownType, codec.TagOverrun, codec.MissingEnd]
    assert [c.reason for c in classes] == ["short", "bad-version", "unknown-type", "tag-overrun", "no-end"]
    assert all(issubclass(c, codec.TzspError) and issubclass(c, ValueError) for c in classes)


def test_non_frame_types_are_returned_for_counting():
    for kind in (codec.RESERVED, codec.CONFIG):
        datagram = codec.decode(bytes([1, kind, 0, 1, 0x28, 4, 0, 0, 0, 9, 1]))
        assert datagram.type == kind and not datagram.carries_frame
        assert datagram.packet_id == 9 and datagram.frame == b""
    for kind in (codec.KEEPALIVE, codec.PORT_OPENER):
        # Tags and payload after a keepalive/port-opener header are ignored, as Wireshark does.
        datagram = codec.decode(bytes([1, kind, 0, 0, 0x0A, 0xFF]))
        assert datagram == Datagram(1, kind, 0, (), b"")
        assert codec.encode(datagram) == bytes([1, kind, 0, 0])


def test_padding_is_skipped_and_not_kept():
    datagram = codec.decode(bytes.fromhex("01000001000a01d6000001aabb"))
    assert datagram.tags == (Tag(10, b"\xd6"),)
    assert datagram.frame == b"\xaa\xbb"


def test_tag_accessors():
    tags = (
        Tag(codec.TAG_PACKET_ID, (123456).to_bytes(4, "big")),
        Tag(codec.TAG_ORIGINAL_LENGTH, (1514).to_bytes(2, "big")),
        Tag(codec.TAG_TIME_STAMP, struct.pack("!II", 1_700_000_000, 123_456_789)),
    )
    datagram = codec.decode(codec.encode_frame(b"x" * 60, tags=tags))
    assert datagram.packet_id == 123456
    assert datagram.original_length == 1514
    assert datagram.capture_time_ns == 1_700_000_000_123_456_789
    assert datagram.tag(codec.TAG_PACKET_ID) == tags[0]
    assert datagram.tag(codec.TAG_INFO) is None
    bare = codec.decode(codec.FAST_HEADER + b"x")
    assert (bare.packet_id, bare.original_length, bare.capture_time_ns) == (None, None, None)


@pytest.mark.parametrize(
    "value",
    [b"", b"\x00" * 4, b"\x00" * 12, struct.pack("!II", 5, 1_000_000_000)],
)
def test_malformed_time_stamp_tag_is_ignored(value):
    datagram = codec.decode(codec.encode_frame(b"f", tags=[Tag(codec.TAG_TIME_STAMP, value)]))
    assert datagram.capture_time_ns is None


def test_frame_from_datagram_prefers_tag_82_and_tag_41():
    stamped = codec.decode(
        codec.encode_frame(
            b"y" * 100,
            tags=[
                Tag(codec.TAG_TIME_STAMP, struct.pack("!II", 1_600_000_000, 42)),
                Tag(codec.TAG_ORIGINAL_LENGTH, (1514).to_bytes(2, "big")),
            ],
        )
    )
    frame = codec.frame_from_datagram(stamped, received_ns=5)
    assert frame == codec.Frame(1, b"y" * 100, 1_600_000_000_000_000_042, 1514)

    plain = codec.decode(codec.FAST_HEADER + b"z" * 64)
    assert codec.frame_from_datagram(plain, received_ns=77) == codec.Frame(1, b"z" * 64, 77, 64)

    # A tag 41 smaller than what arrived never shrinks orig_len below incl_len.
    short = codec.decode(codec.encode_frame(b"w" * 64, tags=[Tag(41, (10).to_bytes(2, "big"))]))
    assert codec.frame_from_datagram(short, 1).orig_len == 64


def test_frame_from_datagram_refuses_keepalive():
    with pytest.raises(ValueError, match="keepalive"):
        codec.frame_from_datagram(codec.decode(b"\x01\x04\x00\x00"), 0)


def test_encode_frame_fast_path_matches_general_path():
    frame = bytes(range(60))
    assert codec.encode_frame(frame) == codec.FAST_HEADER + frame
    general = codec.encode(Datagram(1, codec.RX_PACKET, 1, (), frame))
    assert general == codec.encode_frame(frame)
    assert codec.encode_frame(frame, 18)[:5] == b"\x01\x00\x00\x12\x01"
    assert codec.encode_frame(frame, type=codec.TX_PACKET)[:5] == b"\x01\x01\x00\x01\x01"


@pytest.mark.parametrize(
    "datagram",
    [
        Datagram(2, 0, 1, (), b""),
        Datagram(1, 6, 1, (), b""),
        Datagram(1, 0, 70000, (), b""),
        Datagram(1, 0, 1, (Tag(1, b""),), b""),
        Datagram(1, 0, 1, (Tag(0, b""),), b""),
        Datagram(1, 0, 1, (Tag(256, b""),), b""),
        Datagram(1, 0, 1, (Tag(10, b"x" * 256),), b""),
        Datagram(1, codec.KEEPALIVE, 1, (), b"payload"),
    ],
)
def test_encode_refuses_what_cannot_be_sent(datagram):
    with pytest.raises(ValueError):
        codec.encode(datagram)


# ---- scapy as an independent implementation ---------------------------------------------------

INNER = Ether(dst="d4:ca:6d:00:00:01", src="02:00:00:00:00:02") / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(dport=80)

# One case per tag in TZSP.md §5: (scapy tag layer, our tag number, expected value bytes).
SCAPY_TAGS = [
    (sz.TZSPTagRawRSSIByte(raw_rssi=0xD6), 10, b"\xd6"),
    (sz.TZSPTagRawRSSIShort(raw_rssi=0xFFD6), 10, b"\xff\xd6"),
    (sz.TZSPTagSNRByte(snr=40), 11, b"\x28"),
    (sz.TZSPTagSNRShort(snr=0x0102), 11, b"\x01\x02"),
    (sz.TZSPTagDataRate(data_rate=0x6C), 12, b"\x6c"),
    (sz.TZSPTagTimestamp(timestamp=0x01020304), 13, b"\x01\x02\x03\x04"),
    (sz.TZSPTagUnknown(type=14, data=b"\x04"), 14, b"\x04"),
    (sz.TZSPTagContentionFree(contention_free=1), 15, b"\x01"),
    (sz.TZSPTagDecrypted(decrypted=1), 16, b"\x01"),
    (sz.TZSPTagError(fcs_error=1), 17, b"\x01"),
    (sz.TZSPTagRXChannel(rx_channel=6), 18, b"\x06"),
    (sz.TZSPTagUnknown(type=30, data=b"sta-stats"), 30, b"sta-stats"),
    (sz.TZSPTagUnknown(type=31, data=b"pkt-stats"), 31, b"pkt-stats"),
    (sz.TZSPTagPacketCount(packet_count=0xDEADBEEF), 40, b"\xde\xad\xbe\xef"),
    (sz.TZSPTagRXFrameLength(rx_frame_length=1514), 41, b"\x05\xea"),
    (sz.TZSPTagWlanRadioHdrSerial(sensor_id=b"sensor-01"), 60, b"sensor-01"),
    (sz.TZSPTagUnknown(type=80, data=b"MikroTik"), 80, b"MikroTik"),
    (sz.TZSPTagUnknown(type=81, data=b"rack 3"), 81, b"rack 3"),
    (sz.TZSPTagUnknown(type=82, data=struct.pack("!II", 1_700_000_000, 5)), 82, struct.pack("!II", 1_700_000_000, 5)),
    (sz.TZSPTagUnknown(type=83, data=b"info"), 83, b"info"),
    (sz.TZSPTagUnknown(type=84, data=b"\x00\x00\x00\x07"), 84, b"\x00\x00\x00\x07"),
    (sz.TZSPTagUnknown(type=200, data=b"vendor"), 200, b"vendor"),
]


@pytest.mark.parametrize("scapy_tag, number, value", SCAPY_TAGS, ids=lambda v: str(v) if isinstance(v, int) else None)
def test_scapy_built_tag_decodes(scapy_tag, number, value):
    wire = bytes(sz.TZSP(encapsulated_protocol=1) / sz.TZSPTagPadding() / scapy_tag / sz.TZSPTagEnd() / INNER)
    datagram = codec.decode(wire)
    assert datagram.tags == (Tag(number, value),)
    assert datagram.frame == bytes(INNER)
    # and our encoder produces the bytes scapy does (minus the PAD we dropped)
    assert codec.encode(datagram) == wire[:4] + wire[5:]


@pytest.mark.parametrize("scapy_tag, number, value", SCAPY_TAGS, ids=lambda v: str(v) if isinstance(v, int) else None)
def test_scapy_parses_what_we_encode(scapy_tag, number, value):
    wire = codec.encode_frame(bytes(INNER), 1, [Tag(number, value)])
    parsed = sz.TZSP(wire)
    layer = parsed.getlayer(type(scapy_tag))
    assert layer is not None, parsed.show(dump=True)
    assert bytes(layer)[: 2 + len(value)] == bytes([number, len(value)]) + value
    assert parsed.get_encapsulated_payload()[Ether].dst == "d4:ca:6d:00:00:01"


def test_scapy_keepalive_and_80211():
    assert codec.decode(bytes(sz.TZSP(type=sz.TZSP.TYPE_KEEPALIVE, encapsulated_protocol=0))).type == codec.KEEPALIVE
    wire = bytes(
        sz.TZSP(encapsulated_protocol=0x12) / sz.TZSPTagRXChannel(rx_channel=11) / sz.TZSPTagEnd() / Raw(b"\x80\x00")
    )
    datagram = codec.decode(wire)
    assert (datagram.encapsulation, datagram.tags, datagram.frame) == (18, (Tag(18, b"\x0b"),), b"\x80\x00")


def test_tag_accessors_agree_with_scapy_fields():
    wire = bytes(
        sz.TZSP()
        / sz.TZSPTagPacketCount(packet_count=31337)
        / sz.TZSPTagRXFrameLength(rx_frame_length=9000)
        / sz.TZSPTagEnd()
        / INNER
    )
    datagram = codec.decode(wire)
    assert datagram.packet_id == sz.TZSP(wire)[sz.TZSPTagPacketCount].packet_count == 31337
    assert datagram.original_length == sz.TZSP(wire)[sz.TZSPTagRXFrameLength].rx_frame_length == 9000


# ---- properties -------------------------------------------------------------------------------

tags = st.lists(st.builds(Tag, st.integers(2, 255), st.binary(max_size=255)), max_size=6).map(tuple)
frame_datagrams = st.builds(
    Datagram, st.just(1), st.integers(0, 3), st.integers(0, 0xFFFF), tags, st.binary(max_size=300)
)
tagless_datagrams = st.builds(
    Datagram, st.just(1), st.sampled_from([4, 5]), st.integers(0, 0xFFFF), st.just(()), st.just(b"")
)


@given(st.one_of(frame_datagrams, tagless_datagrams))
def test_encode_then_decode_round_trips(datagram):
    assert codec.decode(codec.encode(datagram)) == datagram


@given(st.binary(max_size=64), st.integers(0, 0xFFFF), tags)
def test_encode_frame_keeps_the_frame(frame, encapsulation, frame_tags):
    datagram = codec.decode(codec.encode_frame(frame, encapsulation, frame_tags))
    assert (datagram.frame, datagram.encapsulation, datagram.tags) == (frame, encapsulation, frame_tags)


def _decode_or_error(data: bytes):
    try:
        return codec.decode(data)
    except codec.TzspError as exc:
        assert exc.reason in {"short", "bad-version", "unknown-type", "tag-overrun", "no-end"}
        assert str(exc)
        return exc


@settings(max_examples=400)
@given(st.binary(max_size=80))
def test_random_bytes_give_a_datagram_or_a_tzsp_error(data):
    result = _decode_or_error(data)
    if isinstance(result, Datagram):
        assert codec.decode(codec.encode(result)) == result  # decode normalises (PAD dropped)


@settings(max_examples=400)
@given(st.sampled_from([b"\x01\x00\x00\x01", b"\x01\x01\x00\x12", b"\x01\x03\x00\x00"]), st.binary(max_size=60))
def test_random_tag_lists_give_a_datagram_or_a_tzsp_error(header, rest):
    # A valid header, so the fuzzing reaches the tag walker.
    _decode_or_error(header + rest)
