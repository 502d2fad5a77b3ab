"""Plain HTTP next to WebSocket on one port, as API Gateway serves @connections on the API's
own domain.

websockets' server parses only body-less handshake requests, so :func:`bind_connection_class`
returns a :class:`~websockets.asyncio.server.ServerConnection` subclass (websockets'
``create_connection`` hook) that looks at the first request head of each TCP connection: an
``Upgrade: websocket`` request goes on to websockets untouched (through a
:class:`~pylive.emulator.ws_flow.Flow` when given ``flows``); anything else is served here
as HTTP/1.1 (keep-alive, ``Content-Length`` bodies) by an async handler.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, cast

from websockets.asyncio.server import ServerConnection

from pylive.emulator.ws_flow import Flow, Flows, FlowTransport

MAX_HEAD_BYTES = 16 * 1024
# A connection that has not sent a complete request head (or a complete request, on a plain
# HTTP connection) this long after it started one is closed: a client that opens
# connections and never finishes them cannot hold the server's sockets forever.
HEAD_TIMEOUT_S = 10.0
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP request as received: raw target (path and query), headers in order, body."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    peer: str

    def header(self, name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in self.headers if k.lower() == lname), None)


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


HttpHandler = Callable[[HttpRequest], Awaitable[HttpResponse]]


class HttpSessions:
    """The plain HTTP connections of one server, so they can be closed when it stops."""

    def __init__(
        self, handler: HttpHandler, max_body_bytes: int, head_timeout: float = HEAD_TIMEOUT_S
    ) -> None:
        self.handler = handler
        self.max_body_bytes = max_body_bytes
        self.head_timeout = head_timeout
        self.open: set[_HttpSession] = set()
        self.sniffing: set[asyncio.Transport] = set()

    def close_all(self) -> None:
        for session in list(self.open):
            session.close()
        for transport in list(self.sniffing):
            transport.close()


class _HttpSession:
    """HTTP/1.1 on one TCP connection: one request at a time, keep-alive."""

    def __init__(self, transport: asyncio.Transport, sessions: HttpSessions, peer: str) -> None:
        self._transport = transport
        self._sessions = sessions
        self._peer = peer
        self._buffer = bytearray()
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None  # armed while a request is incomplete

    def feed(self, data: bytes) -> None:
        self._buffer += data
        self._next()

    def close(self) -> None:
        self._disarm()
        if self._task is not None:
            self._task.cancel()
        self._transport.close()

    def _arm(self) -> None:
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._sessions.head_timeout, self._transport.close)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _next(self) -> None:
        if self._task is not None or self._transport.is_closing():
            return
        if self._buffer:
            self._arm()  # until this request is complete
        head_end = self._buffer.find(b"\r\n\r\n")
        if head_end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                self._fail(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
            return
        try:
            method, target, version, headers = _parse_head(bytes(self._buffer[:head_end]))
        except ValueError:
            self._fail(HTTPStatus.BAD_REQUEST)
            return
        names = {k.lower(): v for k, v in headers}
        if "transfer-encoding" in names:
            self._fail(HTTPStatus.LENGTH_REQUIRED)
            return
        try:
            length = int(names.get("content-length", "0"))
        except ValueError:
            self._fail(HTTPStatus.BAD_REQUEST)
            return
        if length < 0 or length > self._sessions.max_body_bytes:
            self._fail(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            return
        start = head_end + 4
        if len(self._buffer) < start + length:
            return
        body = bytes(self._buffer[start : start + length])
        del self._buffer[: start + length]
        self._disarm()
        keep_alive = version == "HTTP/1.1" and names.get("connection", "").lower() != "close"
        request = HttpRequest(method, target, headers, body, self._peer)
        self._task = asyncio.get_running_loop().create_task(self._serve(request, keep_alive))

    async def _serve(self, request: HttpRequest, keep_alive: bool) -> None:
        try:
            response = await self._sessions.handler(request)
        except Exception:
            _log.exception("HTTP handler failed for %s %s", request.method, request.target)
            response = HttpResponse(500, b'{"message":"Internal server error"}')
        self._write(response, keep_alive)
        self._task = None
        if keep_alive:
            self._next()
        else:
            self._transport.close()

    def _fail(self, status: HTTPStatus) -> None:
        self._write(HttpResponse(status.value, status.phrase.encode()), keep_alive=False)
        self._transport.close()

    def _write(self, response: HttpResponse, keep_alive: bool) -> None:
        if self._transport.is_closing():
            return
        try:
            phrase = HTTPStatus(response.status).phrase
        except ValueError:
            phrase = "Unknown"
        lines = [f"HTTP/1.1 {response.status} {phrase}"]
        lines += [f"{k}: {v}" for k, v in response.headers]
        if response.status != 204:
            lines.append(f"Content-Length: {len(response.body)}")
        lines.append(f"Connection: {'keep-alive' if keep_alive else 'close'}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self._transport.write(head + (response.body if response.status != 204 else b""))


def _parse_head(head: bytes) -> tuple[str, str, str, list[tuple[str, str]]]:
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, target, version = request_line.split(" ", 2)
    if version not in ("HTTP/1.1", "HTTP/1.0") or not target.startswith("/"):
        raise ValueError(f"bad request line {request_line[:80]!r}")
    headers: list[tuple[str, str]] = []
    for line in header_lines:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise ValueError(f"bad header line {line[:80]!r}")
        headers.append((name, value.strip()))
    return method, target, version, headers


def _is_websocket_upgrade(head: bytes) -> bool:
    try:
        method, _, _, headers = _parse_head(head)
    except ValueError:
        return True  # let websockets answer a malformed request
    upgrade = next((v for k, v in headers if k.lower() == "upgrade"), "")
    return method == "GET" and "websocket" in upgrade.lower()


_SNIFF, _WEBSOCKET, _HTTP = "sniff", "websocket", "http"


def bind_connection_class(
    sessions: HttpSessions, flows: Flows | None = None
) -> type[ServerConnection]:
    """A connection class for ``serve(create_connection=...)`` that serves plain HTTP requests
    with ``sessions.handler`` and hands WebSocket upgrades to websockets; with ``flows``,
    each WebSocket connection has a ``flow`` that can die silently."""

    class SniffingConnection(ServerConnection):
        _mode = _SNIFF
        _raw: asyncio.Transport
        _head: bytearray
        _http: _HttpSession | None = None
        _sniff_timer: asyncio.TimerHandle
        flow: Flow | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            # uvloop's transports implement asyncio.Transport without subclassing it.
            self._raw = cast(asyncio.Transport, transport)
            self._head = bytearray()
            sessions.sniffing.add(self._raw)
            # Closed unless its first request head is complete in time (then websockets'
            # open_timeout, or the HTTP session's own timer, takes over).
            self._sniff_timer = asyncio.get_running_loop().call_later(
                sessions.head_timeout, self._raw.close
            )

        def data_received(self, data: bytes) -> None:
            if self._mode == _WEBSOCKET:
                if self.flow is None or self.flow.passes():
                    super().data_received(data)
            elif self._http is not None:
                self._http.feed(data)
            else:
                self._sniff(data)

        def _sniff(self, data: bytes) -> None:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                if len(self._head) > MAX_HEAD_BYTES:
                    self._raw.close()
                return
            received = bytes(self._head)
            self._head.clear()
            sessions.sniffing.discard(self._raw)
            self._sniff_timer.cancel()
            if _is_websocket_upgrade(received[:end]):
                self._mode = _WEBSOCKET
                transport: asyncio.Transport = self._raw
                if flows is not None:
                    self.flow = flows.new()
                    transport = cast(asyncio.Transport, FlowTransport(self._raw, self.flow, flows))
                super().connection_made(transport)
                super().data_received(received)
            else:
                self._mode = _HTTP
                peer: Any = self._raw.get_extra_info("peername") or ("127.0.0.1", 0)
                self._http = _HttpSession(self._raw, sessions, str(peer[0]))
                sessions.open.add(self._http)
                self._http.feed(received)

        def eof_received(self) -> bool | None:  # type: ignore[override]
            if self._mode != _WEBSOCKET:
                return None
            if self.flow is not None and not self.flow.passes():
                return True  # a FIN on a dead flow never arrives: keep the socket
            super().eof_received()
            return None

        def connection_lost(self, exc: Exception | None) -> None:
            sessions.sniffing.discard(self._raw)
            self._sniff_timer.cancel()
            if self._mode == _WEBSOCKET:
                super().connection_lost(exc)
            elif self._http is not None:
                sessions.open.discard(self._http)
                self._http.close()

        def pause_writing(self) -> None:
            if self._mode == _WEBSOCKET:
                super().pause_writing()

        def resume_writing(self) -> None:
            if self._mode == _WEBSOCKET:
                super().resume_writing()

    return SniffingConnection
