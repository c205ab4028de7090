"""RFC 6455 framing and the message layer, sans I/O (SPEC 4.4, 4.5)."""

from __future__ import annotations

import os
import random
import struct

import pytest

from ohws._frames import CloseCode, Frame, FrameParser, Opcode, ProtocolError, apply_mask, encode_frame
from ohws._messages import (
    Close,
    Message,
    MessageAssembler,
    Ping,
    Pong,
    parse_close_payload,
    take_small_messages,
)

from .servers import frame_bytes


def parse_all(data: bytes, max_payload: int = 0, step: int | None = None) -> list[Frame]:
    parser = FrameParser(max_payload)
    frames: list[Frame] = []
    chunks = [data] if step is None else [data[i : i + step] for i in range(0, len(data), step)]
    for chunk in chunks:
        parser.feed(chunk)
        while (frame := parser.next_frame()) is not None:
            frames.append(frame)
    return frames


def violation(data: bytes, max_payload: int = 0) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        parse_all(data, max_payload)
    return info.value


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_lengths_round_trip_byte_by_byte_and_whole(size: int) -> None:
    """7-, 16- and 64-bit lengths parse, whether bytes come at once or in small pieces."""
    payload = os.urandom(size)
    data = frame_bytes(0x2, payload)
    assert parse_all(data) == [Frame(True, Opcode.BINARY, payload)]
    assert parse_all(data, step=7 if size > 1000 else 1) == [Frame(True, Opcode.BINARY, payload)]


def test_several_frames_in_one_read() -> None:
    """Frames that arrive together come out in order."""
    data = frame_bytes(0x1, b"a", fin=False) + frame_bytes(0x9, b"p") + frame_bytes(0x0, b"b")
    assert parse_all(data) == [
        Frame(False, Opcode.TEXT, b"a"),
        Frame(True, Opcode.PING, b"p"),
        Frame(True, Opcode.CONT, b"b"),
    ]


@pytest.mark.parametrize(
    ("data", "word"),
    [
        (frame_bytes(0x1, b"x", mask=b"abcd"), "masked"),
        (frame_bytes(0x1, b"x", rsv=4), "reserved bits"),
        (frame_bytes(0x1, b"x", rsv=1), "reserved bits"),
        (frame_bytes(0x3, b"x"), "unknown opcode 0x3"),
        (frame_bytes(0xB, b""), "unknown opcode 0xb"),
        (frame_bytes(0x9, b"x" * 126), "126-byte control frame"),
        (frame_bytes(0x8, b"\x03\xe8", fin=False), "fragmented control frame"),
        (frame_bytes(0x2, b"x" * 10, length=10)[:1] + bytes([126]) + struct.pack("!H", 10), "minimal"),
        (bytes([0x82, 127]) + struct.pack("!Q", 2**63), "top bit"),
        (bytes([0x82, 127]) + struct.pack("!Q", 100), "minimal"),
    ],
)
def test_framing_violations_are_1002(data: bytes, word: str) -> None:
    """Masked, RSV, unknown opcode, bad control frames and bad lengths fail with 1002."""
    error = violation(data)
    assert error.code == CloseCode.PROTOCOL_ERROR
    assert word in error.reason


def test_announced_length_over_limit_fails_before_payload() -> None:
    """A header announcing more than maxMessageSize fails at once with 1009 (no allocation)."""
    header = bytes([0x82, 127]) + struct.pack("!Q", 2**62)
    parser = FrameParser(max_payload=1024)
    parser.feed(header)
    with pytest.raises(ProtocolError) as info:
        parser.next_frame()
    assert info.value.code == CloseCode.MESSAGE_TOO_BIG
    assert parser.buffered == len(header)


def test_partial_header_waits() -> None:
    """Fewer bytes than a header asks for return None, not an error."""
    parser = FrameParser()
    parser.feed(bytes([0x82, 127, 0, 0]))
    assert parser.next_frame() is None


def test_encode_frame_is_masked_and_decodable() -> None:
    """Client frames are masked; unmasking gives the payload back, for every length form."""
    for size in (0, 5, 300, 70_000):
        payload = os.urandom(size)
        frame = encode_frame(Opcode.BINARY, payload)
        assert frame[0] == 0x82
        assert frame[1] & 0x80
        offset = {0: 2, 5: 2, 300: 4, 70_000: 10}[size]
        mask = frame[offset : offset + 4]
        assert apply_mask(frame[offset + 4 :], mask) == payload
    assert encode_frame(Opcode.TEXT, b"x", fin=False)[0] == 0x01


