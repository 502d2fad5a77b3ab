"""The app's HTTP API on 127.0.0.1: an ASGI app served by uvicorn (httptools, uvloop).

Each request is matched to a route, turned into a payload-format-2.0 event, run by the
function's warm worker, and the result converted back, as API Gateway HTTP APIs do. Routes of
an Api with CORS get its CORS handling (preflights answered here, headers added to responses;
see ``pylive.emulator.cors``).
"""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from pylive.emulator import cors, limits
from pylive.emulator.http_events import (
    HttpResponse,
    build_event,
    error_response,
    not_found_response,
    to_http_response,
    unavailable_response,
)
from pylive.emulator.routes import RouteTable
from pylive.errors import ServeError
from pylive.random_bytes import random_bytes
from pylive.runner.invocation import InvokeResult

Invoke = Callable[[str, bytes], Awaitable[InvokeResult]]
INTEGRATION_TIMEOUT_S = 30.0  # HTTP APIs wait at most 30 s for a Lambda integration
RequestLog = Callable[[str, str, str, int, float], None]  # method, path, function, status, ms

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class HttpApi:
    """Mutable so a re-synthesis can swap the routes without restarting the server."""

    routes: RouteTable
    api_id: str = "local"
    stage: str = "$default"
    # After this the client gets 503 while the function runs on; None: wait (a debugger).
    integration_timeout: float | None = INTEGRATION_TIMEOUT_S


class HttpApiApp:
    def __init__(self, api: HttpApi, invoke: Invoke, log: RequestLog) -> None:
        self.api = api
        self._invoke = invoke
        self._log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        method: str = scope["method"]
        path: str = scope["path"]
        target = scope.get("raw_path", b"") + (
            b"?" + scope["query_string"] if scope.get("query_string") else b""
        )
        if limits.head_size(method, target, scope["headers"]) > limits.MAX_HEAD_BYTES:
            await _respond(send, limits.head_too_large())
            self._log(method, path, "-", 431, _since(started))
            return
        body = await _read_body(receive, scope["headers"])
        if body is None:
            await _respond(send, limits.body_too_large())
            self._log(method, path, "-", 413, _since(started))
            return
        routes = self.api.routes  # one table for the whole request, even if swapped meanwhile
        if routes.has_cors and await self._preflight(scope, routes, send, started):
            return
        match = routes.match(method, path)
        if match is None:
            await _respond(send, not_found_response())
            self._log(method, path, "-", 404, _since(started))
            return
        host = _host(scope)
        request_id = _request_id()
        event = build_event(
            method=method,
            raw_path=scope.get("raw_path", b"").decode("latin-1") or path,
            raw_query=scope.get("query_string", b""),
            headers=scope["headers"],
            body=body,
            route_key=match.route_key,
            path_parameters=match.path_parameters,
            source_ip=(scope.get("client") or ("127.0.0.1", 0))[0],
            stage=self.api.stage,
            api_id=self.api.api_id,
            domain_name=host,
            request_id=request_id,
            time_epoch_ms=int(time.time() * 1000),
        )
        payload = orjson.dumps(event)
        if len(payload) > limits.LAMBDA_REQUEST_LIMIT_BYTES:
            # Lambda refuses the invocation (the function never runs); the client gets 413.
            await _respond(send, limits.event_too_large(), request_id.encode())
            self._log(method, path, match.function, 413, _since(started))
            return
        timer = self._start_timer(send, method, path, match.function, started)
        try:
            result = await self._invoke(match.function, payload)
        finally:
            if timer is not None:
                timer.cancel()
        if timer is not None and timer.answered:
            return  # the client got its 503; the function has now finished too
        response = to_http_response(result.body) if result.ok else error_response()
        if routes.has_cors:
            settings = routes.cors_for(match.route_key)
            if settings is not None:
                response = cors.apply(settings, scope["headers"], response)
        if result.record is not None:
            result.record.answered_http(method, event["rawPath"], match.route_key, response.status)
        await _respond(send, response, request_id.encode())
        self._log(method, path, match.function, response.status, _since(started))

    def _start_timer(
        self, send: Send, method: str, path: str, function: str, started: float
    ) -> _IntegrationTimer | None:
        timeout = self.api.integration_timeout
        if timeout is None:
            return None
        return _IntegrationTimer(timeout, send, self._log, (method, path, function, started))

    async def _preflight(
        self, scope: Scope, routes: RouteTable, send: Send, started: float
    ) -> bool:
        """Answer a CORS preflight as API Gateway does for an API with CORS; ``False`` when
        the request is not one, or its path belongs to no such API, and is routed as usual."""
        method: str = scope["method"]
        if not cors.is_preflight(method, scope["headers"]):
            return False
        settings = routes.preflight_cors(scope["path"])
        if settings is None:
            return False
        response = cors.preflight_response(settings, scope["headers"])
        await _respond(send, response, _request_id().encode())
        self._log(method, scope["path"], "CORS", response.status, _since(started))
        return True


class _IntegrationTimer:
    """Answers 503 when the integration timeout passes first, as API Gateway does; the
    invocation itself is not cancelled (the function runs until it ends, as in Lambda).
    One is made per request: a plain object with its timer, no closures."""

    __slots__ = ("answered", "_handle", "_send", "_log", "_request", "_task")

    def __init__(
        self, timeout: float, send: Send, log: RequestLog, request: tuple[str, str, str, float]
    ) -> None:
        self.answered = False
        self._send = send
        self._log = log
        self._request = request  # method, path, function, started
        self._task: asyncio.Task[None] | None = None
        self._handle = asyncio.get_running_loop().call_later(timeout, self._fire)

    def _fire(self) -> None:
        self.answered = True
        self._task = asyncio.ensure_future(self._answer())

    async def _answer(self) -> None:
        await _respond(self._send, unavailable_response())
        method, path, function, started = self._request
        self._log(method, path, function, 503, _since(started))

    def cancel(self) -> None:
        self._handle.cancel()


async def _read_body(receive: Receive, headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The request body; None when it is over the HTTP API's payload limit (said by its
    Content-Length before it is read, or found while reading a chunked one)."""
    for name, value in headers:
        if name == b"content-length" and value.isdigit() and int(value) > limits.MAX_BODY_BYTES:
            return None
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        return body if len(body) <= limits.MAX_BODY_BYTES else None
    chunks = [body]
    size = len(body)
    while message.get("more_body"):
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limits.MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _respond(send: Send, response: HttpResponse, request_id: bytes | None = None) -> None:
    headers = response.headers
    if request_id is not None:
        headers = [*headers, (b"apigw-requestid", request_id)]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


def _request_id() -> str:
    return base64.b64encode(random_bytes(10)).decode()


def _host(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"host":
            return str(value.decode("latin-1"))
    server = scope.get("server") or ("127.0.0.1", 0)
    return f"{server[0]}:{server[1]}"


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket up front so a busy port is a clear error, not a log line."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        hint = "; stop what uses it or pass --port with another port" if port else ""
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}{hint}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
