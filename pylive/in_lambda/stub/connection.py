"""This container's relay connection: the WebSocket it receives on (opened lazily, renewed
before it may be dead) and the @connections client it posts with."""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from typing import Any
from urllib.parse import urlencode

from pylive.in_lambda import protocol
from pylive.in_lambda.stub.connections_api import ConnectionsApi, check_post, gateway_refusal
from pylive.in_lambda.stub.errors import Closed, PyliveRelayError, _ConnectionLost
from pylive.in_lambda.stub.settings import Settings
from pylive.in_lambda.stub.websocket import WebSocket


class Connection:
    """This container's relay connection, its ids, and the @connections client."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ws: WebSocket | None = None
        self.opened = 0.0
        self.last_received = 0.0  # epoch seconds a frame last arrived: the only proof it works
        self.connection_id: str | None = None
        self.runner_id: str | None = None
        self.reassembler = protocol.Reassembler(max_message_bytes=settings.limits.max_message_bytes)
        self.pending: deque[protocol.Message] = deque()  # received while awaiting `whoami`
        self._client: Any = None

    # -- the WebSocket ---------------------------------------------------------------------

    def ensure_open(self, until: float = 0.0) -> WebSocket:
        """The open connection, renewed first if it may be dead or would not last ``until``
        (epoch seconds: the invocation's deadline)."""
        now, limits = time.time(), self.settings.limits
        ws = self.ws
        if ws is not None:
            ws.poll()  # a close (the gateway went away) may be waiting unread
        if ws is not None and (
            ws.closed
            or now - self.last_received > limits.idle_renew_s
            or max(now, until) + limits.age_margin_s - self.opened > limits.max_duration_s
        ):
            self.close()
            ws = None
        if ws is None:
            ws = self.ws = WebSocket(
                self._signed_url(), timeout=10, max_size=limits.max_message_bytes
            )
            self.opened = self.last_received = time.time()
            self.reassembler = protocol.Reassembler(max_message_bytes=limits.max_message_bytes)
            self.pending.clear()
            self.whoami()
        return ws

    def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):  # already broken
                self.ws.close()
        self.ws = None
        self.connection_id = self.runner_id = None

    def _signed_url(self) -> str:
        s = self.settings.stub
        query = urlencode({"role": "stub", "app": s.app, "stage": s.stage})
        return self.settings.signer.presign(f"{s.relay_url}?{query}", expires=300)

    def whoami(self) -> None:
        """Ask the router for this connection's id and the runner's; relay messages that
        arrive meanwhile are kept for :meth:`receive`."""
        ws = self.ws
        assert ws is not None
        self.send(ws, protocol.encode(protocol.WhoAmIRequest()))
        end = time.monotonic() + max(self.settings.stub.ack_timeout, 5.0)
        while True:
            frame = self._recv(ws, end - time.monotonic())
            if frame is None:
                raise _ConnectionLost("the relay did not answer `whoami` within 5 s")
            try:
                message = self.reassembler.feed(frame)
            except protocol.ProtocolError as exc:
                refusal = gateway_refusal(frame)
                if refusal is not None:
                    raise PyliveRelayError(
                        f"the relay answered `whoami` with {refusal!r}"
                    ) from None
                print(f"pylive: ignored a relay message: {exc}")
                continue
            if isinstance(message, protocol.WhoAmI):
                self.connection_id = message.connection_id
                self.runner_id = message.runner
                return
            if message is not None:
                self.pending.append(message)

    def send(self, ws: WebSocket, text: str) -> None:
        try:
            ws.send(text)
        except Closed:
            self.close()
            raise _ConnectionLost("the relay connection closed") from None

    def ping(self) -> None:
        """Ask the router for a pong: proof, when it comes, that the connection works."""
        assert self.ws is not None
        self.send(self.ws, protocol.encode(protocol.Ping(id=os.urandom(4).hex())))

    def _recv(self, ws: WebSocket, timeout: float) -> str | bytes | None:
        if timeout <= 0:
            return None
        try:
            frame = ws.recv(timeout)
        except Closed:
            self.close()
            raise _ConnectionLost("the relay connection closed during the invocation") from None
        if frame is None:
            return None
        self.last_received = time.time()
        if isinstance(frame, str) or frame.startswith(protocol.CHUNK_PREFIX):
            return frame  # a chunk is read from its bytes, with no copy as text
        return frame.decode()

    def _keep(self, frame: str | bytes) -> protocol.Message | None:
        try:
            message = self.reassembler.feed(frame)
        except protocol.ProtocolError as exc:
            print(f"pylive: ignored a relay message: {exc}")
            return None
        if message is not None:
            self.pending.append(message)
        return message

    def receive(self, timeout: float) -> protocol.Message | None:
        """The next complete relay message, or None after ``timeout`` seconds."""
        if self.pending:
            return self.pending.popleft()
        ws = self.ws
        assert ws is not None
        end = time.monotonic() + timeout
        while True:
            frame = self._recv(ws, end - time.monotonic())
            if frame is None:
                return None
            if self._keep(frame) is not None:
                return self.pending.popleft()

    # -- @connections ----------------------------------------------------------------------

    @property
    def api(self) -> ConnectionsApi:
        if self._client is None:
            self._client = ConnectionsApi(self.settings)
        api: ConnectionsApi = self._client
        return api

    def post(self, connection_id: str, data: bytes, *, read_answer: bool = True) -> None:
        """POST ``data`` to a connection; with ``read_answer=False`` the answer is left for
        :meth:`finish_post` to read (and raise on)."""
        self.api.send("POST", connection_id, data)
        if read_answer:
            self.finish_post()

    def post_all(self, connection_id: str, frames: list[bytes]) -> None:
        """POST the chunks of a large message (see :meth:`ConnectionsApi.post_all`)."""
        answers = self.api.post_all(connection_id, frames)
        for status, body in answers:
            check_post(status, body)

    @property
    def post_unread(self) -> bool:
        return self.api.http.pending

    def finish_post(self) -> None:
        check_post(*self.api.answer())

    def runner_alive(self) -> bool:
        if self.runner_id is None:
            return False
        self.api.send("GET", self.runner_id)
        status, body = self.api.answer()
        if status == 410:
            return False
        if status != 200:
            raise PyliveRelayError(f"@connections GET answered {status}: {body[:200]!r}")
        return True