# ---------------------------------------------------------------- message layer


def feed(frames: list[Frame], max_size: int = 0) -> list[object]:
    assembler = MessageAssembler(max_size)
    return [event for frame in frames if (event := assembler.receive(frame)) is not None]


def test_fragmented_text_with_pings_between() -> None:
    """Fragments reassemble into one message; control frames between them are delivered."""
    events = feed(
        [
            Frame(False, Opcode.TEXT, "hé".encode()[:2]),
            Frame(True, Opcode.PING, b"1"),
            Frame(False, Opcode.CONT, "hé".encode()[2:] + b" w"),
            Frame(True, Opcode.PONG, b"2"),
            Frame(True, Opcode.CONT, b"orld"),
        ]
    )
    assert events == [Ping(b"1"), Pong(b"2"), Message("hé world")]


def test_fragmented_binary_and_empty_fragments() -> None:
    """Binary fragments join to bytes; empty fragments are legal and add nothing."""
    events = feed(
        [Frame(False, Opcode.BINARY, b"ab"), Frame(False, Opcode.CONT, b""), Frame(True, Opcode.CONT, b"c")]
    )
    assert events == [Message(b"abc")]
    assert feed([Frame(True, Opcode.TEXT, b"")]) == [Message("")]


@pytest.mark.parametrize(
    "frames",
    [
        [Frame(True, Opcode.TEXT, b"ok \xe2\x82")],  # truncated final sequence
        [Frame(False, Opcode.TEXT, b"\xe2\x82"), Frame(True, Opcode.CONT, b"")],  # truncated across fragments
        [Frame(True, Opcode.TEXT, b"\xff")],
        [Frame(True, Opcode.TEXT, b"\xed\xa0\x80")],  # encoded surrogate
        [Frame(False, Opcode.TEXT, b"a\xc0"), Frame(True, Opcode.CONT, b"\xaf")],  # overlong split
    ],
)
def test_invalid_utf8_is_1007(frames: list[Frame]) -> None:
    """Invalid or truncated UTF-8 in text fails with 1007, also across fragments."""
    with pytest.raises(ProtocolError) as info:
        feed(frames)
    assert info.value.code == CloseCode.INVALID_DATA


def test_invalid_utf8_fails_at_the_bad_fragment() -> None:
    """A bad byte fails when its fragment arrives, not at the end of the message."""
    assembler = MessageAssembler()
    with pytest.raises(ProtocolError):
        assembler.receive(Frame(False, Opcode.TEXT, b"\xff"))


@pytest.mark.parametrize(
    ("frames", "word"),
    [
        ([Frame(True, Opcode.CONT, b"x")], "continuation frame without"),
        ([Frame(False, Opcode.TEXT, b"a"), Frame(True, Opcode.BINARY, b"b")], "inside a fragmented"),
        ([Frame(False, Opcode.BINARY, b"a"), Frame(True, Opcode.TEXT, b"b")], "inside a fragmented"),
    ],
)
def test_bad_continuation_is_1002(frames: list[Frame], word: str) -> None:
    """A continuation without a start, or a new message inside one, fails with 1002."""
    with pytest.raises(ProtocolError) as info:
        feed(frames)
    assert info.value.code == CloseCode.PROTOCOL_ERROR
    assert word in info.value.reason


def test_message_size_limit_across_fragments() -> None:
    """maxMessageSize counts the whole message: 1009 once the fragments exceed it."""
    assert feed([Frame(True, Opcode.BINARY, b"x" * 10)], max_size=10) == [Message(b"x" * 10)]
    with pytest.raises(ProtocolError) as info:
        feed([Frame(False, Opcode.BINARY, b"x" * 6), Frame(True, Opcode.CONT, b"x" * 5)], max_size=10)
    assert info.value.code == CloseCode.MESSAGE_TOO_BIG
    with pytest.raises(ProtocolError):
        feed([Frame(True, Opcode.TEXT, b"x" * 11)], max_size=10)


