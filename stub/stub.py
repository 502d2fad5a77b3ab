"""The stub: what every function runs in Lambda while its stage is in live development.

Each invocation is relayed to the runner on the developer's machine (``pylive dev``) and its
answer returned as if the function ran here. Runs on the plain Lambda Python runtime: the stdlib,
the bundled ``websockets`` (its sans-I/O protocol only) and ``pylive.protocol``,
``pylive.relay_settings`` and ``pylive.signing``, nothing else.

Both connections are driven on the invocation's own thread, with plain blocking sockets: a
relayed invocation waits on two network round trips, and a reader thread or a generic HTTP
or AWS client would add more time to each than the round trip itself.

One WebSocket connection per container, opened lazily (SigV4-signed, ``?role=stub``), reused
by warm invocations. Only frames received count as proof that it works: one that has received
nothing for ``IDLE_RENEW_S`` (a NAT gateway forgets an idle flow after 350 s, API Gateway
closes an idle connection after 10 minutes) is renewed before use, and so is one that would
reach API Gateway's 2-hour limit before the invocation's deadline. While it waits for an
answer the stub pings the router whenever nothing was received for ``KEEPALIVE_S``, which
keeps both limits away; a ping unanswered within ``PROBE_TIMEOUT_S``, or a connection that
closes, is replaced by a new one, and the invoke is posted again with the new connection as
``reply_to`` (the runner then answers there, from its memory of recent answers if need be).
TCP keepalive runs on both sockets too. The invoke goes to the runner's connection through the
@connections API;
the ack and the answer come back on the stub's own connection, matched by request id. The
@connections answer to the invoke is read once the runner's answer is in (or after
``POST_ANSWER_WAIT_S``, for a slow one): by then it has long arrived, so a fast warm
invocation waits (and the Lambda container wakes) once instead of twice.

Configuration (environment): :class:`pylive.relay_settings.StubSettings`, ``PYLIVE_RELAY_URL``,
``PYLIVE_CALLBACK_URL``, ``PYLIVE_APP``, ``PYLIVE_STAGE``, ``PYLIVE_FUNCTION_ID``, optionally
``PYLIVE_ACK_TIMEOUT`` (seconds, 2) and ``PYLIVE_LIVENESS_INTERVAL`` (seconds between checks
that the runner is still connected while a slow invocation runs, 1) and
``PYLIVE_RUNNER_GRACE`` (seconds a registered runner that does not ack may take to come back,
45: a runner whose network path died silently notices within 40 s and reconnects; the invoke
is then posted to it again).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from pylive import protocol
from pylive.relay_settings import StubSettings
from pylive.signing import Signer

# The process environment; a local host gives each container its own mapping.
environ: Mapping[str, str] = os.environ

# https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html
IDLE_LIMIT_S = 10 * 60  # API Gateway closes a connection idle for 10 minutes
MAX_DURATION_S = 2 * 60 * 60  # ... and any connection after 2 hours
# https://docs.aws.amazon.com/vpc/latest/userguide/nat-gateway-troubleshooting.html
NAT_IDLE_S = 350  # a NAT gateway forgets a flow idle this long, and tells neither end
IDLE_RENEW_S = 4 * 60  # renew a connection that received nothing for this long before use
AGE_MARGIN_S = 60  # renew one whose 2 hours end this close to an invocation's deadline
KEEPALIVE_S = 30  # while waiting, ping when nothing was received for this long
PROBE_TIMEOUT_S = 10.0  # the router (a Lambda function, maybe cold) answers a ping by then
RUNNER_RECONNECT_S = 3.0  # a runner renewing its connection is unregistered this long at most
TCP_KEEPALIVE = (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3))
DEADLINE_MARGIN_S = 0.1  # answer before Lambda's own timeout would cut the stub off
POST_CHUNK_BYTES = 120 * 1024  # @connections accepts 128 KB per message
CHUNK_POSTS_IN_FLIGHT = 8  # the chunks of one large invoke posted at the same time
POST_ANSWER_WAIT_S = 0.05  # how long the @connections answer to an invoke may stay unread
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class PyliveDevNotRunning(Exception):
    """No runner is connected for this app and stage."""


class PyliveRelayTimeout(Exception):
    """The runner took the invocation but did not answer before the function's deadline."""


