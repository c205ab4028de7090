"""Property-based tests (hypothesis): parsers never fail in any way but the documented one."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ohws import BusinessError
from ohws._frames import CloseCode, FrameParser, Opcode, ProtocolError, encode_frame
from ohws._messages import Close, Message, MessageAssembler, Ping, Pong
from ohws._options import _OPTION_KEYS, parse_close_options, parse_options
from ohws._url import parse_url

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.binary(max_size=10),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=12), st.integers()), inner, max_size=4),
    ),
    max_leaves=12,
)
keys = st.one_of(st.sampled_from(_OPTION_KEYS), st.text(max_size=15))


@SETTINGS
@given(st.one_of(values, st.dictionaries(keys, values, max_size=6)))
def test_options_parse_or_401(raw: Any) -> None:
    """Any options value either parses or is a 401 — never another exception."""
    try:
        parse_options(raw)
    except BusinessError as exc:
        assert exc.code == 401
        assert exc.message.startswith("Parameter error: ")


@SETTINGS
@given(st.one_of(values, st.dictionaries(st.sampled_from(["code", "reason", "x"]), values, max_size=3)))
def test_close_options_parse_or_401(raw: Any) -> None:
    """Any close options value either parses (to a sendable code and short reason) or is a 401."""
    try:
        spec = parse_close_options(raw)
    except BusinessError as exc:
        assert exc.code == 401
        return
    assert 1000 <= spec.code <= 4999
    assert len(spec.reason.encode()) <= 123


url_parts = st.tuples(
    st.sampled_from(["ws", "wss", "WS", "http", "", "ws:", "wss:/"]),
    st.sampled_from(["://", ":/", ""]),
    st.one_of(st.text(max_size=20), st.sampled_from(["127.0.0.1", "[::1]", "host", "bücher.de", "a:b:c"])),
    st.one_of(st.just(""), st.integers(-5, 70000).map(lambda p: f":{p}")),
    st.text(max_size=20),
)


@SETTINGS
@given(st.one_of(st.text(max_size=60), url_parts.map("".join)))
def test_urls_parse_or_2302001(url: str) -> None:
    """Any string either parses to a target with a host and port in range, or is a 2302001."""
    try:
        target = parse_url(url)
    except BusinessError as exc:
        assert exc.code == 2302001
        return
    assert target.host and 1 <= target.port <= 65535
    assert target.resource.startswith("/")


ALLOWED_CODES = {CloseCode.PROTOCOL_ERROR, CloseCode.INVALID_DATA, CloseCode.MESSAGE_TOO_BIG}


def feed_all(chunks: list[bytes], max_size: int) -> list[object]:
    parser = FrameParser(max_size)
    assembler = MessageAssembler(max_size)
    events: list[object] = []
    fed = 0
    for chunk in chunks:
        parser.feed(chunk)
        fed += len(chunk)
        while (frame := parser.next_frame()) is not None:
            event = assembler.receive(frame)
            if event is not None:
                events.append(event)
        assert parser.buffered <= fed  # the parser never holds more than it was given
    return events


@SETTINGS
@given(st.lists(st.binary(max_size=64), max_size=40), st.sampled_from([0, 16, 1000]))
def test_random_bytes_give_events_or_a_close_code(chunks: list[bytes], max_size: int) -> None:
    """Random byte streams either give events or fail with 1002/1007/1009 — never anything else."""
    try:
        feed_all(chunks, max_size)
    except ProtocolError as exc:
        assert exc.code in ALLOWED_CODES


data_frames = st.one_of(
    st.tuples(st.just("text"), st.lists(st.text(max_size=30), min_size=1, max_size=5)),
    st.tuples(st.just("binary"), st.lists(st.binary(max_size=300), min_size=1, max_size=5)),
    st.tuples(st.just("ping"), st.binary(max_size=125)),
    st.tuples(st.just("pong"), st.binary(max_size=125)),
)


def _frames_for(item: tuple[str, Any]) -> tuple[bytes, list[object]]:
    """Server frames for one message (or control frame) and the events they must produce."""
    kind, body = item
    if kind == "ping":
        return encode_frame(Opcode.PING, body, mask=False), [Ping(body)]
    if kind == "pong":
        return encode_frame(Opcode.PONG, body, mask=False), [Pong(body)]
    opcode = Opcode.TEXT if kind == "text" else Opcode.BINARY
    parts = [p.encode() if isinstance(p, str) else p for p in body]
    frames = b"".join(
        encode_frame(opcode if i == 0 else Opcode.CONT, part, i == len(parts) - 1, mask=False)
        for i, part in enumerate(parts)
    )
    joined = b"".join(parts)
    return frames, [Message(joined.decode() if kind == "text" else joined)]


@SETTINGS
@given(st.lists(data_frames, max_size=12), st.integers(min_value=1, max_value=97))
def test_valid_streams_reassemble_exactly(items: list[tuple[str, Any]], step: int) -> None:
    """Valid frames, fragmented and split at any byte, give exactly the messages sent, in order."""
    stream, expected = b"", []
    for item in items:
        frames, events = _frames_for(item)
        stream += frames
        expected += events
    stream += encode_frame(Opcode.CLOSE, struct.pack("!H", 1000), mask=False)
    chunks = [stream[i : i + step] for i in range(0, len(stream), step)]
    assert feed_all(chunks, 0) == [*expected, Close(1000, "")]


@pytest.mark.parametrize("fragments", [100_000])
def test_tiny_fragments_memory_is_bounded(fragments: int) -> None:
    """100,000 empty continuation frames keep no per-fragment state (no growth without bound)."""
    parser, assembler = FrameParser(), MessageAssembler()
    parser.feed(encode_frame(Opcode.BINARY, b"start", fin=False, mask=False))
    assembler.receive(parser.next_frame())  # type: ignore[arg-type]
    empty = encode_frame(Opcode.CONT, b"", fin=False, mask=False)
    for _ in range(fragments):
        parser.feed(empty)
        frame = parser.next_frame()
        assert frame is not None
        assert assembler.receive(frame) is None
    assert len(assembler._chunks) == 1
    parser.feed(encode_frame(Opcode.CONT, b"end", mask=False))
    assert assembler.receive(parser.next_frame()) == Message(b"startend")  # type: ignore[arg-type]
