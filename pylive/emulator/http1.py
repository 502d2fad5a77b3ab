"""A small HTTP/1.1 server on httptools for the local HTTP API.

It hands each request to an async handler as an :class:`HttpRequest` (method, path, headers,
a body read on demand) and writes the one response the handler gives, head and body in one
write. Requests on one connection are answered in order (pipelined ones wait, and reading
pauses meanwhile). A connection is closed when its request head is not complete within
``head_timeout`` of opening or of starting the next request, or when it stays idle between
requests for ``keep_alive_timeout``; one timer per server checks every connection each second,
so no timer is made or cancelled per request.

It carries only what the HTTP API needs: no TLS, no WebSocket upgrade (a request asking for
one is answered as a plain request and its connection closed after), no streamed responses.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import urllib.parse
from collections import deque
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

import httptools

Headers = list[tuple[bytes, bytes]]
Handler = Callable[["HttpRequest"], Awaitable[None]]

HEAD_TIMEOUT_S = 10.0
KEEP_ALIVE_TIMEOUT_S = 75.0
# Far above the HTTP API's own 10240-byte limit (which the handler answers with its 431):
# this only keeps a client from growing one head without bound.
MAX_HEAD_BYTES = 1024 * 1024
SWEEP_INTERVAL_S = 1.0
# After its last answer a connection reads (and drops) what the client still sends, for at
# most this long: closing a socket with unread data resets the connection, and the client
# could lose the answer it has not read yet.
LINGER_S = 2.0

_log = logging.getLogger(__name__)


class ClientDisconnected(Exception):
    """The client went away before its request body was complete."""


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}\r\n".encode()


_STATUS_LINES = {status: _status_line(status) for status in range(100, 600)}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_CLOSE = b"connection: close\r\n"


@functools.lru_cache(maxsize=2)
def _date_line(epoch_second: int) -> bytes:
    """The ``date`` header line: made once per second."""
    return b"date: " + formatdate(epoch_second, usegmt=True).encode() + b"\r\n"


def _encode(status: int, headers: Headers, body: bytes, *, close: bool) -> bytes:
    """A whole response: status line, ``date``, ``headers``, ``connection: close`` when the
    connection ends after it, and ``body``."""
    parts = [_STATUS_LINES.get(status) or _status_line(status), _date_line(int(time.time()))]
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")
    if close:
        parts.append(_CLOSE)
    parts += (b"\r\n", body)
    return b"".join(parts)


class HttpRequest:
    """One request as its handler sees it. ``headers`` have lowercase names, values without
    trailing whitespace, in the order sent; ``path`` is percent-decoded, ``raw_path`` not."""

    __slots__ = (
        "method",
        "path",
        "raw_path",
        "query",
        "headers",
        "client",
        "server",
        "answered",
        "_connection",
        "_keep_alive",
        "_head_only",
        "_expect_continue",
        "_chunks",
        "_size",
        "_complete",
        "_over_limit",
        "_waiter",
    )

    def __init__(
        self,
        connection: _Connection,
        method: str,
        path: str,
        raw_path: bytes,
        query: bytes,
        headers: Headers,
        keep_alive: bool,
        expect_continue: bool,
    ) -> None:
        self.method = method
        self.path = path
        self.raw_path = raw_path
        self.query = query
        self.headers = headers
        self.client = connection.client
        self.server = connection.local
        self.answered = False
        self._connection = connection
        self._keep_alive = keep_alive
        self._head_only = method == "HEAD"
        self._expect_continue = expect_continue
        self._chunks: list[bytes] = []
        self._size = 0
        self._complete = False
        self._over_limit = False
        self._waiter: asyncio.Future[None] | None = None

    async def body(self) -> bytes | None:
        """The whole body; ``None`` when it grew past the server's ``max_body``. Raises
        :class:`ClientDisconnected` when the client left before sending all of it."""
        while not (self._complete or self._over_limit):
            if self._connection.lost:
                raise ClientDisconnected
            if self._expect_continue:  # the client waits for this before it sends the body
                self._expect_continue = False
                self._connection.write(_CONTINUE)
            waiter = self._waiter = self._connection.loop.create_future()
            await waiter
        if self._over_limit:
            return None
        chunks = self._chunks
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def respond(self, status: int, headers: Headers, body: bytes) -> None:
        """Write the response (``headers`` must include ``content-length``). Only the first
        call writes; a client that has gone away gets nothing, silently."""
        if self.answered:
            return
        self.answered = True
        if self._keep_alive and self._connection.stopping():
            self._keep_alive = False
        data = _encode(
            status, headers, b"" if self._head_only else body, close=not self._keep_alive
        )
        self._connection.answered(self, data)

    # Called by the connection as the body arrives.

    def _add_body(self, chunk: bytes, limit: int) -> None:
        if self._over_limit:
            return
        self._size += len(chunk)
        if self._size > limit:
            self._over_limit = True
            self._chunks.clear()
            self._wake()  # a handler waiting for the whole body learns it now
        else:
            self._chunks.append(chunk)

    def _end_body(self) -> None:
        self._complete = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _Connection(asyncio.Protocol):
    """One client connection: parses requests, dispatches them in order, writes answers."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self.loop = server.loop
        self.lost = False
        self.client: tuple[str, int] = ("127.0.0.1", 0)
        self.local: tuple[str, int] = ("127.0.0.1", 0)  # the address the client connected to
        self.deadline: float | None = None  # when to close it, unless something happens first
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        # Answer the request before a "Connection: close" even if more data follows it.
        self._parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self._url = b""
        self._headers: Headers = []
        self._head_bytes = 0
        self._in_head = False  # a request's head has begun and is not complete yet
        self._expect_continue = False
        self._reading: HttpRequest | None = None  # whose body is arriving
        self._last: HttpRequest | None = None  # the latest whose head is complete
        self._active: HttpRequest | None = None  # being handled
        self._waiting: deque[HttpRequest] = deque()  # pipelined, not dispatched yet
        self._read_paused = False
        self._write_paused = False
        self._read_no_more = False  # after a protocol switch: what follows is not HTTP/1.1
        self._lingering = False  # answered for the last time; what comes in is dropped
        self._eof = False  # the client has sent all it will

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if peer:
            self.client = (str(peer[0]), int(peer[1]))
        local = transport.get_extra_info("sockname")
        if local:
            self.local = (str(local[0]), int(local[1]))
        self.deadline = self.loop.time() + self._server.head_timeout
        self._server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # The request asked to switch protocols: it is answered as a plain request, and
            # whatever follows it is not HTTP/1.1 this server could parse, so reading stops
            # here and the connection closes after that answer.
            if self._last is not None:
                self._last._keep_alive = False
            self._read_no_more = True
            self._pause_reading()
        except httptools.HttpParserError as exc:
            self._bad_request(exc)

    def eof_received(self) -> bool:
        """The client has finished sending (a half-close): what it asked is still answered,
        then the connection closes."""
        self._eof = True
        if self._active is None or self._reading is not None:
            return False  # nothing to answer, or a body that cannot be finished: close
        self._read_no_more = True
        if self._last is not None:
            self._last._keep_alive = False
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._server.connections.discard(self)
        if self._reading is not None:
            self._reading._wake()
        self._waiting.clear()
        self._server.connection_closed()

    def pause_writing(self) -> None:
        self._write_paused = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if not self._waiting:
            self._resume_reading()

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._head_bytes = 0
        self._expect_continue = False
        self._in_head = True
        self.deadline = self.loop.time() + self._server.head_timeout

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_bytes += len(url)
        if self._head_bytes > MAX_HEAD_BYTES:
            raise _HeadTooLarge

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value)
        if self._head_bytes > MAX_HEAD_BYTES:
            raise _HeadTooLarge
        name = name.lower()
        value = value.rstrip(b" \t")  # llhttp keeps trailing whitespace; RFC 9110 5.5 does not
        if name == b"expect" and value.lower() == b"100-continue":
            self._expect_continue = True
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        self.deadline = None
        parser = self._parser
        url = self._url
        if url[:1] == b"/" and b"#" not in url:
            raw_path, _, query = url.partition(b"?")
        else:  # absolute form, a fragment, "*"
            parsed = httptools.parse_url(url)
            raw_path, query = parsed.path or b"/", parsed.query or b""
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        keep_alive = parser.get_http_version() == "1.1" and parser.should_keep_alive()
        request = HttpRequest(
            self,
            parser.get_method().decode("ascii"),
            path,
            raw_path,
            query,
            self._headers,
            keep_alive,
            self._expect_continue,
        )
        self._reading = self._last = request
        if self._active is None:
            self._dispatch(request)
        else:
            self._waiting.append(request)
            self._pause_reading()

    def on_body(self, body: bytes) -> None:
        if self._reading is not None:
            self._reading._add_body(body, self._server.max_body)

    def on_message_complete(self) -> None:
        if self._reading is not None:
            self._reading._end_body()
            self._reading = None

    # Answers

    def stopping(self) -> bool:
        return self._server.stopping

    def write(self, data: bytes) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def answered(self, request: HttpRequest, data: bytes) -> None:
        """``request`` (the active one) has its response: send it, then go on."""
        if request is not self._active or self.lost:
            return
        self.write(data)
        self._active = None
        if not request._keep_alive:
            self._linger()
        elif self._waiting:
            self._dispatch(self._waiting.popleft())
            if not self._waiting and not self._write_paused:
                self._resume_reading()
        elif not self._in_head:  # else the next head's deadline stands
            self.deadline = self.loop.time() + self._server.keep_alive_timeout

    def _dispatch(self, request: HttpRequest) -> None:
        self._active = request
        self.loop.create_task(self._handle(request))

    async def _handle(self, request: HttpRequest) -> None:
        try:
            await self._server.handler(request)
        except ClientDisconnected:
            return
        except Exception:
            _log.exception("the HTTP API failed on %s %s", request.method, request.path)
        if not request.answered:  # it failed, or returned without an answer
            request._keep_alive = False
            request.respond(*_plain(500, b"Internal Server Error"))

    # Housekeeping

    def expire(self, now: float) -> None:
        if self.deadline is not None and now >= self.deadline:
            self._close()

    def shutdown(self) -> None:
        """The server is stopping: close now when idle, else after the current answer."""
        if self._active is None:
            self._close()

    def _bad_request(self, exc: Exception) -> None:
        if isinstance(exc.__context__, _HeadTooLarge):
            status, headers, body = _plain(431, b"Request Header Fields Too Large")
        else:
            status, headers, body = _plain(400, b"Invalid HTTP request received.")
        self.write(_encode(status, headers, body, close=True))
        self._linger()

    def _pause_reading(self) -> None:
        if not self._read_paused and self._transport is not None:
            self._read_paused = True
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._read_paused and not self._read_no_more and not self.lost:
            assert self._transport is not None
            self._read_paused = False
            self._transport.resume_reading()

    def _linger(self) -> None:
        """Close after what is written: send it and the end of the stream, then drop what
        the client still sends until it closes too, or for LINGER_S at most."""
        transport = self._transport
        if transport is None or transport.is_closing() or self._lingering:
            return
        if self._eof or not transport.can_write_eof():  # nothing more will come
            self._close()
            return
        self._lingering = True
        self._read_no_more = True
        transport.write_eof()
        if self._read_paused:
            self._read_paused = False
            transport.resume_reading()
        self.deadline = self.loop.time() + LINGER_S

    def _close(self) -> None:
        self.deadline = None
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()