class PyliveRelayError(Exception):
    """The relay connection failed while an invocation was in flight."""


class _ConnectionLost(PyliveRelayError):
    """This container's relay connection closed."""


class _Gone(Exception):
    pass


class _Settings:
    """The stub's settings (``PYLIVE_*``, see :class:`StubSettings`) and what it takes from
    the rest of its environment: the region and role credentials that sign its calls, and
    the function's environment, which every invoke carries."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.stub = StubSettings.from_env(env)
        self.region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.signer = Signer(
            env.get("AWS_ACCESS_KEY_ID", ""),
            env.get("AWS_SECRET_ACCESS_KEY", ""),
            env.get("AWS_SESSION_TOKEN") or None,
            self.region,
        )
        # What each invoke carries; the trace id is per invocation and travels on its own.
        self.environment = {
            k: v for k, v in protocol.strip_credentials(env).items() if k != "_X_AMZN_TRACE_ID"
        }

    def not_running(self, why: str) -> PyliveDevNotRunning:
        return PyliveDevNotRunning(
            f"pylive dev is not running for stage {self.stub.stage} ({why}); "
            f"start `pylive dev --stage {self.stub.stage}`"
        )


class _Connection:
    """This container's relay connection, its ids, and the @connections client."""

    def __init__(self, settings: _Settings) -> None:
        self.settings = settings
        self.ws: _WebSocket | None = None
        self.opened = 0.0
        self.last_received = 0.0  # epoch seconds a frame last arrived: the only proof it works
        self.connection_id: str | None = None
        self.runner_id: str | None = None
        self.reassembler = protocol.Reassembler(max_message_bytes=MAX_MESSAGE_BYTES)
        self.pending: deque[protocol.Message] = deque()  # received while awaiting `whoami`
        self._client: Any = None

    # -- the WebSocket ---------------------------------------------------------------------

    def ensure_open(self, until: float = 0.0) -> _WebSocket:
        """The open connection, renewed first if it may be dead or would not last ``until``
        (epoch seconds: the invocation's deadline)."""
        now = time.time()
        ws = self.ws
        if ws is not None:
            ws.poll()  # a close (the gateway went away) may be waiting unread
        if ws is not None and (
            ws.closed
            or now - self.last_received > IDLE_RENEW_S
            or max(now, until) + AGE_MARGIN_S - self.opened > MAX_DURATION_S
        ):
            self.close()
            ws = None
        if ws is None:
            ws = self.ws = _WebSocket(self._signed_url(), timeout=10)
            self.opened = self.last_received = time.time()
            self.reassembler = protocol.Reassembler(max_message_bytes=MAX_MESSAGE_BYTES)
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
                refusal = _gateway_refusal(frame)
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

    def send(self, ws: _WebSocket, text: str) -> None:
        try:
            ws.send(text)
        except _Closed:
            self.close()
            raise _ConnectionLost("the relay connection closed") from None

    def ping(self) -> None:
        """Ask the router for a pong: proof, when it comes, that the connection works."""
        assert self.ws is not None
        self.send(self.ws, protocol.encode(protocol.Ping(id=os.urandom(4).hex())))

    def _recv(self, ws: _WebSocket, timeout: float) -> str | bytes | None:
        if timeout <= 0:
            return None
        try:
            frame = ws.recv(timeout)
        except _Closed:
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
    def api(self) -> _ConnectionsApi:
        if self._client is None:
            self._client = _ConnectionsApi(self.settings)
        api: _ConnectionsApi = self._client
        return api

    def post(self, connection_id: str, data: bytes, *, read_answer: bool = True) -> None:
        """POST ``data`` to a connection; with ``read_answer=False`` the answer is left for
        :meth:`finish_post` to read (and raise on)."""
        self.api.send("POST", connection_id, data)
        if read_answer:
            self.finish_post()

    def post_all(self, connection_id: str, frames: list[bytes]) -> None:
        """POST the chunks of a large message (see :meth:`_ConnectionsApi.post_all`)."""
        answers = self.api.post_all(connection_id, frames)
        for status, body in answers:
            _check_post(status, body)

    @property
    def post_unread(self) -> bool:
        return self.api.http.pending

    def finish_post(self) -> None:
        _check_post(*self.api.answer())

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


