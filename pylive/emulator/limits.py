"""The request limits API Gateway HTTP APIs and Lambda apply, and their answers.

Sources:

- HTTP API quotas (https://docs.aws.amazon.com/apigateway/latest/developerguide/
  http-api-quotas.html): "Total combined size of request line and header values: 10240
  bytes", "Payload size: 10 MB"; neither can be increased.
- Lambda quotas and the Invoke API (https://docs.aws.amazon.com/lambda/latest/dg/
  gettingstarted-limits.html, https://docs.aws.amazon.com/lambda/latest/dg/API_Invoke.html):
  6 MB for a synchronous invocation's request. Lambda rejects a larger one with HTTP 413,
  ``RequestEntityTooLargeException``: "Request must be smaller than 6291456 bytes for the
  InvokeFunction operation" (quoted in awslabs/aws-athena-query-federation#793 and
  zaccharles.medium.com "Deep Dive: Lambda's Request Payload Size Limit (2/2)").
- What the API Gateway client then gets, as captured in koki-develop/lgtm-generator#10:
  413 ``HTTP content length exceeded 10485760 bytes.`` for a body over 10 MB, and 413
  ``{"message": "Request Too Long"}`` when the event is too large for Lambda. That capture
  was of a REST API; the HTTP API's exact wording is not documented, the status is the same.
- The answer to a request line and headers over 10240 bytes is not documented either:
  pylive answers 431 (RFC 6585), so such a request fails here as it would in AWS.
"""

from __future__ import annotations

from pylive.emulator.http_events import HttpResponse

MAX_BODY_BYTES = 10 * 1024 * 1024  # HTTP API payload size
MAX_HEAD_BYTES = 10240  # HTTP API: request line plus header values
LAMBDA_REQUEST_LIMIT_BYTES = 6 * 1024 * 1024  # Lambda: a synchronous invocation's request

_JSON = b"application/json"
_TEXT = b"text/plain; charset=utf-8"


def _answer(status: int, content_type: bytes, body: bytes) -> HttpResponse:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    return HttpResponse(status, headers, body)


def head_size(method: str, raw_target: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    """The request line (method, target, protocol) plus every header value, in bytes."""
    size = len(method) + 1 + len(raw_target) + len(" HTTP/1.1")
    for _, value in headers:  # a plain loop: a generator costs more, on every request
        size += len(value)
    return size


def head_too_large() -> HttpResponse:
    return _answer(431, _JSON, b'{"message":"Request Header Fields Too Large"}')


def body_too_large() -> HttpResponse:
    return _answer(413, _TEXT, f"HTTP content length exceeded {MAX_BODY_BYTES} bytes.".encode())


def event_too_large() -> HttpResponse:
    """The event did not fit into a Lambda invocation: Lambda refused it, API Gateway says so."""
    return _answer(413, _JSON, b'{"message":"Request Too Long"}')


LAMBDA_REQUEST_ERROR = "RequestEntityTooLargeException"
LAMBDA_REQUEST_MESSAGE = (
    f"Request must be smaller than {LAMBDA_REQUEST_LIMIT_BYTES} bytes for the InvokeFunction "
    "operation"
)
