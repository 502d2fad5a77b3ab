"""The relay messages between the stub, the router and the runner: pure, stdlib only.

Every message is one JSON object in one WebSocket text frame. Its ``action`` names the
message type (and doubles as the API Gateway route key, selected on
``$request.body.action``); ``v`` is the protocol version. Unknown extra fields are ignored so
a newer peer may add optional fields; a missing or mistyped field, an unknown type or another
version is a :class:`ProtocolError` (the caller decides whether the connection survives).

API Gateway accepts at most 32 KB per frame and 128 KB per message, while Lambda payloads go
up to 6 MB. :func:`split` turns an encoded message that is too big into ``chunk`` messages
(base64 slices of its UTF-8 bytes, each chunk's JSON at most ``max_frame_bytes``), and a
:class:`Reassembler` puts them back together in any arrival order, with limits. That carries
everything up to Lambda's 6 MB.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, Union

if TYPE_CHECKING:
    from typing import TypeAlias

PROTOCOL_VERSION = 1
FRAME_LIMIT_BYTES = 32 * 1024  # API Gateway WebSocket frame limit
MESSAGE_LIMIT_BYTES = 128 * 1024  # API Gateway WebSocket message limit
DEFAULT_MAX_FRAME_BYTES = 30 * 1024  # a chunk's encoded JSON: 2 KB of headroom per frame
LAMBDA_PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024
# An encoded invoke is the 6 MB event plus the envelope (context, environment, escaping).
DEFAULT_MAX_MESSAGE_BYTES = 7 * 1024 * 1024
DEFAULT_MAX_PENDING = 64
DEFAULT_REASSEMBLY_TIMEOUT = 60.0
REFUSED_KEPT = 1024  # refused message ids remembered, so their other chunks are ignored

# Never relayed to the developer's machine: the runner uses the developer's own credentials.
CREDENTIAL_VARIABLES = frozenset(
    {"AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
     "AWS_SECURITY_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
     "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"}
)  # fmt: skip
# The container credential provider's endpoint (and its token above): the SDKs fetch the
# role's credentials from it, so it is as secret as the keys. Lambda runtimes that serve
# credentials this way set them; see
# https://docs.aws.amazon.com/sdkref/latest/guide/feature-container-credentials.html
CREDENTIAL_PREFIXES = ("AWS_CONTAINER_CREDENTIALS_",)


def is_credential(name: str) -> bool:
    """True for an environment variable that holds (or leads to) AWS credentials."""
    return name in CREDENTIAL_VARIABLES or name.startswith(CREDENTIAL_PREFIXES)


Json: TypeAlias = Any


# In an Invoke's environment: the function's execution role, which `pylive dev --assume-role`
# runs the function with (dev-mode stacks let the account assume it).
ROLE_ARN_VARIABLE = "PYLIVE_ROLE_ARN"

# What names a route's response (see :class:`WhoAmI`) where relay messages have ``action``.
REPLY_KEY = "type"


class ProtocolError(ValueError):
    """A frame or chunk that is not a valid relay message; the message says what is wrong."""


# ---------------------------------------------------------------- messages


@dataclass(frozen=True)
class InvokeContext:
    """The Lambda context fields the runner cannot know by itself."""

    invoked_function_arn: str
    trace_id: str | None = None
    client_context: dict[str, Json] | None = None
    identity: dict[str, Json] | None = None


@dataclass(frozen=True)
class Invoke:
    """One invocation: run ``function_id`` on ``event`` before ``deadline_ms`` (epoch ms)."""

    TYPE: ClassVar[str] = "invoke"
    request_id: str
    function_id: str
    deadline_ms: int
    event: Json
    context: InvokeContext
    environment: dict[str, str] = field(default_factory=dict)
    reply_to: str | None = None  # the stub's connection id: where the answer goes
    # Sent again by a stub that had its ack: it reconnected (the answer goes to ``reply_to``
    # now) or its runner did. A runner that does not know the request answers with an error
    # instead of running it a second time.
    resume: bool = False

    def __post_init__(self) -> None:
        leaked = sorted(name for name in self.environment if is_credential(name))
        if leaked:
            raise ProtocolError(f"invoke: environment carries credentials ({', '.join(leaked)})")


@dataclass(frozen=True)
class Ack:
    """The runner took the invocation; the stub stops waiting for "is anyone there"."""

    TYPE: ClassVar[str] = "ack"
    request_id: str


@dataclass(frozen=True)
class Result:
    """The handler returned ``payload`` (any JSON value)."""

    TYPE: ClassVar[str] = "result"
    request_id: str
    payload: Json


@dataclass(frozen=True)
class Error:
    """The invocation failed: ``error`` is the Lambda error payload (``errorMessage``,
    optionally ``errorType``, ``stackTrace``, ``requestId``)."""

    TYPE: ClassVar[str] = "error"
    request_id: str
    error: dict[str, Json]

    @property
    def error_type(self) -> str | None:
        value = self.error.get("errorType")
        return value if isinstance(value, str) else None

    @property
    def error_message(self) -> str:
        return str(self.error.get("errorMessage", ""))


@dataclass(frozen=True)
class Log:
    """Output of the handler while it runs, streamed to whoever watches the invocation."""

    TYPE: ClassVar[str] = "log"
    request_id: str
    text: str
    stream: str = "stdout"


@dataclass(frozen=True)
class Ping:
    """Liveness probe; answered with a :class:`Pong` carrying the same ``id``."""

    TYPE: ClassVar[str] = "ping"
    id: str


@dataclass(frozen=True)
class Pong:
    """Answer to a :class:`Ping`."""

    TYPE: ClassVar[str] = "pong"
    id: str


@dataclass(frozen=True)
class Chunk:
    """Slice ``index`` of ``total`` of the encoded message ``message_id`` (base64 ``data``).

    The chunks of an invoke also carry its ``request_id`` and ``reply_to``: a runner that
    cannot take the message (see :class:`Reassembler`'s limits) can still answer it."""

    TYPE: ClassVar[str] = "chunk"
    message_id: str
    index: int
    total: int
    data: str
    request_id: str | None = None
    reply_to: str | None = None


@dataclass(frozen=True)
class Replaced:
    """From the router to a runner: a newer runner connected for the same app and stage, so
    this one gets no more invocations (it stops, saying ``reason``)."""

    TYPE: ClassVar[str] = "replaced"
    app: str
    stage: str
    reason: str


@dataclass(frozen=True)
class WhoAmIRequest:
    """From a stub to the router: which connection am I, and which is my runner's?"""

    TYPE: ClassVar[str] = "whoami"


@dataclass(frozen=True)
class WhoAmI:
    """The router's answer to :class:`WhoAmIRequest`: the stub's own connection id and its
    runner's (None, with ``error`` saying why, when no runner is connected).

    It is the route's response rather than a relay message, and keeps the shape stubs of
    every version know it by: ``{"type": "whoami", ...}``, with no ``action`` or ``v``."""

    TYPE: ClassVar[str] = "whoami"
    connection_id: str
    runner: str | None
    error: str | None = None


# Union, not X | Y: the stub runs this module on every Python runtime from 3.9 on.
Message: TypeAlias = Union[  # noqa: UP007
    Invoke, Ack, Result, Error, Log, Ping, Pong, Chunk, Replaced, WhoAmIRequest, WhoAmI
]

_LOG_STREAMS = ("stdout", "stderr")


# ---------------------------------------------------------------- encoding


def encode(message: Message) -> str:
    """The message as the compact JSON text of one frame."""
    body: dict[str, Json]
    if isinstance(message, WhoAmI):  # a route's response: no action, no version
        body = {REPLY_KEY: message.TYPE, "connection_id": message.connection_id}
        body["runner"] = message.runner
        if message.error is not None:
            body["error"] = message.error
    elif isinstance(message, Invoke):
        body = _head(message)
        body.update(
            request_id=message.request_id,
            function_id=message.function_id,
            deadline_ms=message.deadline_ms,
            event=message.event,
            context=_context_fields(message.context),
            environment=message.environment,
        )
        if message.reply_to is not None:
            body["reply_to"] = message.reply_to
        if message.resume:
            body["resume"] = True
    elif isinstance(message, Chunk):  # the optional fields only when set
        body = _head(message)
        body.update((k, v) for k, v in message.__dict__.items() if v is not None)
    else:
        body = _head(message)
        body.update(message.__dict__)
    try:
        return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"{message.TYPE}: cannot encode as JSON: {exc}") from None