class _HeadTooLarge(Exception):
    pass


def _plain(status: int, text: bytes) -> tuple[int, Headers, bytes]:
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(text)).encode()),
    ]
    return status, headers, text


class HttpServer:
    """Serves ``handler`` on a listening socket until :meth:`stop`."""

    def __init__(
        self,
        handler: Handler,
        *,
        max_body: int,
        head_timeout: float = HEAD_TIMEOUT_S,
        keep_alive_timeout: float = KEEP_ALIVE_TIMEOUT_S,
    ) -> None:
        self.handler = handler
        self.max_body = max_body  # past this a request's body() is None (and not kept)
        self.head_timeout = head_timeout
        self.keep_alive_timeout = keep_alive_timeout
        self.connections: set[_Connection] = set()
        self.stopping = False
        self.loop = asyncio.get_running_loop()
        self._server: asyncio.AbstractServer | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._stopped = asyncio.Event()
        self._all_closed = asyncio.Event()

    async def start(self, sock: Any) -> None:
        """Serve on ``sock``, a bound, listening socket."""
        self._server = await self.loop.create_server(
            lambda: _Connection(self), sock=sock, backlog=2048
        )
        self._sweeper = self.loop.call_later(SWEEP_INTERVAL_S, self._sweep)

    async def serve(self) -> None:
        """Until :meth:`stop`; then stop listening, close idle connections, and wait for the
        requests being answered to finish (their connections close after the answer)."""
        await self._stopped.wait()
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.shutdown()
        if self.connections:
            await self._all_closed.wait()
        if self._sweeper is not None:
            self._sweeper.cancel()

    def stop(self) -> None:
        self.stopping = True
        self._stopped.set()

    def connection_closed(self) -> None:
        if self.stopping and not self.connections:
            self._all_closed.set()

    def _sweep(self) -> None:
        now = self.loop.time()
        for connection in list(self.connections):
            connection.expire(now)
        self._sweeper = self.loop.call_later(SWEEP_INTERVAL_S, self._sweep)