def _gateway_refusal(frame: str | bytes) -> str | None:
    """The message of API Gateway's own answer to a route request that failed (such as
    ``{"message": "Internal server error", "connectionId": ..., "requestId": ...}``)."""
    try:
        body = json.loads(frame)
    except ValueError:
        return None
    if isinstance(body, dict) and body.get("message") and "connectionId" in body:
        return str(body["message"])
    return None


def _check_post(status: int, body: bytes) -> None:
    """Raise on a @connections POST answer other than 200 (410: the connection is gone)."""
    if status == 410:
        raise _Gone
    if status != 200:
        raise PyliveRelayError(f"@connections POST answered {status}: {body[:200]!r}")


class _ConnectionsApi:
    """The @connections API over one kept-alive HTTP(S) connection, SigV4-signed; the chunks
    of a large message go over up to ``CHUNK_POSTS_IN_FLIGHT`` connections at once (threads
    and connections made on first need, then kept with the container)."""

    def __init__(self, settings: _Settings) -> None:
        self.settings = settings
        url = urlsplit(settings.stub.callback_url)
        self.origin = f"{url.scheme}://{url.netloc}"
        self.base = url.path.rstrip("/")
        self._address = (url.hostname or "localhost", url.port, url.scheme == "https")
        self.http = self._new_http()
        self._lanes: list[_Http] = []  # the extra connections for chunks
        self._threads: ThreadPoolExecutor | None = None

    def _new_http(self) -> _Http:
        host, port, tls = self._address
        return _Http(host, port, tls=tls)

    def send(self, method: str, connection_id: str, body: bytes = b"") -> None:
        """Send a call; :meth:`answer` reads its answer."""
        self._send(self.http, method, connection_id, body)

    def answer(self) -> tuple[int, bytes]:
        return self._answer(self.http)

    def post_all(self, connection_id: str, bodies: list[bytes]) -> list[tuple[int, bytes]]:
        """POST every body (the runner reassembles chunks in any order), each connection in
        turn stopping at its first answer other than 200; the answers of the posts made."""
        lanes = max(1, min(len(bodies), CHUNK_POSTS_IN_FLIGHT))
        while len(self._lanes) < lanes - 1:
            self._lanes.append(self._new_http())
        https = [self.http, *self._lanes[: lanes - 1]]
        parts = [bodies[index::lanes] for index in range(lanes)]
        others = [
            self._pool().submit(self._post_lane, https[lane], connection_id, parts[lane])
            for lane in range(1, lanes)
        ]
        try:
            answers = self._post_lane(https[0], connection_id, parts[0])
        finally:
            wait(others)  # every lane ends before its connection serves anything else
        for future in others:
            answers += future.result()  # raises what failed in that lane
        return answers

    def _pool(self) -> ThreadPoolExecutor:
        if self._threads is None:
            self._threads = ThreadPoolExecutor(
                CHUNK_POSTS_IN_FLIGHT - 1, thread_name_prefix="pylive-post"
            )
        return self._threads

    def _post_lane(
        self, http: _Http, connection_id: str, bodies: list[bytes]
    ) -> list[tuple[int, bytes]]:
        answers = []
        for body in bodies:
            self._send(http, "POST", connection_id, body)
            answers.append(self._answer(http))
            if answers[-1][0] != 200:
                break
        return answers

    def _send(self, http: _Http, method: str, connection_id: str, body: bytes) -> None:
        path = _connection_path(self.base, connection_id)
        headers = self.settings.signer.headers(method, self.origin + path, body)
        with self._unreachable():
            http.send(method, path, headers, body)

    def _answer(self, http: _Http) -> tuple[int, bytes]:
        with self._unreachable():
            return http.answer()

    @contextlib.contextmanager
    def _unreachable(self) -> Iterator[None]:
        try:
            yield
        except (OSError, ValueError):
            raise PyliveRelayError(
                f"cannot reach the @connections API at {self.settings.stub.callback_url}"
            ) from None

    def close(self) -> None:
        for http in (self.http, *self._lanes):
            http.close()


@functools.lru_cache(maxsize=64)
def _connection_path(base: str, connection_id: str) -> str:
    """A connection's @connections path (the same few on every warm invocation)."""
    return f"{base}/@connections/{quote(connection_id, safe='')}"


