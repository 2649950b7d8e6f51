"""The RouterOS API wire format (responder/sim/wire/api_protocol.py), pure: no sockets.

Length forms are checked at every boundary against the byte layout of ROUTEROS.md section 5,
and against librouteros's own encoder (an independent implementation) where both apply.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from librouteros.protocol import encode_length as librouteros_length

from responder.sim.wire.api_protocol import (
    ApiProtocolError,
    SentenceDecoder,
    compile_query,
    decode_length,
    encode_length,
    encode_sentence,
    encode_word,
    parse_reply,
    parse_request,
    reply_words,
)

# (length, exact bytes) at both sides of every form boundary
LENGTHS = [
    (0, b"\x00"),
    (1, b"\x01"),
    (0x7F, b"\x7f"),
    (0x80, b"\x80\x80"),
    (0x3FFF, b"\xbf\xff"),
    (0x4000, b"\xc0\x40\x00"),
    (0x1FFFFF, b"\xdf\xff\xff"),
    (0x200000, b"\xe0\x20\x00\x00"),
    (0xFFFFFFF, b"\xef\xff\xff\xff"),
    (0x10000000, b"\xf0\x10\x00\x00\x00"),
    (0xFFFFFFFF, b"\xf0\xff\xff\xff\xff"),
]


@pytest.mark.parametrize("length,encoded", LENGTHS)
def test_every_length_form_encodes_and_decodes_at_its_boundaries(length, encoded):
    assert encode_length(length) == encoded
    assert decode_length(encoded) == (length, len(encoded))
    assert decode_length(b"junk" + encoded + b"tail", 4) == (length, 4 + len(encoded))
    if length < 0x10000000:  # librouteros stops at the 4-byte form
        assert librouteros_length(length) == encoded


@pytest.mark.parametrize("length,encoded", LENGTHS)
def test_a_prefix_cut_short_is_incomplete_not_wrong(length, encoded):
    for cut in range(len(encoded)):
        assert decode_length(encoded[:cut]) is None


@pytest.mark.parametrize("bad", [-1, 0x100000000, True, 1.0, "3"])
def test_impossible_lengths_are_refused(bad):
    with pytest.raises(ApiProtocolError):
        encode_length(bad)


@pytest.mark.parametrize("first", [0xF1, 0xF7, 0xF8, 0xFF])
def test_reserved_control_bytes_are_refused_with_a_clear_error(first):
    with pytest.raises(ApiProtocolError, match="control byte"):
        decode_length(bytes([first, 0, 0, 0, 0]))
    decoder = SentenceDecoder()
    with pytest.raises(ApiProtocolError):
        decoder.feed(encode_word("/login") + bytes([first]))
    with pytest.raises(ApiProtocolError):  # and the stream stays refused: its framing is lost
        decoder.feed(b"\x00")


def test_sentence_framing_matches_the_documented_bytes():
    assert encode_sentence(["/login", "=name=a"]) == b"\x06/login\x07=name=a\x00"
    assert encode_word("é") == b"\x02\xc3\xa9"
    assert encode_word(b"x" * 200)[:2] == b"\x80\xc8"
    with pytest.raises(ApiProtocolError):
        encode_sentence(["/login", ""])  # would end the sentence early
    with pytest.raises(TypeError):
        encode_word(7)


def test_a_word_over_the_limit_is_refused_before_it_is_buffered():
    decoder = SentenceDecoder(max_word=1000)
    with pytest.raises(ApiProtocolError, match="longer than the limit"):
        decoder.feed(encode_length(5000))
    assert SentenceDecoder(max_word=1000).feed(encode_sentence([b"x" * 1000])) == [(b"x" * 1000,)]


# short random words, and long ones (built, not drawn byte by byte) across the 2-to-3-byte boundary
long_words = st.builds(lambda n, fill: bytes([fill]) * n, st.integers(0x3FF0, 0x4010), st.integers(0, 255))
words = st.lists(st.binary(min_size=1, max_size=300) | long_words, max_size=5)
sentences = st.lists(words, min_size=1, max_size=5)


@settings(max_examples=60, deadline=None)
@given(sentences, st.data())
def test_any_sentences_survive_any_chunking(sentence_list, data):
    stream = b"".join(encode_sentence(s) for s in sentence_list)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    decoder = SentenceDecoder()
    got = []
    previous = 0
    for cut in cuts + [len(stream)]:
        got.extend(decoder.feed(stream[previous:cut]))
        previous = cut
    assert got == [tuple(s) for s in sentence_list]
    assert decoder.pending == 0


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 0xFFFFFFFF))
def test_length_round_trip(length):
    encoded = encode_length(length)
    assert decode_length(encoded) == (length, len(encoded))


def test_byte_at_a_time_gives_each_sentence_exactly_when_it_ends():
    stream = encode_sentence(["/ip/firewall/address-list/print", "?list=x"]) + encode_sentence(["/quit"])
    decoder = SentenceDecoder()
    completed_at = []
    for i in range(len(stream)):
        for sentence in decoder.feed(stream[i : i + 1]):
            completed_at.append((i, sentence))
    first_end = len(encode_sentence(["/ip/firewall/address-list/print", "?list=x"])) - 1
    assert completed_at == [
        (first_end, (b"/ip/firewall/address-list/print", b"?list=x")),
        (len(stream) - 1, (b"/quit",)),
    ]
    assert decoder.feed(b"\x00") == [()]  # an empty sentence is a sentence (the server ignores it)


def test_request_words_are_taken_apart():
    request = parse_request(
        [
            "/ip/firewall/address-list/set",
            "=.id=*1",
            "=comment=a=b",
            ".tag=7",
            "=.proplist=address,timeout",
            "?list=x",
            "?#|",
        ]
    )
    assert request.command == "/ip/firewall/address-list/set"
    assert request.attributes == {".id": "*1", "comment": "a=b", ".proplist": "address,timeout"}
    assert request.tag == "7" and request.proplist == ["address", "timeout"]
    assert request.queries == ("?list=x", "?#|")
    for bad in (["/x", "plain"], ["/x", "=novalue"], ["/x", ".tag"], []):
        with pytest.raises(ApiProtocolError):
            parse_request(bad)


def test_replies_carry_the_tag_and_read_back():
    words = reply_words("!trap", {"category": "2", "message": "interrupted"}, tag="5")
    assert words == ["!trap", "=category=2", "=message=interrupted", ".tag=5"]
    assert parse_reply(words) == ("!trap", {"category": "2", "message": "interrupted"}, "5")
    assert parse_reply(["!fatal", "not logged in"]) == ("!fatal", {"message": "not logged in"}, None)


ROWS = [
    {"list": "a", "address": "1.1.1.1", "timeout": "5m", "n": "9"},
    {"list": "a", "address": "2.2.2.2", "n": "10"},
    {"list": "b", "address": "1.1.1.1", "comment": "x"},
]


@pytest.mark.parametrize(
    "query,expected",
    [
        ([], [0, 1, 2]),
        (["?list=a"], [0, 1]),
        (["?=list=a", "?address=2.2.2.2"], [1]),  # several values: all must hold
        (["?address=1.1.1.1", "?address=2.2.2.2", "?#|"], [0, 1, 2]),
        (["?list=a", "?address=1.1.1.1", "?#&!"], [1, 2]),
        (["?timeout"], [0]),
        (["?-timeout"], [1, 2]),
        (["?>n=9"], [1]),  # numbers compare as numbers: 10 > 9
        (["?<n=10"], [0]),
        (["?list=b", "?#.|"], [2]),
        (["?list=a", "?comment", "?#1|"], [0, 1]),  # 1: copy of the value below the top, then or
    ],
)
def test_queries_select_like_routeros(query, expected):
    predicate = compile_query(query)
    assert [i for i, row in enumerate(ROWS) if predicate(row)] == expected


@pytest.mark.parametrize("query", [["?#|"], ["?a=1", "?#&"], ["?a=1", "?#x"], ["?=x"], ["?<a"], ["?="]])
def test_malformed_queries_fail_when_compiled_not_per_row(query):
    with pytest.raises(ApiProtocolError):
        compile_query(query)
