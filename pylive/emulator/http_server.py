"""The app's HTTP API on 127.0.0.1, served by :mod:`pylive.emulator.http1`.

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

import orjson

from pylive.emulator import cors, limits
from pylive.emulator.http1 import Headers, HttpRequest
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


@dataclass
class HttpApi:
    """Mutable so a re-synthesis can swap the routes without restarting the server."""

    routes: RouteTable
    api_id: str = "local"
    stage: str = "$default"
    # After this the client gets 503 while the function runs on; None: wait (a debugger).
    integration_timeout: float | None = INTEGRATION_TIMEOUT_S


class HttpApiApp:
    """The handler :class:`pylive.emulator.http1.HttpServer` calls for each request."""

    def __init__(self, api: HttpApi, invoke: Invoke, log: RequestLog) -> None:
        self.api = api
        self._invoke = invoke
        self._log = log

    async def __call__(self, request: HttpRequest) -> None:
        started = time.perf_counter()
        method = request.method
        path = request.path
        headers = request.headers
        target = request.raw_path + (b"?" + request.query if request.query else b"")
        if limits.head_size(method, target, headers) > limits.MAX_HEAD_BYTES:
            _respond(request, limits.head_too_large())
            self._log(method, path, "-", 431, _since(started))
            return
        body = None if _declares_too_large(headers) else await request.body()
        if body is None:
            _respond(request, limits.body_too_large())
            self._log(method, path, "-", 413, _since(started))
            return
        routes = self.api.routes  # one table for the whole request, even if swapped meanwhile
        if routes.has_cors and self._preflight(request, routes, started):
            return
        match = routes.match(method, path)
        if match is None:
            _respond(request, not_found_response())
            self._log(method, path, "-", 404, _since(started))
            return
        request_id = _request_id()
        event = build_event(
            method=method,
            raw_path=request.raw_path.decode("latin-1") or path,
            raw_query=request.query,
            headers=headers,
            body=body,
            route_key=match.route_key,
            path_parameters=match.path_parameters,
            source_ip=request.client[0],
            stage=self.api.stage,
            api_id=self.api.api_id,
            domain_name=_host(request),
            request_id=request_id,
            time_epoch_ms=int(time.time() * 1000),
        )
        payload = orjson.dumps(event)
        if len(payload) > limits.LAMBDA_REQUEST_LIMIT_BYTES:
            # Lambda refuses the invocation (the function never runs); the client gets 413.
            _respond(request, limits.event_too_large(), request_id.encode())
            self._log(method, path, match.function, 413, _since(started))
            return
        timeout = self.api.integration_timeout
        timer = None
        if timeout is not None:  # a plain timer with its arguments: made on every request
            timer = asyncio.get_running_loop().call_later(
                timeout, self._integration_timed_out, request, match.function, started
            )
        try:
            result = await self._invoke(match.function, payload)
        finally:
            if timer is not None:
                timer.cancel()
        if request.answered:
            return  # the client got its 503; the function has now finished too
        response = to_http_response(result.body) if result.ok else error_response()
        if routes.has_cors:
            settings = routes.cors_for(match.route_key)
            if settings is not None:
                response = cors.apply(settings, headers, response)
        if result.record is not None:
            result.record.answered_http(method, event["rawPath"], match.route_key, response.status)
        _respond(request, response, request_id.encode())
        self._log(method, path, match.function, response.status, _since(started))

    def _integration_timed_out(self, request: HttpRequest, function: str, started: float) -> None:
        """Answer 503 when the integration timeout passes first, as API Gateway does; the
        invocation itself is not cancelled (the function runs until it ends, as in Lambda)."""
        _respond(request, unavailable_response())
        self._log(request.method, request.path, function, 503, _since(started))

    def _preflight(self, request: HttpRequest, routes: RouteTable, started: float) -> bool:
        """Answer a CORS preflight as API Gateway does for an API with CORS; ``False`` when
        the request is not one, or its path belongs to no such API, and is routed as usual."""
        if not cors.is_preflight(request.method, request.headers):
            return False
        settings = routes.preflight_cors(request.path)
        if settings is None:
            return False
        response = cors.preflight_response(settings, request.headers)
        _respond(request, response, _request_id().encode())
        self._log(request.method, request.path, "CORS", response.status, _since(started))
        return True


def _declares_too_large(headers: Headers) -> bool:
    """Whether the request's Content-Length is over the HTTP API's payload limit: it is
    answered before its body is read. A chunked body over it is found while reading."""
    for name, value in headers:
        if name == b"content-length" and value.isdigit() and int(value) > limits.MAX_BODY_BYTES:
            return True
    return False


def _respond(request: HttpRequest, response: HttpResponse, request_id: bytes | None = None) -> None:
    headers = response.headers
    if request_id is not None:
        headers = [*headers, (b"apigw-requestid", request_id)]
    request.respond(response.status, headers, response.body)


def _request_id() -> str:
    return base64.b64encode(random_bytes(10)).decode()


def _host(request: HttpRequest) -> str:
    for name, value in request.headers:
        if name == b"host":
            return value.decode("latin-1")
    host, port = request.server
    return f"{host}:{port}"


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
