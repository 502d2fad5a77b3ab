"""The local WebSocket API's HTTP answers to an upgrade request: a refusal with any status
(for a bad signature, a denied principal, a failed $connect), and what a $connect
integration's result asks for (a refusal, or the subprotocol to accept)."""

from __future__ import annotations

from http import HTTPStatus

from websockets.datastructures import Headers
from websockets.http11 import Response


def reject(status: int, body: str) -> Response:
    """An HTTP response refusing the upgrade (any status, unlike ``ServerConnection.respond``)."""
    data = body.encode()
    headers = Headers(
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            ("Connection", "close"),
        ]
    )
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return Response(status, phrase, headers, data)


def connect_refusal(result: object) -> Response | None:
    """The handshake refusal a $connect integration result asks for, if any."""
    if not isinstance(result, dict) or result.get("statusCode") is None:
        return None
    status = result["statusCode"]
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        return reject(502, '{"message": "Internal server error"}')
    if 200 <= status < 300:
        return None
    body = result.get("body")
    return reject(status, body if isinstance(body, str) else "")


def subprotocol(result: object) -> str | None:
    if not isinstance(result, dict) or not isinstance(result.get("headers"), dict):
        return None
    for name, value in result["headers"].items():
        if str(name).lower() == "sec-websocket-protocol" and isinstance(value, str):
            return value
    return None
