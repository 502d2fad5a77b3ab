"""HTTP request -> Lambda event and Lambda result -> HTTP response, for an HTTP API
(payload format 2.0). Pure functions: the clock and the ids come in as arguments.

Sources: API Gateway developer guide, http-api-develop-integrations-lambda (event shape,
response inference) and http-api-develop-routes (URL decoding). Where the guide is silent the
behaviour follows published observations of real HTTP APIs:

- ``rawPath`` and ``requestContext.http.path`` are the request path percent-decoded, except that
  ``%25`` stays encoded (so the decoded path is unambiguous); ``rawQueryString`` is as sent.
- The request body is passed as text only for ``text/*``, ``application/json``,
  ``application/xml`` and ``application/javascript`` (media type without parameters, any case)
  and only when it is valid UTF-8. Everything else, including a missing content type and
  ``application/x-www-form-urlencoded``, is base64 with ``isBase64Encoded: true``.
- A response with ``statusCode`` but no ``content-type`` header gets
  ``text/plain; charset=utf-8``; an inferred response (no ``statusCode``) gets
  ``application/json``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from pylive import exact_json

DEFAULT_ACCOUNT_ID = "123456789012"

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TEXT_MEDIA_TYPES = frozenset({"application/json", "application/xml", "application/javascript"})
_PERCENT_25 = re.compile("(%25)")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")

_CONTENT_TYPE = b"content-type"
_CONTENT_LENGTH = b"content-length"
_JSON = b"application/json"
_TEXT_PLAIN = b"text/plain; charset=utf-8"


# ---------------------------------------------------------------- request -> event


def _text(raw: bytes) -> str:
    """Bytes from the wire as text: UTF-8 when valid, else Latin-1 (never fails)."""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _decode_path(raw_path: str) -> str:
    """Percent-decode a path as an HTTP API does for ``rawPath``, keeping ``%25`` encoded."""
    if "%" not in raw_path:
        return raw_path
    pieces = _PERCENT_25.split(raw_path)  # the "%25" separators land at the odd indexes
    return "".join(p if i % 2 else unquote(p, errors="replace") for i, p in enumerate(pieces))


def format_request_time(time_epoch_ms: int) -> str:
    """``requestContext.time``: ``"12/Mar/2020:19:03:58 +0000"`` (UTC, English month).

    Every request of the same second has the same text: it is made once."""
    return _format_second(time_epoch_ms // 1000)


@functools.lru_cache(maxsize=4)
def _format_second(epoch_second: int) -> str:
    days, seconds = divmod(epoch_second, 86_400)
    year, month, day = _civil_from_days(days)
    hours, rem = divmod(seconds, 3600)
    minutes, secs = divmod(rem, 60)
    return f"{day:02d}/{_MONTHS[month - 1]}/{year:04d}:{hours:02d}:{minutes:02d}:{secs:02d} +0000"


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a count of days since 1970-01-01 (proleptic Gregorian)."""
    days += 719_468
    era = days // 146_097
    doe = days - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def _is_text_body(content_type: str | None) -> bool:
    if content_type is None:
        return False
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type.startswith("text/") or media_type in _TEXT_MEDIA_TYPES


def _query_parameters(raw_query: str) -> dict[str, str]:
    """Decoded query parameters (``+`` is a space); repeated names joined with commas."""
    params: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True, errors="replace"):
        params[name] = f"{params[name]},{value}" if name in params else value
    return params


def build_event(
    *,
    method: str,
    raw_path: str,
    raw_query: bytes | str,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    route_key: str,
    path_parameters: dict[str, str],
    source_ip: str,
    stage: str = "$default",
    api_id: str,
    domain_name: str,
    request_id: str,
    time_epoch_ms: int,
    account_id: str = DEFAULT_ACCOUNT_ID,
) -> dict[str, Any]:
    """The payload format 2.0 event for one request.

    ``raw_path`` is the path as the client sent it (still percent-encoded, e.g. ASGI's
    ``raw_path``); ``headers`` are ASGI's ``(name, value)`` byte pairs; ``route_key`` and
    ``path_parameters`` come from :class:`pylive.emulator.routes.RouteTable`.
    """
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        value = _text(raw_value)
        if name == "cookie":
            # Cookies move to their own list, one entry per cookie, and leave the headers.
            cookies.extend(c for c in (part.strip() for part in value.split(";")) if c)
        elif name in merged:
            merged[name] = f"{merged[name]},{value}"
        else:
            merged[name] = value

    query = raw_query if isinstance(raw_query, str) else _text(raw_query)
    path = _decode_path(raw_path)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = merged
    if query:
        params = _query_parameters(query)
        if params:
            event["queryStringParameters"] = params
    event["requestContext"] = {
        "accountId": account_id,
        "apiId": api_id,
        "domainName": domain_name,
        "domainPrefix": domain_name.partition(".")[0],
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": merged.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": route_key,
        "stage": stage,
        "time": format_request_time(time_epoch_ms),
        "timeEpoch": time_epoch_ms,
    }
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    is_base64 = False
    if body:
        text: str | None = None
        if _is_text_body(merged.get("content-type")):
            try:
                text = body.decode()
            except UnicodeDecodeError:
                text = None
        if text is None:
            text = base64.b64encode(body).decode("ascii")
            is_base64 = True
        event["body"] = text
    event["isBase64Encoded"] = is_base64
    return event


