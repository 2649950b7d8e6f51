"""The RouterOS API wire format (ROUTEROS.md section 5), as pure functions over bytes.

A *word* is a length prefix and that many bytes; a *sentence* is words ended by an empty word
(one zero byte). The length prefix takes 1 to 5 bytes, big-endian:

    < 0x80        1 byte   len
    < 0x4000      2 bytes  len | 0x8000
    < 0x200000    3 bytes  len | 0xC00000
    < 0x10000000  4 bytes  len | 0xE0000000
    otherwise     5 bytes  0xF0, then len in 4 bytes

A first byte of 0xF8 or more is a control byte, reserved; 0xF1-0xF7 are not defined either.
Both are refused with ApiProtocolError, as is a word longer than the decoder's limit.

Also here: reading a command sentence into its parts (``Request``) and the ``?`` query language
of ``print`` (a small stack machine), both without I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

MAX_LENGTH = 0xFFFFFFFF  # what the 5-byte form can carry
DEFAULT_MAX_WORD = 16 * 1024 * 1024  # the simulator's own limit: a word this long is an attack, not a command

Word = bytes | str


class ApiProtocolError(ValueError):
    """Bytes that are not a valid API word or sentence (reserved control byte, oversize word...)."""


# ----------------------------------------------------------------------------- words and sentences


def encode_length(length: int) -> bytes:
    if isinstance(length, bool) or not isinstance(length, int) or not 0 <= length <= MAX_LENGTH:
        raise ApiProtocolError(f"a word length must be 0..{MAX_LENGTH}, got {length!r}")
    if length < 0x80:
        return bytes((length,))
    if length < 0x4000:
        return (length | 0x8000).to_bytes(2, "big")
    if length < 0x200000:
        return (length | 0xC00000).to_bytes(3, "big")
    if length < 0x10000000:
        return (length | 0xE0000000).to_bytes(4, "big")
    return b"\xf0" + length.to_bytes(4, "big")


def _prefix_size(first: int) -> int:
    """How many bytes the length prefix starting with ``first`` takes."""
    if first < 0x80:
        return 1
    if first < 0xC0:
        return 2
    if first < 0xE0:
        return 3
    if first < 0xF0:
        return 4
    if first == 0xF0:
        return 5
    raise ApiProtocolError(f"reserved control byte 0x{first:02X} where a word length was expected")


def decode_length(data: bytes, offset: int = 0) -> tuple[int, int] | None:
    """(length, offset after the prefix), or None if ``data`` ends inside the prefix."""
    if offset >= len(data):
        return None
    size = _prefix_size(data[offset])
    if offset + size > len(data):
        return None
    raw = int.from_bytes(data[offset : offset + size], "big")
    if size == 5:
        return raw & 0xFFFFFFFF, offset + 5
    mask = (1 << (8 * size - size)) - 1  # drop the size marker bits: 1, 2, 3 or 4 of them
    return raw & mask, offset + size


def _as_bytes(word: Word) -> bytes:
    if isinstance(word, str):
        return word.encode("utf-8")
    if isinstance(word, (bytes, bytearray)):
        return bytes(word)
    raise TypeError(f"an API word is str or bytes, got {type(word).__name__}")


def encode_word(word: Word) -> bytes:
    data = _as_bytes(word)
    return encode_length(len(data)) + data


def encode_sentence(words: Sequence[Word]) -> bytes:
    """The words, then the empty word. An empty word inside would end the sentence early: refused."""
    out = []
    for word in words:
        data = _as_bytes(word)
        if not data:
            raise ApiProtocolError("an empty word inside a sentence would end it")
        out.append(encode_length(len(data)) + data)
    out.append(b"\x00")
    return b"".join(out)


class SentenceDecoder:
    """Incremental: feed() any chunks of the stream, get back every sentence completed so far.

    After an ApiProtocolError the stream has no recoverable framing; the caller closes it.
    """

    def __init__(self, max_word: int = DEFAULT_MAX_WORD) -> None:
        self.max_word = max_word
        self._buffer = bytearray()
        self._words: list[bytes] = []
        self._broken: str | None = None
        self._need = 1  # buffered bytes needed before the next word can complete (no rescans meanwhile)

    @property
    def pending(self) -> int:
        """Bytes held that do not yet make a complete sentence."""
        return len(self._buffer) + sum(len(w) for w in self._words)

    def feed(self, data: bytes) -> list[tuple[bytes, ...]]:
        if self._broken:
            raise ApiProtocolError(self._broken)
        self._buffer += data
        sentences: list[tuple[bytes, ...]] = []
        if len(self._buffer) < self._need:
            return sentences
        offset = 0
        buffer = bytes(self._buffer)
        try:
            while True:
                decoded = decode_length(buffer, offset)
                if decoded is None:
                    self._need = len(buffer) - offset + 1
                    break
                length, start = decoded
                if length > self.max_word:
                    raise ApiProtocolError(f"word of {length} bytes is longer than the limit of {self.max_word}")
                if start + length > len(buffer):
                    self._need = start + length - offset
                    break
                offset = start + length
                if length == 0:
                    sentences.append(tuple(self._words))
                    self._words = []
                else:
                    self._words.append(buffer[start:offset])
        except ApiProtocolError as exc:
            self._broken = str(exc)
            raise
        del self._buffer[:offset]
        return sentences


# ----------------------------------------------------------------------------- command sentences


@dataclass(frozen=True)
class Request:
    """One command sentence, taken apart.

    ``attributes`` are ``=name=value`` words (the value may hold ``=``; ``=.id=`` and ``=.proplist=``
    are among them), ``api`` the ``.name=value`` words (``.tag``), ``queries`` the ``?`` words in order.
    """

    command: str
    attributes: dict[str, str] = field(default_factory=dict)
    api: dict[str, str] = field(default_factory=dict)
    queries: tuple[str, ...] = ()

    @property
    def tag(self) -> str | None:
        return self.api.get("tag")

    @property
    def proplist(self) -> list[str] | None:
        text = self.attributes.get(".proplist")
        return None if text is None else [p for p in text.split(",") if p]


def parse_request(words: Sequence[str]) -> Request:
    """A command sentence (text words); ApiProtocolError for a word that is none of the kinds."""
    if not words:
        raise ApiProtocolError("an empty sentence has no command")
    command, rest = words[0], words[1:]
    attributes: dict[str, str] = {}
    api: dict[str, str] = {}
    queries: list[str] = []
    for word in rest:
        if word.startswith("="):
            name, sep, value = word[1:].partition("=")
            if not name or not sep:
                raise ApiProtocolError(f"attribute word {word!r} is not =name=value")
            attributes[name] = value  # ``=.id=`` and ``=.proplist=`` keep their dot
        elif word.startswith("."):
            name, sep, value = word[1:].partition("=")
            if not name or not sep:
                raise ApiProtocolError(f"API attribute word {word!r} is not .name=value")
            api[name] = value
        elif word.startswith("?"):
            queries.append(word)
        else:
            raise ApiProtocolError(f"word {word!r} is not an attribute, API attribute or query")
    return Request(command, attributes, api, tuple(queries))


def reply_words(kind: str, attributes: Mapping[str, object] | None = None, tag: str | None = None) -> list[str]:
    """``!re`` / ``!done`` / ``!trap`` / ``!empty`` / ``!fatal`` words; ``.tag`` last, when given."""
    words = [kind]
    for name, value in (attributes or {}).items():
        words.append(f"={name}={value}")
    if tag is not None:
        words.append(f".tag={tag}")
    return words


def parse_reply(words: Sequence[str]) -> tuple[str, dict[str, str], str | None]:
    """(reply word, attributes, tag) of a reply sentence; ``!fatal``'s reason is attribute ``message``."""
    if not words:
        raise ApiProtocolError("an empty reply sentence")
    kind, attributes, tag = words[0], {}, None
    for word in words[1:]:
        if word.startswith("="):
            name, _, value = word[1:].partition("=")
            attributes[name] = value
        elif word.startswith(".tag="):
            tag = word[5:]
        elif kind == "!fatal":
            attributes["message"] = word
    return kind, attributes, tag


