"""Chunk frames written by split() are read without a JSON parser; every other frame, valid
or not, is read (and refused) exactly as decode() reads it."""

from __future__ import annotations

import json

import pytest

from pylive.in_lambda import protocol
from pylive.in_lambda.protocol.chunks import _read_chunk

MESSAGE = protocol.encode(protocol.Result("r1", {"body": 'é"\\' * 20000}))


def frames(message_id: str = "m1", **ids: str) -> list[str]:
    return protocol.split(MESSAGE, max_frame_bytes=8 * 1024, message_id=message_id, **ids)


@pytest.mark.parametrize(
    "ids",
    [
        {},
        {"request_id": "r-1"},
        {"reply_to": "L0SM9cOF/vHcCIhw="},
        {"request_id": "r", "reply_to": "ü"},
    ],
)
def test_split_frames_take_the_fast_path_and_reassemble(ids: dict[str, str]) -> None:
    parts = frames(**ids)
    assert len(parts) > 3
    assert protocol.split_encoded(MESSAGE, max_frame_bytes=8 * 1024, message_id="m1", **ids) == [
        frame.encode() for frame in parts
    ]
    for frame in parts:
        general = protocol.decode(frame)
        assert isinstance(general, protocol.Chunk)
        for form in (frame, frame.encode()):  # the text, or the bytes the stub reads
            fast = _read_chunk(form)
            assert fast is not None
            assert fast[0] == general
    for form in (parts, [frame.encode() for frame in parts]):
        reassembler = protocol.Reassembler()
        results = [reassembler.feed(frame) for frame in reversed(form)]
        assert results[:-1] == [None] * (len(parts) - 1)
        assert results[-1] == protocol.decode(MESSAGE)


def _rewrite(frame: str, **fields: object) -> str:
    body = json.loads(frame)
    body.update(fields)
    return json.dumps(body)


@pytest.mark.parametrize(
    "change",
    [
        {"message_id": 'a "quoted" id'},  # escaped in JSON
        {"extra": 1},  # an unknown field, ignored
        {"reply_to": 'a "quoted" id'},
        {"request_id": None},
    ],
)
def test_other_valid_chunk_frames_take_the_general_path(change: dict[str, object]) -> None:
    parts = [_rewrite(frame, **change) for frame in frames()]
    assert _read_chunk(parts[0]) is None
    assert _read_chunk(parts[0].encode()) is None
    reassembler = protocol.Reassembler()
    assert [reassembler.feed(frame) for frame in parts][-1] == protocol.decode(MESSAGE)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"data": "not base64!"}, "data is not valid base64"),
        ({"data": ""}, "carries no data"),
        ({"index": 99}, "index 99 is out of range"),
        ({"v": 2}, "protocol version"),
    ],
)
def test_invalid_chunk_frames_fail_as_decode_says(change: dict[str, object], error: str) -> None:
    bad = _rewrite(frames()[0], **change)
    for form in (bad, bad.encode()):
        with pytest.raises(protocol.ProtocolError, match=error):
            protocol.Reassembler().feed(form)


def test_a_frame_like_a_chunk_with_data_past_the_quote_is_not_misread() -> None:
    first = frames()[0]
    tricky = first[:-2] + '","data":"QUJD"}'  # a duplicate key: JSON keeps the last
    assert _read_chunk(tricky) is None
    assert _read_chunk(tricky.encode()) is None
    body = json.loads(tricky)
    assert body["data"] == "QUJD"


def test_a_chunk_whose_ids_are_not_utf8_takes_the_general_path() -> None:
    frame = frames(reply_to="abc")[0].encode().replace(b'"abc"', b'"\xff"')
    assert _read_chunk(frame) is None
    with pytest.raises(protocol.ProtocolError, match="not a JSON message"):
        protocol.Reassembler().feed(frame)
