"""Messages to and from the JSON text of one frame, with every field checked on the way in."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import NoReturn

from pylive.in_lambda.protocol import messages as m
from pylive.in_lambda.protocol.limits import PROTOCOL_VERSION

# ---------------------------------------------------------------- encoding


def encode(message: m.Message) -> str:
    """The message as the compact JSON text of one frame."""
    body: dict[str, m.Json]
    if isinstance(message, m.WhoAmI):  # a route's response: no action, no version
        body = {m.REPLY_KEY: message.TYPE, "connection_id": message.connection_id}
        body["runner"] = message.runner
        if message.error is not None:
            body["error"] = message.error
    elif isinstance(message, m.Invoke):
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
    elif isinstance(message, m.Chunk):  # the optional fields only when set
        body = _head(message)
        body.update((k, v) for k, v in message.__dict__.items() if v is not None)
    else:
        body = _head(message)
        body.update(message.__dict__)
    try:
        return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise m.ProtocolError(f"{message.TYPE}: cannot encode as JSON: {exc}") from None


def _head(message: m.Message) -> dict[str, m.Json]:
    return {"action": message.TYPE, "v": PROTOCOL_VERSION}


def decode(frame: str | bytes) -> m.Message:
    """Parse and validate one frame; anything invalid raises :class:`ProtocolError`."""
    try:
        body = json.loads(frame, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise m.ProtocolError(f"not a JSON message: {_short(exc)}") from None
    if not isinstance(body, dict):
        raise m.ProtocolError(f"a message must be a JSON object, not {_json_type(body)}")
    action = body.get("action")
    if action is None and body.get(m.REPLY_KEY) == m.WhoAmI.TYPE:
        return _parse_whoami(_Fields(m.WhoAmI.TYPE, body))
    if not isinstance(action, str):
        raise m.ProtocolError("message has no 'action' string naming its type")
    parse = _PARSERS.get(action)
    if parse is None:
        raise m.ProtocolError(f"unknown message type {action[:64]!r}")
    version = body.get("v")
    if version != PROTOCOL_VERSION or isinstance(version, bool):
        raise m.ProtocolError(
            f"{action}: protocol version {_show(version)} is not supported "
            f"(this side speaks {PROTOCOL_VERSION})"
        )
    return parse(_Fields(action, body))


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _context_fields(context: m.InvokeContext) -> dict[str, m.Json]:
    return dict(context.__dict__)


# ---------------------------------------------------------------- validation


class _Fields:
    """Typed access to the fields of one decoded message, with clear errors."""

    def __init__(self, where: str, body: Mapping[str, m.Json]) -> None:
        self.where = where
        self.body = body

    def _get(self, name: str, optional: bool) -> m.Json:
        if name not in self.body:
            if optional:
                return None
            raise m.ProtocolError(f"{self.where}: missing field {name!r}")
        return self.body[name]

    def _fail(self, name: str, expected: str, value: m.Json) -> m.ProtocolError:
        return m.ProtocolError(
            f"{self.where}: field {name!r} must be {expected}, not {_show(value)}"
        )

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

    def obj(self, name: str) -> dict[str, m.Json]:
        value = self._get(name, False)
        if not isinstance(value, dict):
            raise self._fail(name, "an object", value)
        return value

    def opt_bool(self, name: str) -> bool:
        value = self._get(name, True)
        if value is not None and not isinstance(value, bool):
            raise self._fail(name, "true or false", value)
        return bool(value)

    def opt_obj(self, name: str) -> dict[str, m.Json] | None:
        value = self._get(name, True)
        if value is not None and not isinstance(value, dict):
            raise self._fail(name, "an object or null", value)
        return value

    def value(self, name: str) -> m.Json:
        return self._get(name, False)

    def nested(self, name: str) -> _Fields:
        return _Fields(f"{self.where}.{name}", self.obj(name))


def _parse_whoami(f: _Fields) -> m.WhoAmI:
    return m.WhoAmI(
        connection_id=f.text("connection_id"),
        runner=f.opt_text("runner"),
        error=f.opt_text("error"),
    )


def _parse_invoke(f: _Fields) -> m.Invoke:
    c = f.nested("context")
    context = m.InvokeContext(
        invoked_function_arn=c.text("invoked_function_arn"),
        trace_id=c.opt_text("trace_id"),
        client_context=c.opt_obj("client_context"),
        identity=c.opt_obj("identity"),
    )
    environment = f.obj("environment")
    for key, value in environment.items():
        if not isinstance(value, str):
            raise m.ProtocolError(f"invoke: environment variable {key!r} must be a string")
    return m.Invoke(
        request_id=f.text("request_id"),
        function_id=f.text("function_id"),
        deadline_ms=f.integer("deadline_ms"),
        event=f.value("event"),
        context=context,
        environment=environment,
        reply_to=f.opt_text("reply_to"),
        resume=f.opt_bool("resume"),
    )


def _parse_error(f: _Fields) -> m.Error:
    error = f.obj("error")
    e = _Fields("error.error", error)
    e.text("errorMessage")
    e.opt_text("errorType")
    trace = error.get("stackTrace")
    if trace is not None and not (
        isinstance(trace, list) and all(isinstance(line, str) for line in trace)
    ):
        raise m.ProtocolError("error: 'error.stackTrace' must be a list of strings")
    return m.Error(request_id=f.text("request_id"), error=error)


def _parse_log(f: _Fields) -> m.Log:
    stream = f.opt_text("stream") or "stdout"
    if stream not in m._LOG_STREAMS:
        raise m.ProtocolError(f"log: field 'stream' must be 'stdout' or 'stderr', not {stream!r}")
    return m.Log(request_id=f.text("request_id"), text=f.text("text"), stream=stream)


def _parse_chunk(f: _Fields) -> m.Chunk:
    total = f.integer("total", minimum=1)
    index = f.integer("index")
    if index >= total:
        raise m.ProtocolError(f"chunk: index {index} is out of range for {total} chunks")
    return m.Chunk(
        message_id=f.text("message_id"),
        index=index,
        total=total,
        data=f.text("data"),
        request_id=f.opt_text("request_id"),
        reply_to=f.opt_text("reply_to"),
    )


_PARSERS: dict[str, Callable[[_Fields], m.Message]] = {
    m.Invoke.TYPE: _parse_invoke,
    m.Ack.TYPE: lambda f: m.Ack(request_id=f.text("request_id")),
    m.Result.TYPE: lambda f: m.Result(request_id=f.text("request_id"), payload=f.value("payload")),
    m.Error.TYPE: _parse_error,
    m.Log.TYPE: _parse_log,
    m.Ping.TYPE: lambda f: m.Ping(id=f.text("id")),
    m.Pong.TYPE: lambda f: m.Pong(id=f.text("id")),
    m.Chunk.TYPE: _parse_chunk,
    m.Replaced.TYPE: lambda f: m.Replaced(
        app=f.text("app"), stage=f.text("stage"), reason=f.text("reason")
    ),
    m.WhoAmIRequest.TYPE: lambda f: m.WhoAmIRequest(),
}

MESSAGE_TYPES = frozenset(_PARSERS)


def _show(value: m.Json) -> str:
    return f"{_json_type(value)} {_short(value)}" if value is not None else "null"


def _short(value: object, limit: int = 60) -> str:
    text = repr(value) if not isinstance(value, BaseException) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_type(value: m.Json) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):  # not int | float: Python 3.9 runs this too
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"