# ---------------------------------------------------------------- result -> response


@dataclass(slots=True)  # not frozen: made per request (a frozen __init__ is 5x slower)
class HttpResponse:
    """An HTTP response ready for ASGI: lowercase header names, ``content-length`` set."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class _Malformed(Exception):
    """The handler's result is not a response API Gateway would accept."""


def _respond(status: int, content_type: bytes, body: bytes) -> HttpResponse:
    headers = [(_CONTENT_TYPE, content_type), (_CONTENT_LENGTH, str(len(body)).encode())]
    return HttpResponse(status, headers, body)


def error_response() -> HttpResponse:
    """What an HTTP API answers when the integration fails: 500 Internal Server Error."""
    return _respond(500, _JSON, b'{"message":"Internal Server Error"}')


def unavailable_response() -> HttpResponse:
    """What an HTTP API answers when the integration does not answer within its timeout."""
    return _respond(503, _JSON, b'{"message":"Service Unavailable"}')


def not_found_response() -> HttpResponse:
    """What an HTTP API answers when no route (not even ``$default``) matches."""
    return _respond(404, _JSON, b'{"message":"Not Found"}')


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_result(result: bytes) -> Any:
    try:
        return exact_json.loads(result)  # integers beyond 64 bits stay exact, as in Lambda
    except ValueError:  # what orjson refuses but is still JSON (a lone surrogate escape)
        return json.loads(result, parse_constant=_reject_constant)


def _header_value(value: Any) -> str | None:
    """A response header value as text: JSON scalars are stringified, null drops the header."""
    if isinstance(value, str):
        return value
    if value is None:
        return None
    if isinstance(value, bool | int | float):
        return exact_json.dumps(value).decode()
    raise _Malformed(f"header value {value!r} is not a string")


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "replace")  # "replace" only matters for lone surrogates


def _checked(text: str) -> bytes:
    if "\r" in text or "\n" in text or "\0" in text:
        raise _Malformed("a header contains CR, LF or NUL")
    return _utf8(text)


def _explicit_response(value: dict[str, Any]) -> HttpResponse:
    status = value["statusCode"]
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise _Malformed(f"statusCode {status!r} is not an HTTP status")

    body_value = value.get("body")
    if body_value is None:
        body = b""
    elif not isinstance(body_value, str):
        raise _Malformed("body is not a string")
    elif value.get("isBase64Encoded") is True:
        try:
            body = base64.b64decode(body_value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _Malformed("body is not valid base64") from exc
    else:
        body = _utf8(body_value)

    headers: list[tuple[bytes, bytes]] = []
    content_type: bytes | None = None
    set_cookies: list[tuple[bytes, bytes]] = []
    raw_headers = value.get("headers")
    if raw_headers is not None and not isinstance(raw_headers, dict):
        raise _Malformed("headers is not an object")
    cookies = value.get("cookies")
    if cookies is not None:
        if not isinstance(cookies, list) or not all(isinstance(c, str) for c in cookies):
            raise _Malformed("cookies is not a list of strings")
        set_cookies.extend((b"set-cookie", _checked(c)) for c in cookies)
    for name, raw in (raw_headers or {}).items():
        text = _header_value(raw)
        if text is None:
            continue
        key = _utf8(name.lower())
        if not _TOKEN.fullmatch(key):
            raise _Malformed(f"invalid header name {name!r}")
        if key == _CONTENT_LENGTH:
            continue  # recomputed below from the actual body
        if key == _CONTENT_TYPE:
            content_type = _checked(text)
        elif key == b"set-cookie":
            set_cookies.append((key, _checked(text)))  # after the cookies list entries
        else:
            headers.append((key, _checked(text)))
    headers.append((_CONTENT_TYPE, content_type if content_type is not None else _TEXT_PLAIN))
    headers.extend(set_cookies)
    headers.append((_CONTENT_LENGTH, str(len(body)).encode()))
    return HttpResponse(status, headers, body)


def to_http_response(result: bytes) -> HttpResponse:
    """The HTTP response an HTTP API makes of a handler's JSON-encoded return value.

    A JSON object with ``statusCode`` is a response (``headers``, ``cookies``, ``body``,
    ``isBase64Encoded``; ``multiValueHeaders`` is not part of 2.0 and is ignored). Any other
    valid JSON is inferred as 200 ``application/json`` whose body is the output itself (a
    JSON string gives its content: ``"Hello"`` -> ``Hello``). Invalid JSON or a malformed
    response gives :func:`error_response`.
    """
    try:
        value = _parse_result(result)
    except (ValueError, RecursionError):
        return error_response()
    if isinstance(value, dict) and "statusCode" in value:
        try:
            return _explicit_response(value)
        except _Malformed:
            return error_response()
    body = _utf8(value) if isinstance(value, str) else result
    return _respond(200, _JSON, body)