def test_many_tiny_fragments_reassemble() -> None:
    """100,000 one-byte fragments reassemble (list + join, linear time)."""
    frames = [Frame(False, Opcode.BINARY, b"a")] + [Frame(False, Opcode.CONT, b"b")] * 99_998
    frames.append(Frame(True, Opcode.CONT, b"c"))
    (message,) = feed(frames)
    assert isinstance(message, Message)
    assert message.data == b"a" + b"b" * 99_998 + b"c"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"", Close(None, "")),
        (struct.pack("!H", 1000), Close(1000, "")),
        (struct.pack("!H", 4000) + "bye ✓".encode(), Close(4000, "bye ✓")),
        (struct.pack("!H", 1014), Close(1014, "")),
    ],
)
def test_close_payloads(payload: bytes, expected: Close) -> None:
    """Close frames carry no code, or a valid code and a UTF-8 reason."""
    assert parse_close_payload(payload) == expected


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"\x03", CloseCode.PROTOCOL_ERROR),
        (struct.pack("!H", 1005), CloseCode.PROTOCOL_ERROR),
        (struct.pack("!H", 1006), CloseCode.PROTOCOL_ERROR),
        (struct.pack("!H", 999), CloseCode.PROTOCOL_ERROR),
        (struct.pack("!H", 2000), CloseCode.PROTOCOL_ERROR),
        (struct.pack("!H", 1000) + b"\xff", CloseCode.INVALID_DATA),
    ],
)
def test_bad_close_payloads(payload: bytes, code: CloseCode) -> None:
    """A 1-byte payload or a reserved code is 1002; a non-UTF-8 reason is 1007."""
    with pytest.raises(ProtocolError) as info:
        parse_close_payload(payload)
    assert info.value.code == code


def test_server_side_parsing_unmasks_and_requires_masks() -> None:
    """from_client=True: masked client frames are unmasked; an unmasked one is 1002."""
    parser = FrameParser(from_client=True)
    for size in (3, 300, 70_000):
        payload = os.urandom(size)
        parser.feed(encode_frame(Opcode.BINARY, payload))
        assert parser.next_frame() == Frame(True, Opcode.BINARY, payload)
    parser.feed(encode_frame(Opcode.TEXT, b"x", mask=False))
    with pytest.raises(ProtocolError) as info:
        parser.next_frame()
    assert "not masked" in info.value.reason


@pytest.mark.parametrize("from_client", [False, True])
def test_large_frames_split_anywhere_reassemble_exactly(from_client: bool) -> None:
    """Frames of 64 KiB and more, cut at random points (a header in two, a frame's end and the
    next frame's start in one read), come out exactly, masked or not, with the frames around
    them."""
    rng = random.Random(14)
    mask = from_client
    payloads = [os.urandom(n) for n in (65_535, 65_536, 65_537, 300_000, 5, 1_048_576)]
    frames = [Frame(True, Opcode.BINARY, payload) for payload in payloads]
    frames.insert(2, Frame(False, Opcode.TEXT, b"x" * 70_000))
    frames.insert(3, Frame(True, Opcode.PING, b"between"))
    frames.insert(4, Frame(True, Opcode.CONT, b"y" * 80_000))
    stream = b"".join(encode_frame(f.opcode, f.payload, f.fin, mask=mask) for f in frames)
    for _ in range(6):
        cuts = sorted(rng.sample(range(1, len(stream)), 40))
        chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        parser = FrameParser(from_client=from_client)
        got: list[Frame] = []
        fed = consumed = 0
        for chunk in chunks:
            parser.feed(chunk)
            fed += len(chunk)
            while (frame := parser.next_frame()) is not None:
                got.append(frame)
                consumed += len(encode_frame(frame.opcode, frame.payload, frame.fin, mask=mask))
            assert parser.buffered == fed - consumed
        assert got == frames
        assert parser.buffered == 0
    large = encode_frame(Opcode.BINARY, payloads[3], mask=mask)  # a 14- (or 10-) byte header
    for cut in range(1, 16):  # the header, mask key included, cut at every byte
        parser = FrameParser(from_client=from_client)
        parser.feed(large[:cut])
        assert parser.next_frame() is None
        parser.feed(large[cut:])
        assert parser.next_frame() == Frame(True, Opcode.BINARY, payloads[3])


def test_a_large_frame_fed_in_several_reads_before_it_is_parsed() -> None:
    """Reads fed one after another without a parse in between (the large frame's end and two
    more frames among them) still come out exactly."""
    big = os.urandom(100_000)
    data = b"".join(
        encode_frame(opcode, payload, mask=False)
        for opcode, payload in ((Opcode.BINARY, big), (Opcode.TEXT, b"a"), (Opcode.TEXT, b"b"))
    )
    parser = FrameParser()
    parser.feed(data[:50_000])
    assert parser.next_frame() is None
    end = len(data) - 3  # where the last frame starts
    for i in range(50_000, end, 9_999):
        parser.feed(data[i : min(i + 9_999, end)])
    parser.feed(data[end:])
    frames = []
    while (frame := parser.next_frame()) is not None:
        frames.append(frame)
    assert frames == [
        Frame(True, Opcode.BINARY, big),
        Frame(True, Opcode.TEXT, b"a"),
        Frame(True, Opcode.TEXT, b"b"),
    ]