# ----------------------------------------------------------------------------- queries

Record = Mapping[str, str]
Predicate = Callable[[Record], bool]


def _compare(have: str | None, wanted: str, op: str) -> bool:
    if have is None:
        return False
    if op == "=":
        return have == wanted
    try:
        left, right = float(have), float(wanted)
    except ValueError:
        left, right = have, wanted  # type: ignore[assignment]
    return left < right if op == "<" else left > right


def compile_query(queries: Sequence[str]) -> Predicate:
    """A predicate over records (property -> text) for ``print``'s ``?`` words.

    ``?name`` has the property, ``?-name`` lacks it, ``?name=x`` / ``?=name=x`` equals, ``?<name=x``
    and ``?>name=x`` compare (as numbers when both are), and ``?#ops`` works on the stack of results:
    ``!`` negates the top, ``&`` and ``|`` combine the top two, ``.`` duplicates the top and a digit
    ``n`` pushes a copy of the value ``n`` below the top. At the end all values must hold (an empty
    query matches everything). A malformed word raises ApiProtocolError now, not per record.
    """
    steps: list[Callable[[Record, list[bool]], None]] = []
    depth = 0  # values on the stack at this point: checked now, so a predicate never fails
    for word in queries:
        body = word[1:]
        if body.startswith("#"):
            for char in body[1:]:
                step, needs, pushes = _stack_op(char, word)
                if depth < needs:
                    raise ApiProtocolError(f"query {word!r}: {char!r} needs {needs} values, the stack holds {depth}")
                depth += pushes
                steps.append(step)
            continue
        op, explicit = "=", body[:1] in ("=", "<", ">")
        if explicit:
            op, body = body[0], body[1:]
        name, sep, value = body.partition("=")
        if not name:
            raise ApiProtocolError(f"query word {word!r} names no property")
        if sep:
            steps.append(lambda record, stack, n=name, v=value, o=op: stack.append(_compare(record.get(n), v, o)))
        elif explicit:
            raise ApiProtocolError(f"query word {word!r} compares with nothing")
        elif name.startswith("-"):
            steps.append(lambda record, stack, n=name[1:]: stack.append(n not in record))
        else:
            steps.append(lambda record, stack, n=name: stack.append(n in record))
        depth += 1

    def predicate(record: Record) -> bool:
        stack: list[bool] = []
        for step in steps:
            step(record, stack)
        return all(stack)

    return predicate


