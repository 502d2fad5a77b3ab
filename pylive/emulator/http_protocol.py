"""uvicorn's httptools protocol with a deadline for each request head.

uvicorn times out idle keep-alive connections but not one that never completes its request
line and headers: each such connection would hold a socket and its buffers for as long as
the client likes. Here a connection that has not sent a complete head within ``head_timeout``
seconds of opening (or of starting its next request) is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any, cast

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEAD_TIMEOUT_S = 10.0


def head_timeout_protocol(head_timeout: float = HEAD_TIMEOUT_S) -> type[asyncio.Protocol]:
    """A protocol class for ``uvicorn.Config(http=...)``."""

    class HeadTimeoutProtocol(HttpToolsProtocol):
        _head_timer: asyncio.TimerHandle | None = None
        _in_head = False  # a request's head has begun and is not complete yet

        def connection_made(self, transport: Any) -> None:
            super().connection_made(cast(asyncio.Transport, _CoalescedWrites(transport, self.loop)))
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            # A head that arrives whole (as nearly every one does) needs no timer: one is
            # armed only for a head still incomplete once this data is parsed.
            if self._in_head:
                self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head = True

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(head_timeout, self._expired)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _expired(self) -> None:
            self._head_timer = None
            if not self.transport.is_closing():
                self.transport.close()

    return HeadTimeoutProtocol


class _CoalescedWrites:
    """A transport whose writes in one turn of the event loop go out as one: uvicorn writes a
    response's head and its body apart, two system calls and two TCP segments for one small
    answer. Everything else is the transport's own; closing sends what is pending first."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self.is_closing = transport.is_closing  # asked on every response: no __getattr__

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the session that runs it decides how to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