def test_a_large_frame_fed_from_a_reused_buffer_is_not_corrupted() -> None:
    """A caller may feed a bytearray and refill it for the next read (as with recv_into): the
    large frame being collected keeps its own copy."""
    payload = os.urandom(200_000)
    data = encode_frame(Opcode.BINARY, payload, mask=False)
    parser = FrameParser()
    buffer = bytearray(65_536)
    frames = []
    for i in range(0, len(data), len(buffer)):
        chunk = data[i : i + len(buffer)]
        buffer[: len(chunk)] = chunk
        parser.feed(memoryview(buffer)[: len(chunk)])  # type: ignore[arg-type]
        while (frame := parser.next_frame()) is not None:
            frames.append(frame)
        buffer[:] = bytes(len(buffer))  # the caller reuses its buffer
    assert frames == [Frame(True, Opcode.BINARY, payload)]


def test_a_large_frame_is_not_grown_into_the_read_buffer() -> None:
    """A 1 MiB frame arriving in 64 KiB reads is kept as those reads and joined once: the read
    buffer never grows to the frame's size (that took fresh memory for every large message)."""
    payload = os.urandom(1 << 20)
    data = encode_frame(Opcode.BINARY, payload, mask=False) + encode_frame(Opcode.TEXT, b"next", mask=False)
    parser = FrameParser()
    got: list[Frame] = []
    for i in range(0, len(data), 65_536):
        parser.feed(data[i : i + 65_536])
        assert len(parser._buf) <= 65_536
        while (frame := parser.next_frame()) is not None:
            got.append(frame)
    assert got == [Frame(True, Opcode.BINARY, payload), Frame(True, Opcode.TEXT, b"next")]


def test_a_large_frame_over_the_limit_fails_before_it_is_collected() -> None:
    """maxMessageSize still stops a large frame at its header, before it is collected."""
    parser = FrameParser(100_000)
    parser.feed(encode_frame(Opcode.BINARY, os.urandom(200_000), mask=False)[:1000])
    with pytest.raises(ProtocolError) as info:
        parser.next_frame()
    assert info.value.code == CloseCode.MESSAGE_TOO_BIG
    assert parser._parts is None


def test_unmasked_encoding_for_servers() -> None:
    """encode_frame(mask=False) is what a server sends and what a client parser reads."""
    frame = encode_frame(Opcode.TEXT, b"hello", mask=False)
    assert frame == b"\x81\x05hello"
    assert parse_all(frame) == [Frame(True, Opcode.TEXT, b"hello")]


def test_c_and_python_masking_agree() -> None:
    """The C mask (websockets.speedups) and the pure-Python fallback give the same bytes."""
    from ohws._frames import py_apply_mask

    for size in (0, 1, 3, 4, 5, 1000, 65_537):
        data, mask = os.urandom(size), os.urandom(4)
        assert apply_mask(data, mask) == py_apply_mask(data, mask)
        assert py_apply_mask(py_apply_mask(data, mask), mask) == data


def test_masking_keys_come_from_the_os_csprng_a_chunk_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """RFC 6455 5.3: each frame's key from a strong entropy source, unpredictable. ohws draws
    them from os.urandom 4 KiB at a time (as Node's ws does): one call per 1,024 frames, not
    one system call per frame, which lets go of the GIL (issue 14)."""
    import ohws._frames as frames

    calls: list[int] = []
    real = os.urandom

    def counting(n: int) -> bytes:
        calls.append(n)
        return real(n)

    monkeypatch.setattr(frames.os, "urandom", counting)
    keys = [encode_frame(Opcode.TEXT, b"x")[2:6] for _ in range(3000)]
    assert 1 <= len(calls) <= 4 and set(calls) == {4096}, calls
    assert len(set(keys)) >= 2990  # 32-bit random keys: a handful of repeats at most


# ---------------------------------------------------------------- the reader's shortcut

SMALL_BURST = frame_bytes(0x1, "héllo".encode()) + frame_bytes(0x2, b"\x00\x01") + frame_bytes(0x1)
SMALL_BURST += frame_bytes(0x2, b"z" * 125)


