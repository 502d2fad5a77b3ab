"""The relay's messages, one frozen dataclass each (``TYPE`` is the ``action`` it travels as)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Union

from pylive.in_lambda.protocol.environment import is_credential

if TYPE_CHECKING:
    from typing import TypeAlias

Json: TypeAlias = Any

# What names a route's response (see :class:`WhoAmI`) where relay messages have ``action``.
REPLY_KEY = "type"


class ProtocolError(ValueError):
    """A frame or chunk that is not a valid relay message; the message says what is wrong."""


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
    """Slice ``index`` of ``total`` of the encoded message ``message_id`` (base64 ``data``;
    in a raw chunk frame ``data`` is empty and the slice follows the message's newline).

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
