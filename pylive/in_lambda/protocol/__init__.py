"""The relay messages between the stub, the router and the runner: pure, stdlib only.

Every message is one JSON object in one WebSocket text frame (raw chunks, below, add a slice
after it). Its ``action`` names the message type (and doubles as the API Gateway route key,
selected on ``$request.body.action``); ``v`` is the protocol version. Unknown extra fields
are ignored so a newer peer may add optional fields; a missing or mistyped field, an unknown
type or another version is a :class:`ProtocolError` (the caller decides whether the
connection survives).

API Gateway accepts at most 32 KB per frame and 128 KB per message, while Lambda payloads go
up to 6 MB. :func:`split` turns an encoded message that is too big into ``chunk`` messages
(base64 slices of its UTF-8 bytes, each chunk's JSON at most ``max_frame_bytes``), and a
:class:`Reassembler` puts them back together in any arrival order, with limits. That carries
everything up to Lambda's 6 MB. What the stub and the runner send are *raw* chunks
(``split(..., raw=True)``): a chunk message with empty ``data``, a newline, then the slice
itself, cut on a character boundary, so the frame is still UTF-8 text but nothing is encoded
or escaped. The :class:`Reassembler` reads both kinds.

The parts: :mod:`.messages` (one dataclass per message), :mod:`.codec` (to and from JSON,
checked), :mod:`.chunks` (splitting and reassembly), :mod:`.limits` and :mod:`.environment`
(what of a function's environment is relayed).
"""

from pylive.in_lambda.protocol.chunks import (
    CHUNK_PREFIX,
    ChunkRefused,
    Reassembler,
    chunk_capacity,
    split,
    split_encoded,
)
from pylive.in_lambda.protocol.codec import MESSAGE_TYPES, decode, encode
from pylive.in_lambda.protocol.environment import (
    CREDENTIAL_PREFIXES,
    CREDENTIAL_VARIABLES,
    ROLE_ARN_VARIABLE,
    is_credential,
    strip_credentials,
)
from pylive.in_lambda.protocol.limits import (
    DEFAULT_MAX_FRAME_BYTES,
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_MAX_PENDING,
    DEFAULT_REASSEMBLY_TIMEOUT,
    FRAME_LIMIT_BYTES,
    LAMBDA_PAYLOAD_LIMIT_BYTES,
    MESSAGE_LIMIT_BYTES,
    PROTOCOL_VERSION,
    REFUSED_KEPT,
)
from pylive.in_lambda.protocol.messages import (
    REPLY_KEY,
    Ack,
    Chunk,
    Error,
    Invoke,
    InvokeContext,
    Json,
    Log,
    Message,
    Ping,
    Pong,
    ProtocolError,
    Replaced,
    Result,
    WhoAmI,
    WhoAmIRequest,
)

__all__ = [
    "CHUNK_PREFIX",
    "CREDENTIAL_PREFIXES",
    "CREDENTIAL_VARIABLES",
    "DEFAULT_MAX_FRAME_BYTES",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_MAX_PENDING",
    "DEFAULT_REASSEMBLY_TIMEOUT",
    "FRAME_LIMIT_BYTES",
    "LAMBDA_PAYLOAD_LIMIT_BYTES",
    "MESSAGE_LIMIT_BYTES",
    "MESSAGE_TYPES",
    "PROTOCOL_VERSION",
    "REFUSED_KEPT",
    "REPLY_KEY",
    "ROLE_ARN_VARIABLE",
    "Ack",
    "Chunk",
    "ChunkRefused",
    "Error",
    "Invoke",
    "InvokeContext",
    "Json",
    "Log",
    "Message",
    "Ping",
    "Pong",
    "ProtocolError",
    "Reassembler",
    "Replaced",
    "Result",
    "WhoAmI",
    "WhoAmIRequest",
    "chunk_capacity",
    "decode",
    "encode",
    "is_credential",
    "split",
    "split_encoded",
    "strip_credentials",
]
