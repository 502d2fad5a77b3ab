"""The @connections management API: ``/{stage}/@connections/{connectionId}``.

Served on the WebSocket API's own host and port, answering boto3's
``apigatewaymanagementapi`` client (``endpoint_url=http://HOST:PORT/{stage}``) as AWS does:
PostToConnection (POST, raw body → one message, 200), GetConnection (GET, 200 JSON),
DeleteConnection (DELETE, 204). A connection that is unknown or closed gives 410 with
``x-amzn-ErrorType: GoneException`` and an empty body, which boto3 turns into
``client.exceptions.GoneException``; a body over 128 KB gives 413 ``PayloadTooLargeException``.

When the gateway has credentials, every request must carry a valid SigV4 ``Authorization``
header for ``execute-api`` signed with one of them (403 ``ForbiddenException`` otherwise), and
the signer's policies must allow ``execute-api:ManageConnections`` on
``arn:aws:execute-api:{region}:{account}:{api}/{stage}/{METHOD}/@connections/{connectionId}``
(https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-control-access-iam.html),
else 403 ``AccessDeniedException`` with AWS's message, which boto3 raises as a ``ClientError``
of that code. The resource ends in the literal ``{connectionId}``, as AWS names it in its
denials (aws/aws-cdk#18410), so a policy grants a method on every connection or on none.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import unquote

from pylive.emulator.sigv4 import SignatureError, verify_authorization_header
from pylive.emulator.ws_events import new_id
from pylive.emulator.ws_http import HttpRequest, HttpResponse

_SEGMENTS = ("@connections", "%40connections")


@dataclass(frozen=True)
class ConnectionDetails:
    """What GetConnection reports."""

    connected_at_ms: int
    last_active_ms: int
    source_ip: str
    user_agent: str


class ConnectionsBackend(Protocol):
    """What the @connections API needs from the gateway."""

    @property
    def stage(self) -> str: ...

    @property
    def credentials(self) -> Mapping[str, str] | None: ...

    @property
    def message_limit_bytes(self) -> int: ...

    def arn(self, resource: str) -> str: ...

    def authorize(
        self, key_id: str, token: str | None, action: str, resource: str, source_ip: str
    ) -> tuple[str, str] | None: ...

    def details(self, connection_id: str) -> ConnectionDetails | None: ...

    async def post(self, connection_id: str, data: bytes) -> bool: ...

    def delete(self, connection_id: str) -> bool: ...

    def count_call(self, operation: str, connection_id: str) -> None: ...


async def handle(request: HttpRequest, backend: ConnectionsBackend) -> HttpResponse:
    """Answer one HTTP request sent to the gateway's port that is not a WebSocket upgrade."""
    path = request.target.partition("?")[0]
    parts = path.split("/")
    # ["", stage, "@connections", id]
    if len(parts) != 4 or parts[1] != backend.stage or parts[2] not in _SEGMENTS or not parts[3]:
        return _error(403, "ForbiddenException", "Forbidden")
    connection_id = unquote(parts[3])
    operation = _OPERATIONS.get(request.method)
    if operation is None:
        return _error(403, "ForbiddenException", "Forbidden")
    backend.count_call(operation, connection_id)
    if backend.credentials is not None:
        try:
            key_id = verify_authorization_header(
                request.method, request.target, request.headers, request.body, backend.credentials
            )
        except SignatureError as exc:
            return _error(403, "ForbiddenException", str(exc))
        resource = backend.arn(f"{request.method}/@connections/{{connectionId}}")
        denied = backend.authorize(
            key_id,
            request.header("x-amz-security-token"),
            "execute-api:ManageConnections",
            resource,
            request.peer,
        )
        if denied is not None:
            error_type, message = denied
            return _error(403, error_type, message, key="Message")
    if request.method == "POST":
        if len(request.body) > backend.message_limit_bytes:
            return _error(413, "PayloadTooLargeException", "Message too long")
        if not await backend.post(connection_id, request.body):
            return _gone()
        return _ok(200)
    if request.method == "GET":
        details = backend.details(connection_id)
        if details is None:
            return _gone()
        body = {
            "connectedAt": _iso(details.connected_at_ms),
            "identity": {"sourceIp": details.source_ip, "userAgent": details.user_agent},
            "lastActiveAt": _iso(details.last_active_ms),
        }
        return _ok(200, json.dumps(body).encode())
    if not backend.delete(connection_id):
        return _gone()
    return _ok(204)


_OPERATIONS = {"POST": "PostToConnection", "GET": "GetConnection", "DELETE": "DeleteConnection"}


def _iso(epoch_ms: int) -> str:
    moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def _headers(extra: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    return [("x-amzn-RequestId", new_id()), *(extra or [])]


def _ok(status: int, body: bytes = b"") -> HttpResponse:
    headers = [("Content-Type", "application/json")] if body else []
    return HttpResponse(status, body, _headers(headers))


def _gone() -> HttpResponse:
    return HttpResponse(410, b"", _headers([("x-amzn-ErrorType", "GoneException")]))


def _error(status: int, error_type: str, message: str, *, key: str = "message") -> HttpResponse:
    body = json.dumps({key: message}).encode()
    return HttpResponse(
        status,
        body,
        _headers([("x-amzn-ErrorType", error_type), ("Content-Type", "application/json")]),
    )
