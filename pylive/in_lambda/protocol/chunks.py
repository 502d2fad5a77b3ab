"""Messages too big for one WebSocket frame: split into ``chunk`` messages and put back
together, in any arrival order and within limits."""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn

from pylive.in_lambda.protocol.codec import decode, encode
from pylive.in_lambda.protocol.limits import (
    DEFAULT_MAX_FRAME_BYTES,
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_MAX_PENDING,
    DEFAULT_REASSEMBLY_TIMEOUT,
    PROTOCOL_VERSION,
    REFUSED_KEPT,
)
from pylive.in_lambda.protocol.messages import Chunk, Message, ProtocolError

# ---------------------------------------------------------------- splitting


def split(
    frame: str,
    *,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    message_id: str | None = None,
    request_id: str | None = None,
    reply_to: str | None = None,
    raw: bool = False,
) -> list[str]:
    """The frames that carry ``frame``: itself if it fits, else encoded ``chunk`` messages
    (carrying ``request_id`` and ``reply_to`` when given: see :class:`Chunk`); with ``raw``,
    raw chunk frames (see :func:`raw_chunks`).

    Each returned frame's UTF-8 size is at most ``max_frame_bytes``.
    """
    data = frame.encode()
    if len(data) <= max_frame_bytes:
        return [frame]
    make = raw_chunks if raw else _chunks
    return [
        chunk.decode() for chunk in make(data, max_frame_bytes, message_id, request_id, reply_to)
    ]


def split_encoded(
    frame: str,
    *,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    message_id: str | None = None,
    request_id: str | None = None,
    reply_to: str | None = None,
    raw: bool = False,
) -> list[bytes]:
    """:func:`split`'s frames as the UTF-8 bytes that are sent: a large message's chunks are
    built as bytes, without a copy of each as text and back."""
    data = frame.encode()
    if len(data) <= max_frame_bytes:
        return [data]
    make = raw_chunks if raw else _chunks
    return make(data, max_frame_bytes, message_id, request_id, reply_to)