def _head(message: Message) -> dict[str, Json]:
    return {"action": message.TYPE, "v": PROTOCOL_VERSION}


def decode(frame: str | bytes) -> Message:
    """Parse and validate one frame; anything invalid raises :class:`ProtocolError`."""
    try:
        body = json.loads(frame, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ProtocolError(f"not a JSON message: {_short(exc)}") from None
    if not isinstance(body, dict):
        raise ProtocolError(f"a message must be a JSON object, not {_json_type(body)}")
    action = body.get("action")
    if action is None and body.get(REPLY_KEY) == WhoAmI.TYPE:
        return _parse_whoami(_Fields(WhoAmI.TYPE, body))
    if not isinstance(action, str):
        raise ProtocolError("message has no 'action' string naming its type")
    parse = _PARSERS.get(action)
    if parse is None:
        raise ProtocolError(f"unknown message type {action[:64]!r}")
    version = body.get("v")
    if version != PROTOCOL_VERSION or isinstance(version, bool):
        raise ProtocolError(
            f"{action}: protocol version {_show(version)} is not supported "
            f"(this side speaks {PROTOCOL_VERSION})"
        )
    return parse(_Fields(action, body))


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def strip_credentials(environment: Mapping[str, str]) -> dict[str, str]:
    """The function's environment without the variables that hold its credentials."""
    return {k: v for k, v in environment.items() if not is_credential(k)}


def _context_fields(context: InvokeContext) -> dict[str, Json]:
    return dict(context.__dict__)


# ---------------------------------------------------------------- validation


class _Fields:
    """Typed access to the fields of one decoded message, with clear errors."""

    def __init__(self, where: str, body: Mapping[str, Json]) -> None:
        self.where = where
        self.body = body

    def _get(self, name: str, optional: bool) -> Json:
        if name not in self.body:
            if optional:
                return None
            raise ProtocolError(f"{self.where}: missing field {name!r}")
        return self.body[name]

    def _fail(self, name: str, expected: str, value: Json) -> ProtocolError:
        return ProtocolError(f"{self.where}: field {name!r} must be {expected}, not {_show(value)}")

    def text(self, name: str) -> str:
        value = self._get(name, False)
        if not isinstance(value, str):
            raise self._fail(name, "a string", value)
        return value

    def opt_text(self, name: str) -> str | None:
        value = self._get(name, True)
        if value is not None and not isinstance(value, str):
            raise self._fail(name, "a string or null", value)
        return value

    def integer(self, name: str, minimum: int = 0) -> int:
        value = self._get(name, False)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._fail(name, "an integer", value)
        if value < minimum:
            raise self._fail(name, f"an integer >= {minimum}", value)
        return value

    def obj(self, name: str) -> dict[str, Json]:
        value = self._get(name, False)
        if not isinstance(value, dict):
            raise self._fail(name, "an object", value)
        return value

    def opt_bool(self, name: str) -> bool:
        value = self._get(name, True)
        if value is not None and not isinstance(value, bool):
            raise self._fail(name, "true or false", value)
        return bool(value)

    def opt_obj(self, name: str) -> dict[str, Json] | None:
        value = self._get(name, True)
        if value is not None and not isinstance(value, dict):
            raise self._fail(name, "an object or null", value)
        return value

    def value(self, name: str) -> Json:
        return self._get(name, False)

    def nested(self, name: str) -> _Fields:
        return _Fields(f"{self.where}.{name}", self.obj(name))


def _parse_whoami(f: _Fields) -> WhoAmI:
    return WhoAmI(
        connection_id=f.text("connection_id"),
        runner=f.opt_text("runner"),
        error=f.opt_text("error"),
    )


def _parse_invoke(f: _Fields) -> Invoke:
    c = f.nested("context")
    context = InvokeContext(
        invoked_function_arn=c.text("invoked_function_arn"),
        trace_id=c.opt_text("trace_id"),
        client_context=c.opt_obj("client_context"),
        identity=c.opt_obj("identity"),
    )
    environment = f.obj("environment")
    for key, value in environment.items():
        if not isinstance(value, str):
            raise ProtocolError(f"invoke: environment variable {key!r} must be a string")
    return Invoke(
        request_id=f.text("request_id"),
        function_id=f.text("function_id"),
        deadline_ms=f.integer("deadline_ms"),
        event=f.value("event"),
        context=context,
        environment=environment,
        reply_to=f.opt_text("reply_to"),
        resume=f.opt_bool("resume"),
    )


def _parse_error(f: _Fields) -> Error:
    error = f.obj("error")
    e = _Fields("error.error", error)
    e.text("errorMessage")
    e.opt_text("errorType")
    trace = error.get("stackTrace")
    if trace is not None and not (
        isinstance(trace, list) and all(isinstance(line, str) for line in trace)
    ):
        raise ProtocolError("error: 'error.stackTrace' must be a list of strings")
    return Error(request_id=f.text("request_id"), error=error)


def _parse_log(f: _Fields) -> Log:
    stream = f.opt_text("stream") or "stdout"
    if stream not in _LOG_STREAMS:
        raise ProtocolError(f"log: field 'stream' must be 'stdout' or 'stderr', not {stream!r}")
    return Log(request_id=f.text("request_id"), text=f.text("text"), stream=stream)


def _parse_chunk(f: _Fields) -> Chunk:
    total = f.integer("total", minimum=1)
    index = f.integer("index")
    if index >= total:
        raise ProtocolError(f"chunk: index {index} is out of range for {total} chunks")
    return Chunk(
        message_id=f.text("message_id"),
        index=index,
        total=total,
        data=f.text("data"),
        request_id=f.opt_text("request_id"),
        reply_to=f.opt_text("reply_to"),
    )


_PARSERS: dict[str, Callable[[_Fields], Message]] = {
    Invoke.TYPE: _parse_invoke,
    Ack.TYPE: lambda f: Ack(request_id=f.text("request_id")),
    Result.TYPE: lambda f: Result(request_id=f.text("request_id"), payload=f.value("payload")),
    Error.TYPE: _parse_error,
    Log.TYPE: _parse_log,
    Ping.TYPE: lambda f: Ping(id=f.text("id")),
    Pong.TYPE: lambda f: Pong(id=f.text("id")),
    Chunk.TYPE: _parse_chunk,
    Replaced.TYPE: lambda f: Replaced(
        app=f.text("app"), stage=f.text("stage"), reason=f.text("reason")
    ),
    WhoAmIRequest.TYPE: lambda f: WhoAmIRequest(),
}

MESSAGE_TYPES = frozenset(_PARSERS)


def _show(value: Json) -> str:
    return f"{_json_type(value)} {_short(value)}" if value is not None else "null"


def _short(value: object, limit: int = 60) -> str:
    text = repr(value) if not isinstance(value, BaseException) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_type(value: Json) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):  # not int | float: Python 3.9 runs this too
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"


