"""Messages to and from the JSON text of one frame, with every field checked on the way in."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import NoReturn

from pylive.in_lambda.protocol.limits import PROTOCOL_VERSION
from pylive.in_lambda.protocol.messages import (
    _LOG_STREAMS,
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
