"""Request limits as AWS applies them, on the real local HTTP API with real workers: an HTTP
API's 10 MB payload and 10240-byte head, Lambda's 6 MB request (see pylive.emulator.limits for
the sources), and the deadline for a request head on every port pylive listens on."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from apphelpers import poll
from serving import Server

from pylive.cdk.manifest import RouteSpec
from pylive.emulator import limits
from pylive.emulator.ws_gateway import WebSocketGateway
from pylive.emulator.ws_settings import GatewayLimits

HANDLERS = """
import pathlib


def echo(event, context):
    params = event.get("queryStringParameters") or {}
    if "mark" in params:
        pathlib.Path(params["mark"]).write_text("ran")
    return {"length": len(event.get("body") or "")}


def big(event, context):
    return {"statusCode": 200, "body": "y" * int(event["queryStringParameters"]["size"])}
"""
ROUTES = [
    RouteSpec("POST /echo", "echo"),
    RouteSpec("GET /echo", "echo"),
    RouteSpec("GET /big", "big"),
]
MB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("limits-app")
    (root / "api.py").write_text(HANDLERS)
    with Server(root, ROUTES, functions=("echo", "big"), head_timeout=1.0) as running:
        yield running


def post(server: Server, path: str, body: bytes, **headers: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_the_limits_are_aws_numbers() -> None:
    assert limits.MAX_BODY_BYTES == 10485760
    assert limits.MAX_HEAD_BYTES == 10240
    assert limits.LAMBDA_REQUEST_LIMIT_BYTES == 6291456
    assert limits.LAMBDA_REQUEST_MESSAGE == (
        "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    )


def test_a_body_over_10_mb_is_413_before_it_is_read(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            + f"Content-Length: {10 * MB + 1}\r\n\r\n".encode()
        )
        response = http.client.HTTPResponse(sock)
        response.begin()
        answer = response.read()
    assert response.status == 413
    assert answer == b"HTTP content length exceeded 10485760 bytes."


def test_a_chunked_body_over_10_mb_is_413(server: Server) -> None:
    chunks = iter([b"x" * MB] * 11)
    status, body = post(server, "/echo", chunks, **{"Content-Type": "text/plain"})  # type: ignore[arg-type]
    assert status == 413 and b"10485760" in body


def test_an_event_over_lambdas_6_mb_is_413_and_the_function_never_runs(
    server: Server, tmp_path: Path
) -> None:
    mark = tmp_path / "ran"
    status, body = post(
        server, f"/echo?mark={mark}", b"x" * (7 * MB), **{"Content-Type": "text/plain"}
    )
    assert (status, json.loads(body)) == (413, {"message": "Request Too Long"})
    assert not mark.exists()
    poll(lambda: ("POST", "/echo", "echo", 413) in [entry[:4] for entry in server.log])
    # Just under the limit the function runs.
    status, body = post(
        server, f"/echo?mark={mark}", b"x" * (5 * MB), **{"Content-Type": "text/plain"}
    )
    assert (status, json.loads(body)) == (200, {"length": 5 * MB})
    assert mark.exists()


def test_a_response_over_lambdas_6_mb_is_500(server: Server) -> None:
    """Lambda fails the invocation (Function.ResponseSizeTooLarge); an HTTP API answers a
    failed integration with 500."""
    status, _, body = server.request("GET", f"/big?size={7 * MB}")
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})
    status, _, body = server.request("GET", f"/big?size={6 * MB - 100}")
    assert status == 200 and len(body) == 6 * MB - 100


def test_a_head_over_10240_bytes_is_431(server: Server) -> None:
    assert server.request("GET", "/echo", x_big="v" * 10300)[0] == 431
    status, _, body = server.request("GET", "/echo", x_big="v" * 9000)
    assert (status, json.loads(body)) == (200, {"length": 0})


def closed_within(port: int, payload: bytes, timeout: float = 15.0) -> bool:
    """Whether the server closes a connection that sent ``payload`` and nothing more."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        try:
            while sock.recv(65536):
                pass
        except TimeoutError:
            return False
    return True


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"GET /echo HTTP/1.1\r\nHost: x\r\n",
        b"GET /ec",
        # A kept-alive connection's next request: answered first, then its head left unfinished.
        b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n",
        b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\nGET /ec",
    ],
    ids=["nothing", "head", "line", "next-head", "next-line"],
)
def test_the_http_api_closes_a_connection_that_never_finishes_its_head(
    server: Server, payload: bytes
) -> None:
    assert closed_within(server.port, payload)
    assert server.request("GET", "/echo")[0] == 200  # others are served as before


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"GET /dev HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n",
        b"POST /dev/@connections/abc HTTP/1.1\r\nContent-Length: 10\r\n\r\nab",
    ],
    ids=["nothing", "websocket-head", "connections-body"],
)
def test_the_websocket_api_closes_a_connection_that_never_finishes(payload: bytes) -> None:
    async def main() -> bool:
        async with WebSocketGateway({}, limits=GatewayLimits(head_timeout=1.0)) as gateway:
            return await asyncio.to_thread(closed_within, gateway.port, payload)

    assert asyncio.run(main())