# ---------------------------------------------------------------- splitting


def split(
    frame: str,
    *,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    message_id: str | None = None,
    request_id: str | None = None,
    reply_to: str | None = None,
) -> list[str]:
    """The frames that carry ``frame``: itself if it fits, else encoded ``chunk`` messages
    (carrying ``request_id`` and ``reply_to`` when given: see :class:`Chunk`).

    Each returned frame's UTF-8 size is at most ``max_frame_bytes``.
    """
    data = frame.encode()
    if len(data) <= max_frame_bytes:
        return [frame]
    return [
        chunk.decode() for chunk in _chunks(data, max_frame_bytes, message_id, request_id, reply_to)
    ]


def split_encoded(
    frame: str,
    *,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    message_id: str | None = None,
    request_id: str | None = None,
    reply_to: str | None = None,
) -> list[bytes]:
    """:func:`split`'s frames as the UTF-8 bytes that are sent: a large message's chunks are
    built as bytes, without a copy of each as text and back."""
    data = frame.encode()
    if len(data) <= max_frame_bytes:
        return [data]
    return _chunks(data, max_frame_bytes, message_id, request_id, reply_to)


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
        fast = _read_chunk(frame)
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
        if not data:
            self._drop(chunk, "carries no data")
        return data

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
CHUNK_PREFIX = f'{{"action":"{Chunk.TYPE}",'.encode()  # how every frame split() writes starts


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