def _negate(_record: Record, stack: list[bool]) -> None:
    stack.append(not stack.pop())


def _both(_record: Record, stack: list[bool]) -> None:
    stack.append(stack.pop() & stack.pop())


def _either(_record: Record, stack: list[bool]) -> None:
    stack.append(stack.pop() | stack.pop())


def _copy(depth: int) -> Callable[[Record, list[bool]], None]:
    def run(_record: Record, stack: list[bool]) -> None:
        stack.append(stack[-1 - depth])

    return run


def _stack_op(char: str, word: str) -> tuple[Callable[[Record, list[bool]], None], int, int]:
    """(step, values it needs on the stack, change in stack size)."""
    if char == "!":
        return _negate, 1, 0
    if char == "&":
        return _both, 2, -1
    if char == "|":
        return _either, 2, -1
    if char == ".":
        return _copy(0), 1, 1
    if char.isascii() and char.isdigit():
        return _copy(int(char)), int(char) + 1, 1
    raise ApiProtocolError(f"query {word!r}: unknown stack operation {char!r}")


__all__ = [
    "ApiProtocolError",
    "MAX_LENGTH",
    "Request",
    "SentenceDecoder",
    "compile_query",
    "decode_length",
    "encode_length",
    "encode_sentence",
    "encode_word",
    "parse_reply",
    "parse_request",
    "reply_words",
]
