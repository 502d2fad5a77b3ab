"""Raw chunk frames (a chunk's head, a newline, a slice of the message as it is): what the stub
and the runner send for a large message. Each is valid UTF-8 text within the frame limit, they
reassemble in any order, and a bad one is refused with a reason."""

from __future__ import annotations

import random

import pytest

from pylive.in_lambda import protocol
from pylive.in_lambda.protocol.chunks import CHUNK_PREFIX, RAW_SEPARATOR, raw_chunks

# Multi-byte characters (2 and 4 bytes in UTF-8) and JSON escapes, so that slices end inside
# characters unless cut with care.
MESSAGE = protocol.encode(protocol.Result("r1", {"body": 'é"\\😀\n' * 3000}))
DATA = MESSAGE.encode()


def reassembled(frames: list[bytes] | list[str]) -> protocol.Message | None:
    reassembler = protocol.Reassembler()
    results = [reassembler.feed(frame) for frame in frames]
    assert results[:-1] == [None] * (len(frames) - 1)
    return results[-1]


@pytest.mark.parametrize("max_frame", [300, 301, 302, 303, 1024, 8 * 1024])
def test_raw_frames_are_text_within_the_limit_and_carry_the_message_as_it_is(
    max_frame: int,
) -> None:
    frames = raw_chunks(DATA, max_frame, "m1", request_id="r1", reply_to="ü")
    assert len(frames) > 3
    slices = []
    for index, frame in enumerate(frames):
        assert len(frame) <= max_frame
        frame.decode()  # valid UTF-8: no character is cut in two
        assert frame.startswith(CHUNK_PREFIX)
        head, _, data = frame.partition(RAW_SEPARATOR)
        chunk = protocol.decode(head)
        assert chunk == protocol.Chunk("m1", index, len(frames), "", "r1", "ü")
        slices.append(data)
    assert b"".join(slices) == DATA


def test_raw_frames_carry_a_message_in_fewer_bytes_and_frames_than_base64_ones() -> None:
    raw = protocol.split_encoded(MESSAGE, max_frame_bytes=1024, raw=True)
    base64 = protocol.split_encoded(MESSAGE, max_frame_bytes=1024)
    assert sum(map(len, raw)) < sum(map(len, base64)) * 0.8
    assert len(raw) < len(base64) * 0.8


def test_raw_frames_reassemble_in_any_order_as_bytes_or_as_text() -> None:
    frames = protocol.split_encoded(MESSAGE, max_frame_bytes=1024, raw=True)
    random.Random(7).shuffle(frames)
    assert reassembled(frames) == protocol.decode(MESSAGE)
    texts = protocol.split(MESSAGE, max_frame_bytes=1024, raw=True)
    assert texts == [frame.decode() for frame in raw_chunks(DATA, 1024, _id(texts[0]))]
    assert reassembled(texts[::-1]) == protocol.decode(MESSAGE)


def test_raw_and_base64_chunks_of_different_messages_mix() -> None:
    other = protocol.encode(protocol.Result("r2", "x" * 5000))
    raw = protocol.split_encoded(MESSAGE, max_frame_bytes=2048, message_id="a", raw=True)
    old = protocol.split_encoded(other, max_frame_bytes=2048, message_id="b")
    reassembler = protocol.Reassembler()
    done = [reassembler.feed(frame) for pair in zip(raw, old, strict=False) for frame in pair]
    done += [reassembler.feed(frame) for frame in raw[len(old) :] + old[len(raw) :]]
    assert [message for message in done if message is not None] == [
        protocol.decode(other),
        protocol.decode(MESSAGE),
    ]


def test_a_message_that_fits_one_frame_is_sent_as_it_is() -> None:
    small = protocol.encode(protocol.Ack("r1"))
    assert protocol.split(small, raw=True) == [small]
    assert protocol.split_encoded(small, raw=True) == [small.encode()]


def _head(**fields: object) -> bytes:
    chunk = {"message_id": "m", "index": 0, "total": 2, "data": ""} | fields
    text = protocol.encode(protocol.Chunk(**chunk))  # type: ignore[arg-type]
    return text.encode() + RAW_SEPARATOR


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (_head() + b"", "carries no data"),
        (_head(data="QUJD") + b"abc", "raw chunk's head must be a chunk message without data"),
        (_head(index=2) + b"abc", "index 2 is out of range"),
        (_head().replace(b'"v":1', b'"v":2') + b"abc", "protocol version"),
        (b'{"action":"chunk",' + b"not json\nabc", "not a JSON message"),
    ],
)
def test_a_bad_raw_frame_is_refused_with_its_reason(frame: bytes, error: str) -> None:
    for form in (frame, frame.decode()):
        with pytest.raises(protocol.ProtocolError, match=error):
            protocol.Reassembler().feed(form)


def test_a_message_whose_raw_slices_are_not_utf8_is_refused() -> None:
    frames = [_head(index=0) + b"\xff\xfe", _head(index=1) + b"abc"]
    reassembler = protocol.Reassembler()
    assert reassembler.feed(frames[0]) is None
    with pytest.raises(protocol.ChunkRefused, match="not valid UTF-8"):
        reassembler.feed(frames[1])


def test_too_small_a_frame_limit_is_an_error() -> None:
    with pytest.raises(ValueError, match="leaves no room for chunk data"):
        raw_chunks(DATA, 60, "m1")


def _id(frame: str) -> str:
    head = protocol.decode(frame.partition("\n")[0])
    assert isinstance(head, protocol.Chunk)
    return head.message_id