def raw_chunks(
    data: bytes,
    max_frame_bytes: int,
    message_id: str | None = None,
    request_id: str | None = None,
    reply_to: str | None = None,
) -> list[bytes]:
    """``data`` (an encoded message, UTF-8) as raw chunk frames: each is a chunk message whose
    ``data`` is empty, a newline, then a slice of ``data`` as it is.

    A slice ends on a character boundary, so every frame is valid UTF-8 and travels as a text
    message, and nothing is base64-encoded or escaped: encoding and decoding base64 cost
    about 5 ms per MB of a relayed payload, on each side. An encoded
    message never holds a raw newline (JSON escapes it inside strings), so the first one ends
    the chunk's head.
    """
    message_id = message_id or uuid.uuid4().hex
    worst = len(data)  # index and total never have more digits than the size
    room = max_frame_bytes - len(_raw_head(message_id, worst, worst, request_id, reply_to))
    if room < 4:  # a slice can give back up to 3 bytes of a character cut in two
        raise ValueError(f"max_frame_bytes={max_frame_bytes} leaves no room for chunk data")
    cuts = [0]
    while cuts[-1] < len(data):
        end = min(cuts[-1] + room, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # a UTF-8 continuation byte
            end -= 1
        cuts.append(end)
    total = len(cuts) - 1
    view = memoryview(data)
    return [
        _raw_head(message_id, i, total, request_id, reply_to) + view[cuts[i] : cuts[i + 1]]
        for i in range(total)
    ]


def _raw_head(
    message_id: str, index: int, total: int, request_id: str | None, reply_to: str | None
) -> bytes:
    chunk = Chunk(message_id, index, total, "", request_id, reply_to)
    return encode(chunk).encode() + RAW_SEPARATOR


def _chunks(
    data: bytes,
    max_frame_bytes: int,
    message_id: str | None,
    request_id: str | None,
    reply_to: str | None,
) -> list[bytes]:
    message_id = message_id or uuid.uuid4().hex
    step = chunk_capacity(len(data), message_id, max_frame_bytes, request_id, reply_to)
    total = -(-len(data) // step)
    # What encode(Chunk(...)) gives, formatted directly: base64 needs no JSON escaping, and
    # json.dumps of a 120 KB string costs more than the base64 step itself.
    quoted_id = json.dumps(message_id, ensure_ascii=False)
    head = f'{{"action":"{Chunk.TYPE}","v":{PROTOCOL_VERSION},"message_id":{quoted_id},"index":'
    tail = "".join(
        f',"{name}":{json.dumps(value, ensure_ascii=False)}'
        for name, value in (("request_id", request_id), ("reply_to", reply_to))
        if value is not None
    )
    before, after = head.encode(), f'"{tail}}}'.encode()
    view = memoryview(data)
    return [
        b"".join(
            (
                before,
                b'%d,"total":%d,"data":"' % (i, total),
                base64.b64encode(view[i * step : (i + 1) * step]),
                after,
            )
        )
        for i in range(total)
    ]


def chunk_capacity(
    size: int,
    message_id: str,
    max_frame_bytes: int,
    request_id: str | None = None,
    reply_to: str | None = None,
) -> int:
    """How many payload bytes one chunk of a ``size``-byte message can carry."""
    worst = str(size)  # index and total never have more digits than the size
    empty = encode(Chunk(message_id, int(worst), int(worst), "", request_id, reply_to))
    step = (max_frame_bytes - len(empty.encode())) // 4 * 3
    if step <= 0:
        raise ValueError(f"max_frame_bytes={max_frame_bytes} leaves no room for chunk data")
    return step


# ---------------------------------------------------------------- reassembly


class ChunkRefused(ProtocolError):
    """The :class:`Reassembler` dropped the message ``chunk`` belongs to (``problem`` says
    why); its other chunks are ignored. An invoke's chunk names whom to tell."""

    def __init__(self, chunk: Chunk, problem: str) -> None:
        super().__init__(f"chunked message {chunk.message_id[:64]!r}: {problem}")
        self.chunk = chunk
        self.problem = problem


@dataclass
class _Pending:
    total: int
    started: float
    parts: dict[int, bytes] = field(default_factory=dict)
    size: int = 0


class Reassembler:
    """Collects ``chunk`` messages until a message is complete.

    Limits: a message larger than ``max_message_bytes`` is dropped; at most ``max_pending``
    messages may be incomplete at once; a message still incomplete ``timeout`` seconds after
    its first chunk is dropped (measured with ``clock``, injected for tests). Every violation
    raises :class:`ChunkRefused` (a :class:`ProtocolError`) once and forgets the offending
    message, ignoring its other chunks; other messages are kept.
    """

    def __init__(
        self,
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_pending: int = DEFAULT_MAX_PENDING,
        timeout: float = DEFAULT_REASSEMBLY_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_message_bytes = max_message_bytes
        self.max_pending = max_pending
        self.timeout = timeout
        self._clock = clock
        self._pending: dict[str, _Pending] = {}
        self._refused: OrderedDict[str, None] = OrderedDict()

    @property
    def pending(self) -> int:
        """How many messages are incomplete."""
        return len(self._pending)

    def expire(self) -> list[str]:
        """Drop the messages that timed out; returns their ids."""
        now = self._clock()
        stale = [mid for mid, p in self._pending.items() if now - p.started >= self.timeout]
        for mid in stale:
            del self._pending[mid]
        return stale

    def add(self, chunk: Chunk) -> str | None:
        """Take one chunk; the whole encoded message once its last chunk arrived."""
        if chunk.message_id in self._refused:
            return None  # the rest of a message already refused
        return self._add(chunk, self._data(chunk))

    def _add(self, chunk: Chunk, data: bytes) -> str | None:
        if not data:
            self._drop(chunk, "carries no data")
        pending = self._pending.get(chunk.message_id)
        if pending is None:
            pending = self._start(chunk)
        elif pending.total != chunk.total:
            self._drop(chunk, f"says {chunk.total} chunks, an earlier one said {pending.total}")
        if not 0 <= chunk.index < chunk.total:
            self._drop(chunk, f"index {chunk.index} is out of range for {chunk.total} chunks")
        seen = pending.parts.get(chunk.index)
        if seen is not None:
            if seen != data:
                self._drop(chunk, f"chunk {chunk.index} arrived twice with different data")
            return None  # an identical retry
        pending.size += len(data)
        if pending.size > self.max_message_bytes:
            self._drop(chunk, f"exceeds the limit of {self.max_message_bytes} bytes")
        pending.parts[chunk.index] = data
        if len(pending.parts) < pending.total:
            return None
        del self._pending[chunk.message_id]
        whole = b"".join(pending.parts[i] for i in range(pending.total))
        try:
            return whole.decode()
        except UnicodeDecodeError:
            self._drop(chunk, "not valid UTF-8")

    def feed(self, frame: str | bytes) -> Message | None:
        """Decode one frame; chunks are collected and the message returned once complete."""
        fast = _read_raw_chunk(frame) or _read_chunk(frame)
        if fast is not None:
            chunk, data = fast
            whole = None if chunk.message_id in self._refused else self._add(chunk, data)
        else:
            message = decode(frame)
            if not isinstance(message, Chunk):
                return message
            chunk = message
            whole = self.add(chunk)
        if whole is None:
            return None
        try:
            message = decode(whole)
        except ProtocolError as exc:
            self._drop(chunk, str(exc))
        if isinstance(message, Chunk):
            self._drop(chunk, "a chunked message cannot itself be a chunk")
        return message

    def _start(self, chunk: Chunk) -> _Pending:
        if chunk.total < 1 or chunk.total > self.max_message_bytes:
            self._drop(chunk, f"total {chunk.total} is out of range")
        if len(self._pending) >= self.max_pending:
            self.expire()
        if len(self._pending) >= self.max_pending:
            self._drop(
                chunk, f"too many incomplete chunked messages at once (limit {self.max_pending})"
            )
        pending = _Pending(total=chunk.total, started=self._clock())
        self._pending[chunk.message_id] = pending
        return pending

    def _data(self, chunk: Chunk) -> bytes:
        try:
            data = base64.b64decode(chunk.data.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error):
            self._drop(chunk, "data is not valid base64")
        return data  # empty data is refused by _add

    def _drop(self, chunk: Chunk, problem: str) -> NoReturn:
        self._pending.pop(chunk.message_id, None)
        self._refused[chunk.message_id] = None
        if len(self._refused) > REFUSED_KEPT:
            self._refused.popitem(last=False)
        raise ChunkRefused(chunk, problem)


# A chunk frame as split() writes it. Its data is base64 and its other strings here have
# nothing JSON escapes, so such a frame is read with a match and a slice, without a JSON
# parser (parsing a 120 KB frame costs about a third of decoding its base64). Anything else,
# including every invalid chunk, takes the general path (decode), which reports it.
_CHUNK_HEAD = re.compile(
    rf'\{{"action":"{Chunk.TYPE}","v":{PROTOCOL_VERSION},"message_id":"([0-9A-Za-z_-]{{1,64}})",'
    r'"index":(0|[1-9][0-9]{0,8}),"total":([1-9][0-9]{0,8}),"data":"'
)
_PLAIN = r'"([^"\\\x00-\x1f]*)"'  # a JSON string without escapes: its value is its text
_CHUNK_TAIL = re.compile(rf'"(?:,"request_id":{_PLAIN})?(?:,"reply_to":{_PLAIN})?\}}\Z')


_CHUNK_HEAD_BYTES = re.compile(_CHUNK_HEAD.pattern.encode())
_CHUNK_TAIL_BYTES = re.compile(_CHUNK_TAIL.pattern.encode())
CHUNK_PREFIX_TEXT = f'{{"action":"{Chunk.TYPE}",'  # how every frame split() writes starts
CHUNK_PREFIX = CHUNK_PREFIX_TEXT.encode()
RAW_SEPARATOR = b"\n"  # ends a raw chunk's head
RAW_HEAD_MAX = 2048  # a raw chunk's head: its ids are at most a few hundred bytes


def _read_raw_chunk(frame: str | bytes) -> tuple[Chunk, bytes] | None:
    """The chunk and the data of a raw chunk frame (see :func:`raw_chunks`); None for any
    other frame. A raw frame whose head is not a valid chunk with empty ``data`` raises
    :class:`ProtocolError`, as :func:`decode` says."""
    if isinstance(frame, str):
        end = frame.find("\n", 0, RAW_HEAD_MAX) if frame.startswith(CHUNK_PREFIX_TEXT) else -1
        if end < 0:
            return None
        head: str | bytes = frame[:end]
        data = frame[end + 1 :].encode()
    else:
        end = frame.find(RAW_SEPARATOR, 0, RAW_HEAD_MAX) if frame.startswith(CHUNK_PREFIX) else -1
        if end < 0:
            return None
        head, data = frame[:end], frame[end + 1 :]
    chunk = decode(head)
    if not isinstance(chunk, Chunk) or chunk.data:
        raise ProtocolError("a raw chunk's head must be a chunk message without data")
    return chunk, data


def _read_chunk(frame: str | bytes) -> tuple[Chunk, bytes] | None:
    """The chunk in ``frame`` (its text or its UTF-8 bytes) and its decoded data, if the
    frame is a valid chunk written as split() writes it; None for anything else."""
    if isinstance(frame, str):
        return _read_chunk_text(frame)
    head = _CHUNK_HEAD_BYTES.match(frame)
    if head is None:
        return None
    index, total = int(head.group(2)), int(head.group(3))
    end = frame.find(b'"', head.end())
    tail = _CHUNK_TAIL_BYTES.match(frame, end) if index < total and end > 0 else None
    if tail is None:
        return None
    try:
        data = base64.b64decode(memoryview(frame)[head.end() : end], validate=True)
        request_id, reply_to = (None if g is None else g.decode() for g in tail.groups())
    except (binascii.Error, UnicodeDecodeError):
        return None
    if not data:
        return None
    text = frame[head.end() : end].decode("ascii")  # base64: ASCII
    return Chunk(head.group(1).decode(), index, total, text, request_id, reply_to), data


def _read_chunk_text(frame: str) -> tuple[Chunk, bytes] | None:
    head = _CHUNK_HEAD.match(frame)
    if head is None:
        return None
    index, total = int(head.group(2)), int(head.group(3))
    end = frame.find('"', head.end())
    tail = _CHUNK_TAIL.match(frame, end) if index < total and end > 0 else None
    if tail is None:
        return None
    text = frame[head.end() : end]
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        return None
    if not data:
        return None
    return Chunk(head.group(1), index, total, text, tail.group(1), tail.group(2)), data
