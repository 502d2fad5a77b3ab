"""Every error payload a Lambda invocation can answer with, in one place: the runtime's
(a handler's exception, bad handler names, marshalling) and Lambda's own (timeouts, exits, out
of memory, init errors, an oversized response). Standard library only: the workers run it."""

from __future__ import annotations

import decimal
import json
import math
import os
import re
import sys
import time
import traceback
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))

# errorType values of the Lambda Python runtime (awslambdaric's FaultException).
IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
MARSHAL_ERROR = "Runtime.MarshalError"
UNMARSHAL_ERROR = "Runtime.UnmarshalError"
MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
# ... and of Lambda itself, around the runtime.
EXIT_ERROR = "Runtime.ExitError"
OUT_OF_MEMORY = "Runtime.OutOfMemory"
INIT_TIMEOUT = "Runtime.InitTimeout"
RESPONSE_TOO_LARGE = "Function.ResponseSizeTooLarge"
# Lambda's limit on a synchronous invocation's response: the marshalled result, as Lambda
# counts it (6 MB in the quotas, 6291556 bytes in its error; a JSON string's quotes count).
# Over it the caller gets this error, and the Python runtime, its answer refused, exits.
# Sources: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html,
# zaccharles.medium.com "Deep Dive: Lambda's Response Payload Size Limit (1/2)" (the error,
# and that exactly 6291556 bytes pass), DataBiosphere/azul#7466 (the same message through API
# Gateway, and the invocation's REPORT line: "Error Type: Runtime.ExitError").
RESPONSE_LIMIT_BYTES = 6291556
RESPONSE_TOO_LARGE_MESSAGE = (
    f"Response payload size exceeded maximum allowed payload size ({RESPONSE_LIMIT_BYTES} bytes)."
)
# ... and of pylive, where it stands between the caller and the function.
RELAY_ERROR = "PyliveRelayError"
PYLIVE_ERROR = "Runtime.PyliveError"
CANCELLED = "Runtime.Cancelled"


class Fault(Exception):
    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace


_DECIMAL_MARK = "\x00pylive-decimal:"
_DECIMAL_RE = re.compile(r'"\\u0000pylive-decimal:([^"\\]+)"')


class _Encoder(json.JSONEncoder):
    """The standard encoder, plus Decimal written as its exact digits (as simplejson does
    for the Lambda runtime): a marked string, unquoted after encoding."""

    def default(self, o: Any) -> Any:
        if isinstance(o, decimal.Decimal):
            if o.is_nan():
                return math.nan
            return _DECIMAL_MARK + str(o)
        return super().default(o)

    def encode(self, o: Any) -> str:
        text = super().encode(o)
        return _DECIMAL_RE.sub(r"\1", text) if "pylive-decimal:" in text else text


_ENCODER = _Encoder(ensure_ascii=False, allow_nan=True, separators=(", ", ": "))
_ENCODER_ASCII = _Encoder(ensure_ascii=True, allow_nan=True, separators=(", ", ": "))


def marshal(result: Any) -> tuple[bytes, str]:
    """A handler's return value as Lambda sends it: raw bytes, or JSON."""
    if isinstance(result, bytes):
        return result, "application/unknown"
    encoder = _ENCODER if _unicode_runtime() else _ENCODER_ASCII
    try:
        return encoder.encode(result).encode("utf-8"), "application/json"
    except Exception as exc:
        raise Fault(MARSHAL_ERROR, f"Unable to marshal response: {exc}") from None


def _unicode_runtime() -> bool:
    # awslambdaric writes non-ASCII characters as-is from python3.12 on, escaped before.
    return os.environ.get("AWS_EXECUTION_ENV", "") not in (
        "AWS_Lambda_python3.9",
        "AWS_Lambda_python3.10",
        "AWS_Lambda_python3.11",
    )


def make_error(message: str, error_type: str, trace: list[str] | None, request_id: str) -> bytes:
    payload = {
        "errorMessage": message or "",
        "errorType": error_type or "",
        "requestId": request_id,
        "stackTrace": trace or [],
    }
    encoder = _ENCODER if _unicode_runtime() else _ENCODER_ASCII
    return encoder.encode(payload).encode("utf-8")


def user_trace(tb: Any) -> list[str]:
    """``stackTrace`` as the Lambda runtime writes it: frames as plain tuples (so no caret
    lines), starting at the first frame that is not the runtime's own (this folder's)."""
    frames = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(tb)]
    for index, frame in enumerate(frames):
        if os.path.dirname(os.path.abspath(frame[0])) != _HERE:
            frames = frames[index:]
            break
    return traceback.format_list(frames)  # type: ignore[arg-type]


def log_error(error: bytes) -> None:
    """Show an error on the terminal the way Lambda logs it, readable for a person."""
    data = json.loads(error)
    lines = [f"[ERROR] {data['errorType']}: {data['errorMessage']}"]
    if data["stackTrace"]:
        lines.append("Traceback (most recent call last):")
        lines.extend(line.rstrip("\n") for line in data["stackTrace"])
    sys.stderr.write("\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------
# What Lambda itself answers around the runtime (timeouts, exits, limits), and pylive


def error_fields(message: str, error_type: str, request_id: str | None = None) -> dict[str, Any]:
    """An error as a JSON object; with ``request_id``, in the runtime's shape (which also
    carries ``requestId`` and an empty ``stackTrace``)."""
    fields: dict[str, Any] = {"errorMessage": message, "errorType": error_type}
    if request_id is not None:
        fields.update(requestId=request_id, stackTrace=[])
    return fields


def _timestamp() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def timeout_error(request_id: str, timeout: float) -> bytes:
    message = f"{_timestamp()} {request_id} Task timed out after {timeout:.2f} seconds"
    return json.dumps({"errorMessage": message}).encode()


def init_timeout_error(timeout: float) -> bytes:
    message = f"{_timestamp()} Task timed out after {timeout:.2f} seconds"
    return json.dumps({"errorMessage": message, "errorType": INIT_TIMEOUT}).encode()


def exit_error(request_id: str, status: str, *, error_type: str = EXIT_ERROR) -> bytes:
    """The runtime's process ended (``status`` as the fork-server describes it)."""
    reason = (
        "Runtime exited without providing a reason"
        if status == "exit status 0"
        else f"Runtime exited with error: {status}"
    )
    message = f"RequestId: {request_id} Error: {reason}" if request_id else f"Error: {reason}"
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def response_too_large_error() -> bytes:
    """What Lambda answers for a result over :data:`RESPONSE_LIMIT_BYTES`."""
    return json.dumps(
        {"errorMessage": RESPONSE_TOO_LARGE_MESSAGE, "errorType": RESPONSE_TOO_LARGE}
    ).encode()


def one_line(payload: bytes) -> str:
    """``errorType: errorMessage`` of an error payload, for a terminal line."""
    try:
        data = json.loads(payload)
        return f"{data.get('errorType', 'Error')}: {data.get('errorMessage', '')}"
    except ValueError:
        return payload.decode("utf-8", "replace")
