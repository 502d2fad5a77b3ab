"""API Gateway WebSocket API → Lambda proxy events, route selection and ids (pure).

The shapes follow real captures of the three event kinds ($connect, MESSAGE, $disconnect):
``requestContext`` carries ``routeKey``, ``eventType``, ``connectionId``, ``connectedAt``,
``requestTimeEpoch``, ``requestTime``, ``extendedRequestId`` (equal to ``requestId``),
``messageDirection`` ("IN"), ``stage``, ``domainName``, ``apiId`` and ``identity.sourceIp``.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from pylive.emulator.http_events import format_request_time

DEFAULT_ROUTE = "$default"
CONNECT_ROUTE = "$connect"
DISCONNECT_ROUTE = "$disconnect"
DEFAULT_SELECTION_EXPRESSION = "$request.body.action"
_BODY_PREFIX = "$request.body."

Event = dict[str, Any]


def new_id() -> str:
    """An id in API Gateway's style (``BFHPhfCWIAMCKlQ=``): 11 random bytes, URL-safe base64."""
    return base64.urlsafe_b64encode(os.urandom(11)).decode("ascii")


def trace_id(epoch_ms: int) -> str:
    """An X-Ray trace header value as API Gateway adds it to the $connect request."""
    return f"Root=1-{epoch_ms // 1000:08x}-{os.urandom(12).hex()}"


def selection_path(expression: str) -> tuple[str, ...]:
    """The JSON keys of a ``$request.body.a.b`` route selection expression."""
    if not expression.startswith(_BODY_PREFIX) or len(expression) == len(_BODY_PREFIX):
        raise ValueError(
            f"route selection expression {expression!r} must look like '$request.body.action'"
        )
    path = tuple(expression[len(_BODY_PREFIX) :].split("."))
    if not all(path):
        raise ValueError(f"route selection expression {expression!r} has an empty key")
    return path


def selection_value(body: str, path: Sequence[str]) -> str | None:
    """The stringified value at ``path`` in the JSON ``body``; ``""`` when missing;
    ``None`` when the body is not JSON (the message then goes to ``$default``)."""
    try:
        value: Any = json.loads(body)
    except (ValueError, RecursionError):
        return None
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return ""
        value = value[key]
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, separators=(",", ":"))


def select_route(body: str, path: Sequence[str], routes: Sequence[str] | set[str]) -> str | None:
    """The route key a message goes to: an exact match, else ``$default``, else ``None``."""
    value = selection_value(body, path)
    if value is not None and value in routes and not value.startswith("$"):
        return value
    return DEFAULT_ROUTE if DEFAULT_ROUTE in routes else None


@dataclass(frozen=True)
class ApiInfo:
    """What every event says about the API itself."""

    api_id: str
    stage: str
    domain_name: str


@dataclass(frozen=True)
class ConnectionInfo:
    """What every event says about the connection."""

    connection_id: str
    connected_at: int
    source_ip: str
    user_agent: str | None = None


def _request_context(
    api: ApiInfo, conn: ConnectionInfo, route_key: str, event_type: str, now_ms: int
) -> dict[str, Any]:
    request_id = new_id()
    identity: dict[str, str] = {"sourceIp": conn.source_ip}
    if conn.user_agent is not None:
        identity["userAgent"] = conn.user_agent
    return {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": format_request_time(now_ms),
        "messageDirection": "IN",
        "stage": api.stage,
        "connectedAt": conn.connected_at,
        "requestTimeEpoch": now_ms,
        "identity": identity,
        "requestId": request_id,
        "domainName": api.domain_name,
        "connectionId": conn.connection_id,
        "apiId": api.api_id,
    }


def connect_event(
    api: ApiInfo,
    conn: ConnectionInfo,
    headers: Sequence[tuple[str, str]],
    query: str,
    now_ms: int,
    *,
    identity: Mapping[str, str] | None = None,
) -> Event:
    """The $connect event: the upgrade request's headers, and its query if it has one;
    ``identity`` adds who signed an IAM-authorized request (``userArn``, ``caller``...) to
    ``requestContext.identity``."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value
        multi.setdefault(name, []).append(value)
    event: Event = {"headers": single, "multiValueHeaders": multi}
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        params: dict[str, str] = {}
        multi_params: dict[str, list[str]] = {}
        for key, value in pairs:
            params[key] = value
            multi_params.setdefault(key, []).append(value)
        event["queryStringParameters"] = params
        event["multiValueQueryStringParameters"] = multi_params
    event["requestContext"] = _request_context(api, conn, CONNECT_ROUTE, "CONNECT", now_ms)
    if identity:
        event["requestContext"]["identity"].update(identity)
    event["isBase64Encoded"] = False
    return event


def message_event(
    api: ApiInfo, conn: ConnectionInfo, route_key: str, body: str, now_ms: int
) -> Event:
    """A MESSAGE event for one frame routed to ``route_key``."""
    context = _request_context(api, conn, route_key, "MESSAGE", now_ms)
    context["messageId"] = new_id()
    return {"requestContext": context, "body": body, "isBase64Encoded": False}


def disconnect_event(
    api: ApiInfo, conn: ConnectionInfo, status_code: int, reason: str, now_ms: int
) -> Event:
    """The $disconnect event, with the fixed headers API Gateway sends."""
    headers = {"Host": api.domain_name, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""}
    context = _request_context(api, conn, DISCONNECT_ROUTE, "DISCONNECT", now_ms)
    context["disconnectStatusCode"] = status_code
    context["disconnectReason"] = reason
    return {
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "requestContext": context,
        "isBase64Encoded": False,
    }


def error_frame(message: str, connection_id: str, request_id: str) -> str:
    """The JSON error frame API Gateway sends to the client (``Forbidden``,
    ``Internal server error``, ``Endpoint request timed out``)."""
    return json.dumps({"message": message, "connectionId": connection_id, "requestId": request_id})