class _Closed(Exception):
    """The WebSocket connection is closed."""


class _WebSocket:
    """A client WebSocket driven on the calling thread: websockets' sans-I/O protocol over a
    blocking socket. Pings are answered whenever the connection is read."""

    def __init__(self, url: str, *, timeout: float) -> None:
        uri = parse_uri(url)
        try:
            self.sock = _open_socket(uri.host, uri.port, tls=uri.secure, timeout=timeout)
        except OSError as exc:
            where = url.split("?", 1)[0]
            raise PyliveRelayError(f"cannot reach the relay at {where}: {exc}") from None
        self.protocol = ClientProtocol(uri, max_size=MAX_MESSAGE_BYTES)
        self._messages: deque[str | bytes] = deque()
        self._parts: list[bytes | bytearray | memoryview] = []
        self._text = True
        end = time.monotonic() + timeout
        try:
            self.protocol.send_request(self.protocol.connect())
            self._flush()
            while self.protocol.state is State.CONNECTING and self.protocol.handshake_exc is None:
                if end - time.monotonic() <= 0 or not self._read(end - time.monotonic()):
                    raise TimeoutError("the relay did not complete the WebSocket handshake")
        except BaseException:
            self.sock.close()
            raise
        if self.protocol.handshake_exc is not None:
            self.sock.close()
            why = self.protocol.handshake_exc
            raise PyliveRelayError(f"the relay refused the connection: {why}")

    @property
    def closed(self) -> bool:
        return self.protocol.state is not State.OPEN

    def send(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        try:
            self._flush()
        except OSError:
            self.sock.close()
            raise _Closed from None

    def poll(self) -> None:
        """Take in what has arrived already, without waiting."""
        self._read(0)

    def recv(self, timeout: float) -> str | bytes | None:
        """The next message; None after ``timeout`` seconds; :class:`_Closed` once closed."""
        end = time.monotonic() + timeout
        while not self._messages:
            if self.closed:
                raise _Closed
            remaining = end - time.monotonic()
            if remaining <= 0 or not self._read(remaining):
                return None
        return self._messages.popleft()

    def close(self) -> None:
        try:
            if self.protocol.state is State.OPEN:
                self.protocol.send_close(1000)
                self._flush()
        except OSError:
            pass
        finally:
            self.sock.close()

    def _read(self, timeout: float) -> bool:
        """Take what arrives within ``timeout``; False if nothing did."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 16)
        except (TimeoutError, BlockingIOError, ssl.SSLWantReadError):
            return False
        except OSError:
            data = b""
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        self._flush()  # pongs, the close handshake
        for event in self.protocol.events_received():
            if isinstance(event, Frame):  # else the handshake's response: the state says it
                self._take(event)
        return True

    def _take(self, frame: Frame) -> None:
        if frame.opcode not in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            return  # control frames: the protocol has answered them
        if frame.opcode is not Opcode.CONT:
            self._text = frame.opcode is Opcode.TEXT
        self._parts.append(frame.data)
        if frame.fin:
            data = b"".join(self._parts)
            self._parts.clear()
            text = self._text and not data.startswith(protocol.CHUNK_PREFIX)
            self._messages.append(data.decode() if text else data)

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)
            else:  # the protocol wants the write side closed (after a close frame)
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_WR)


class _Http:
    """HTTP/1.1 requests, one at a time, on one kept-alive connection (reopened when the
    server has closed it). A request is sent by :meth:`send` and its response read by
    :meth:`answer`, so that the caller may wait for something else in between."""

    def __init__(self, host: str, port: int | None, *, tls: bool, timeout: float = 10) -> None:
        self.host, self.tls, self.timeout = host, tls, timeout
        self.port = port or (443 if tls else 80)
        self.sock: socket.socket | None = None
        self._buffer = b""
        self._sent: tuple[bytes, bool] | None = None  # the request awaiting its answer; reused?

    @property
    def pending(self) -> bool:
        return self._sent is not None

    def request(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, bytes]:
        self.send(method, path, headers, body)
        return self.answer()

    def send(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> None:
        if self._sent is not None:  # a caller gave up waiting for it: start afresh
            self.close()
        lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers)]
        lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        self._sent = (data, self._send(data))

    def answer(self) -> tuple[int, bytes]:
        """The response to the request sent last. A kept-alive connection the server had
        closed fails on first use: the request is sent once more on a new one."""
        assert self._sent is not None, "no request was sent"
        data, reused = self._sent
        try:
            assert self.sock is not None
            return self._response(self.sock)
        except (OSError, ValueError):
            self.close()
            if not reused:
                raise
            self._send(data)
            assert self.sock is not None
            try:
                return self._response(self.sock)
            except (OSError, ValueError):
                self.close()
                raise
        finally:
            self._sent = None

    def _send(self, data: bytes) -> bool:
        """Send on the kept connection, or a new one; True if it was kept from before."""
        reused = self.sock is not None
        sock = self.sock or self._open()
        try:
            sock.settimeout(self.timeout)
            sock.sendall(data)
        except OSError:
            self.close()
            if not reused:
                raise
            return self._send(data)
        return reused

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self._buffer, self._sent = None, b"", None

    def _open(self) -> socket.socket:
        self.sock = _open_socket(self.host, self.port, tls=self.tls, timeout=self.timeout)
        self._buffer = b""
        return self.sock

    def _response(self, sock: socket.socket) -> tuple[int, bytes]:
        head = self._until(sock, b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        fields = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if fields.get("transfer-encoding", "").lower() == "chunked":
            body = self._chunked(sock)
        else:
            body = self._exactly(sock, int(fields.get("content-length") or 0))
        if fields.get("connection", "").lower() == "close":
            self.close()
        return status, body

    def _chunked(self, sock: socket.socket) -> bytes:
        chunks = []
        while True:
            size = int(self._until(sock, b"\r\n").split(b";")[0], 16)
            chunks.append(self._exactly(sock, size))
            self._until(sock, b"\r\n")
            if size == 0:
                return b"".join(chunks)

    def _until(self, sock: socket.socket, marker: bytes) -> bytes:
        while (end := self._buffer.find(marker)) < 0:
            self._fill(sock)
        found, self._buffer = self._buffer[:end], self._buffer[end + len(marker) :]
        return found

    def _exactly(self, sock: socket.socket, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill(sock)
        found, self._buffer = self._buffer[:size], self._buffer[size:]
        return found

    def _fill(self, sock: socket.socket) -> None:
        data = sock.recv(1 << 16)
        if not data:
            raise ConnectionResetError("the server closed the connection")
        self._buffer += data


def _open_socket(host: str, port: int, *, tls: bool, timeout: float) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # Kernel probes keep a NAT's mapping alive while the container runs and find a dead peer.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in TCP_KEEPALIVE:
        option = getattr(socket, name, None)
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)
    if tls:
        return ssl.create_default_context().wrap_socket(sock, server_hostname=host)
    return sock


_state: _Connection | None = None
_state_lock = threading.Lock()


def _connection() -> _Connection:
    global _state
    with _state_lock:
        if _state is None:
            _state = _Connection(_Settings(environ))
        return _state


def handler(event: Any, context: Any) -> Any:
    conn = _connection()
    settings = conn.settings
    deadline_ms = int(time.time() * 1000) + int(context.get_remaining_time_in_millis())
    conn.ensure_open(until=deadline_ms / 1000)
    if conn.runner_id is None:
        conn.whoami()
    if conn.runner_id is None:
        raise settings.not_running("no runner is connected")
    invoke = protocol.Invoke(
        request_id=str(context.aws_request_id),
        function_id=settings.stub.function_id,
        deadline_ms=deadline_ms,
        event=event,
        context=protocol.InvokeContext(
            invoked_function_arn=str(context.invoked_function_arn),
            trace_id=environ.get("_X_AMZN_TRACE_ID"),
            client_context=_as_dict(getattr(context, "client_context", None)),
            identity=_identity(getattr(context, "identity", None)),
        ),
        environment=settings.environment,
        reply_to=conn.connection_id,
    )
    return _Relayed(conn, invoke).answer()


class _Relayed:
    """One invocation relayed to the runner, until its answer is in: the invoke (posted again
    after a reconnect, to the stub's new connection or to the runner's) and its progress."""

    def __init__(self, conn: _Connection, invoke: protocol.Invoke) -> None:
        self.conn = conn
        self.settings = conn.settings
        self.invoke = invoke
        self.frames = self._frames()
        self.acked = False
        self.ack_end = time.monotonic() + self.settings.stub.ack_timeout
        self.grace_end: float | None = None  # set at the first ack timeout
        self.probe_sent: float | None = None  # epoch seconds of an unanswered ping

    @property
    def deadline(self) -> float:
        return self.invoke.deadline_ms / 1000

    def _frames(self) -> list[bytes]:
        encoded = protocol.encode(self.invoke)
        if len(encoded) > MAX_MESSAGE_BYTES:  # the runner would drop it: say so
            raise PyliveRelayError(
                f"the invocation of {self.settings.stub.function_id} is {len(encoded)} bytes "
                f"encoded, over the relay's limit of {MAX_MESSAGE_BYTES} bytes for one message"
            )
        # The chunks name the invoke: a runner that cannot take them answers with the reason.
        invoke = self.invoke
        return protocol.split_encoded(
            encoded,
            max_frame_bytes=POST_CHUNK_BYTES,
            request_id=invoke.request_id,
            reply_to=invoke.reply_to,
        )

    # -- posting the invoke ----------------------------------------------------------------

    def _post(self, *, read_last_answer: bool = True) -> None:
        """Post the invoke to the runner: one frame with its answer left unread unless
        ``read_last_answer``; the chunks of a large one several at a time, answers read."""
        conn = self.conn
        assert conn.runner_id is not None
        if len(self.frames) == 1:
            conn.post(conn.runner_id, self.frames[0], read_answer=read_last_answer)
        else:
            conn.post_all(conn.runner_id, self.frames)

    def _post_again(self) -> None:
        """The runner's connection is gone; it may have reconnected under a new id."""
        self.conn.whoami()
        if self.conn.runner_id is not None:
            try:
                self._post()
                self.ack_end = time.monotonic() + self.settings.stub.ack_timeout
                return
            except _Gone:
                pass
        raise self._runner_gone("its connection is gone")

    def _repost(self) -> None:
        """Post the invoke again, answers to this connection; ``resume`` once acked, so a
        runner that does not know it any more says so instead of running it again."""
        self.invoke = dataclasses.replace(
            self.invoke, reply_to=self.conn.connection_id, resume=self.acked
        )
        self.frames = self._frames()
        self.probe_sent = None
        try:
            self._post()
        except _Gone:
            self._post_again()
        self.ack_end = time.monotonic() + self.settings.stub.ack_timeout

    def _runner_gone(self, why: str) -> Exception:
        self.conn.runner_id = None
        if not self.acked:
            return self.settings.not_running(why)
        return PyliveRelayError(
            f"pylive dev for stage {self.settings.stub.stage} disconnected while running "
            f"{self.settings.stub.function_id}; the invocation was lost"
        )

    # -- recovering ------------------------------------------------------------------------

    def _reconnect(self) -> None:
        """This connection died (closed, or a ping went unanswered): open a new one and
        post the invoke again, so the answer comes there."""
        self.conn.close()
        self.conn.ensure_open(until=self.deadline)
        if self.conn.runner_id is None:
            raise self._runner_gone("no runner is connected")
        self._repost()

    def _no_ack(self) -> None:
        """No ack in time: prove this connection with ``whoami`` (which also gives the
        runner's current id) and post again to a runner that reconnected; a registered runner
        that stays silent gets ``runner_grace`` seconds to come back."""
        if self.grace_end is None:
            self.grace_end = time.monotonic() + self.settings.stub.runner_grace
        before = self.conn.runner_id
        try:
            self.conn.whoami()
        except _ConnectionLost:
            self._reconnect()
            return
        if self.conn.runner_id is None:
            raise self.settings.not_running("no runner is connected")
        if self.conn.runner_id != before:
            self._repost()
            return
        if time.monotonic() >= self.grace_end:
            waited = self.settings.stub.ack_timeout + self.settings.stub.runner_grace
            raise self.settings.not_running(f"no answer within {waited:g} s")
        self.ack_end = time.monotonic() + self.settings.stub.ack_timeout

    def _check_runner(self) -> None:
        """While the invocation runs: is the runner's connection still there? A runner that
        renewed its connection (or reconnected) is asked again for the invocation."""
        if self.conn.runner_alive():
            return
        before = self.conn.runner_id
        end = time.monotonic() + RUNNER_RECONNECT_S
        while True:
            self.conn.whoami()
            if self.conn.runner_id not in (None, before) or time.monotonic() >= end:
                break
            time.sleep(0.2)  # a runner renewing its connection registers again at once
        if self.conn.runner_id in (None, before):
            raise self._runner_gone("its connection is gone")
        self._repost()

    def _keepalive(self) -> float:
        """Ping when nothing was received for ``KEEPALIVE_S``; a ping unanswered for
        ``PROBE_TIMEOUT_S`` means the connection is dead. Seconds until the next check."""
        now = time.time()
        if self.probe_sent is not None:
            if self.conn.last_received >= self.probe_sent:
                self.probe_sent = None
            elif now - self.probe_sent >= PROBE_TIMEOUT_S:
                self._reconnect()
                return 0.0
            else:
                return self.probe_sent + PROBE_TIMEOUT_S - now
        quiet = now - self.conn.last_received
        if quiet < KEEPALIVE_S:
            return KEEPALIVE_S - quiet
        self.conn.ping()
        self.probe_sent = now
        return PROBE_TIMEOUT_S

    # -- waiting ---------------------------------------------------------------------------

    def answer(self) -> Any:
        try:
            self._post(read_last_answer=False)
        except _Gone:
            self._post_again()
        while True:
            try:
                message = self._next()
            except _ConnectionLost:
                self._reconnect()
                continue
            if message is None:
                continue
            if getattr(message, "request_id", None) != self.invoke.request_id:
                continue  # a pong, or a late answer to an earlier invocation
            if isinstance(message, protocol.Ack):
                self.acked = True
            elif isinstance(message, protocol.Result):
                return message.payload
            elif isinstance(message, protocol.Error):
                raise _remote_error(message)
            elif isinstance(message, protocol.Log):
                print(message.text, end="" if message.text.endswith("\n") else "\n")

    def _next(self) -> protocol.Message | None:
        """The next message within a short wait, after the checks that are due."""
        conn, settings = self.conn, self.settings.stub
        remaining = self.deadline - DEADLINE_MARGIN_S - time.time()
        if remaining <= 0:
            raise PyliveRelayTimeout(
                f"{settings.function_id} did not answer before its deadline on the developer's "
                f"machine (stage {settings.stage})"
            )
        if self.acked:
            wait = min(remaining, settings.liveness_interval)
        else:
            wait = min(remaining, self.ack_end - time.monotonic())
            if wait <= 0:
                self._no_ack()
                return None
        wait = min(wait, self._keepalive())
        unread = conn.post_unread
        message = conn.receive(min(wait, POST_ANSWER_WAIT_S) if unread else wait)
        if unread:
            try:
                conn.finish_post()
            except _Gone:  # the runner never saw the invoke
                self._post_again()
        if message is None and self.acked:
            self._check_runner()
        return message


def _remote_error(error: protocol.Error) -> Exception:
    """An exception Lambda reports with the remote errorType and errorMessage."""
    name = error.error_type or "Exception"
    cls: type[Exception] = type(name, (Exception,), {"__module__": "pylive_remote"})
    return cls(error.error_message)


def _identity(identity: Any) -> dict[str, Any] | None:
    """The Cognito identity in the shape Lambda passes it to a runtime."""
    fields = {
        "cognitoIdentityId": getattr(identity, "cognito_identity_id", None),
        "cognitoIdentityPoolId": getattr(identity, "cognito_identity_pool_id", None),
    }
    return {k: v for k, v in fields.items() if v is not None} or None


def _as_dict(value: Any) -> dict[str, Any] | None:
    """A context object (the runtime's are ``__slots__`` classes) as a plain dict."""
    if value is None:
        return None
    if isinstance(value, dict):
        return value
    names = getattr(type(value), "__slots__", None) or list(getattr(value, "__dict__", {}))
    fields = {}
    for name in names:
        field = getattr(value, name, None)
        if not name.startswith("_") and field is not None:
            fields[name] = _as_dict(field) if hasattr(field, "__slots__") else field
    return fields or None
