"""What the relay client answers a stub: a result or error message from the pool's result,
pylive's own errors (no such function, a failure of its own, an answer over the relay's
limit) and the recent answers kept for a stub that asks again."""

from __future__ import annotations

import json
import time
from collections import OrderedDict

from pylive import exact_json
from pylive.in_lambda import protocol
from pylive.runner.invocation import InvokeResult
from pylive.sandbox.errors import HANDLER_NOT_FOUND, PYLIVE_ERROR, RELAY_ERROR, error_fields

MAX_MESSAGE_BYTES = 16 * 1024 * 1024


def answer_of(request_id: str, result: InvokeResult) -> protocol.Message:
    try:
        payload = exact_json.loads(result.body)
    except ValueError:
        payload = None
        if result.ok:  # a bytes result (application/unknown) travels as text
            return protocol.Result(request_id, result.body.decode("utf-8", "replace"))
    if result.ok:
        return protocol.Result(request_id, payload)
    if not isinstance(payload, dict) or not isinstance(payload.get("errorMessage"), str):
        payload = {"errorMessage": result.body.decode("utf-8", "replace")}
    return protocol.Error(request_id, payload)


def within_limit(message: protocol.Message, encoded: str) -> str:
    """``encoded``, or an error naming the limit when it is over the relay's limit for one
    message, which the stub would drop and then wait until the deadline. The worker pool
    already refuses results over Lambda's 6 MB; this catches what grows in transit (a bytes
    result carried as escaped text, an error message of many megabytes)."""
    if len(encoded) * 4 <= MAX_MESSAGE_BYTES:  # UTF-8 takes at most 4 bytes a character
        return encoded
    size = len(encoded) if encoded.isascii() else len(encoded.encode())
    if size <= MAX_MESSAGE_BYTES:
        return encoded
    error = error_fields(
        f"the answer to {request_id_of(message)} is {size} bytes encoded, over the "
        f"relay's limit of {MAX_MESSAGE_BYTES} bytes for one message",
        RELAY_ERROR,
    )
    return protocol.encode(protocol.Error(request_id_of(message), error))


def unknown_function(invoke: protocol.Invoke, stage: str) -> InvokeResult:
    error = error_fields(
        f"pylive dev (stage {stage}) has no function {invoke.function_id!r}; "
        "is it running the same app?",
        HANDLER_NOT_FOUND,
        invoke.request_id,
    )
    return InvokeResult(False, json.dumps(error).encode(), request_id=invoke.request_id)


def internal_error(invoke: protocol.Invoke, exc: Exception) -> InvokeResult:
    error = error_fields(
        f"pylive dev failed to run the invocation: {exc!r}", PYLIVE_ERROR, invoke.request_id
    )
    return InvokeResult(False, json.dumps(error).encode(), request_id=invoke.request_id)


class RecentAnswers:
    """The last answers sent, for a stub that asks again: at most ``count`` of them, about
    ``max_bytes`` in all, each for ``keep_s`` seconds."""

    def __init__(self, count: int, max_bytes: int, keep_s: float) -> None:
        self.count, self.max_bytes, self.keep_s = count, max_bytes, keep_s
        self._kept: OrderedDict[str, tuple[float, int, protocol.Message]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._kept)

    def keep(self, request_id: str, answer: protocol.Message, size: int) -> None:
        self._kept[request_id] = (time.monotonic(), size, answer)
        self._bytes += size
        while self._kept and (len(self._kept) > self.count or self._bytes > self.max_bytes):
            self._bytes -= self._kept.popitem(last=False)[1][1]

    def get(self, request_id: str) -> protocol.Message | None:
        kept = self._kept.get(request_id)
        if kept is None or time.monotonic() - kept[0] > self.keep_s:
            return None
        return kept[2]


def request_id_of(message: protocol.Message) -> str:
    return str(getattr(message, "request_id", "?"))