def taken(data: bytes, masked: bool = False, max_size: int = 0) -> tuple[int, list[str | bytes]]:
    messages: list[str | bytes] = []
    return take_small_messages(data, messages.append, masked, max_size), messages


def test_a_burst_of_small_whole_messages_is_taken_in_order() -> None:
    """Unfragmented text and binary frames of up to 125 bytes come out as messages, in order:
    text as str, binary as bytes, an empty one too."""
    assert taken(SMALL_BURST) == (len(SMALL_BURST), ["héllo", b"\x00\x01", "", b"z" * 125])


def test_masked_small_messages_are_unmasked_for_a_server() -> None:
    key = b"\x11\x22\x33\x44"
    data = frame_bytes(0x1, b"masked", mask=key) + frame_bytes(0x2, b"\xff" * 9, mask=key)
    assert taken(data, masked=True) == (len(data), ["masked", b"\xff" * 9])


@pytest.mark.parametrize(
    ("what", "frame", "max_size"),
    [
        ("a ping", frame_bytes(0x9, b"p"), 0),
        ("a close", frame_bytes(0x8, struct.pack("!H", 1000)), 0),
        ("a first fragment", frame_bytes(0x1, b"part", fin=False), 0),
        ("a continuation", frame_bytes(0x0, b"rest"), 0),
        ("reserved bits", frame_bytes(0x1, b"x", rsv=4), 0),
        ("a 126-byte frame", frame_bytes(0x2, b"y" * 126), 0),
        ("bad UTF-8", frame_bytes(0x1, b"\xc3\x28"), 0),
        ("a frame over maxMessageSize", frame_bytes(0x2, b"12345"), 4),
        ("a masked frame from a server", frame_bytes(0x1, b"m", mask=b"abcd"), 0),
    ],
)
def test_the_shortcut_stops_before_anything_but_a_small_whole_message(
    what: str, frame: bytes, max_size: int
) -> None:
    """The first frame that is not a small whole message (valid, within maxMessageSize, masked
    as the side expects) ends the run, with the messages before it emitted: the general parser
    takes it from there and reports what is wrong with it."""
    before = frame_bytes(0x1, b"ok")
    assert taken(before + frame + before, max_size=max_size) == (len(before), ["ok"]), what


def test_a_frame_cut_off_by_the_end_of_the_read_is_left_for_the_parser() -> None:
    data = frame_bytes(0x1, b"ok") + frame_bytes(0x2, b"whole frame")[:-1]
    assert taken(data) == (4, ["ok"])
    assert taken(frame_bytes(0x1, b"ok")[:1]) == (0, [])


def test_an_unmasked_frame_is_not_taken_by_a_server() -> None:
    # Followed by more bytes, and binary: neither the end of the read nor UTF-8 stops it.
    data = frame_bytes(0x2, b"plain") + frame_bytes(0x2, b"more", mask=b"abcd")
    assert taken(data, masked=True) == (0, [])


@pytest.mark.parametrize(
    ("data", "from_client", "missing"),
    [
        (b"", False, 0),
        (frame_bytes(0x2, b"0123456789")[:1], False, 0),  # its size is not known yet
        (frame_bytes(0x2, b"0123456789")[:5], False, 7),
        (frame_bytes(0x2, b"x" * 300)[:3], False, 0),  # the 16-bit length is not all here
        (frame_bytes(0x2, b"x" * 300)[:104], False, 200),
        (frame_bytes(0x2, b"x" * 70_000)[:5], False, 0),  # the 64-bit length is not all here
        (frame_bytes(0x2, b"x" * 70_000)[:1010], False, 69_000),  # collected apart (64 KiB+)
        (frame_bytes(0x1, b"hello", mask=b"abcd")[:5], True, 6),  # the masking key is not all here
        (frame_bytes(0x1, b"hello", mask=b"abcd")[:7], True, 4),
        (frame_bytes(0x2, b"x" * 300, mask=b"abcd")[:6], True, 302),
        (frame_bytes(0x2, b"x" * 70_000, mask=b"abcd")[:12], True, 70_002),
    ],
)
def test_the_parser_says_how_many_bytes_complete_the_frame_begun(
    data: bytes, from_client: bool, missing: int
) -> None:
    """What completes the frame begun in the buffer, header and mask key included: the reader
    gives the parser just that, and what follows may be small whole messages again."""
    parser = FrameParser(from_client=from_client)
    parser.feed(data)
    assert parser.next_frame() is None
    assert parser.missing() == missing
    if missing:
        parser.feed(b"y" * missing)
        assert parser.next_frame() is not None
        assert parser.missing() == 0
