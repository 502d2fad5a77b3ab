"""The stub: what every function runs in Lambda while its stage is in live development.

Each invocation is relayed to the runner on the developer's machine (``pylive dev``) and its
answer returned as if the function ran here. Runs on the plain Lambda Python runtime: stdlib,
boto3/botocore, the bundled ``websockets`` and ``pylive.protocol``, nothing else of pylive.

One WebSocket connection per container, opened lazily (SigV4-signed, ``?role=stub``), reused
by warm invocations and renewed before API Gateway's idle (10 min) and maximum (2 h)
connection limits. The invoke goes to the runner's connection through the @connections API;
the ack and the answer come back on the stub's own connection, matched by request id.

Configuration (environment): ``PYLIVE_RELAY_URL``, ``PYLIVE_CALLBACK_URL``, ``PYLIVE_APP``,
``PYLIVE_STAGE``, ``PYLIVE_FUNCTION_ID``, optionally ``PYLIVE_ACK_TIMEOUT`` (seconds, 2) and
``PYLIVE_LIVENESS_INTERVAL`` (seconds between checks that the runner is still connected
while a slow invocation runs, 1).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from pylive import protocol

# The process environment; a local host gives each container its own mapping.
environ: Mapping[str, str] = os.environ

IDLE_RENEW_S = 9 * 60  # API Gateway closes a connection idle for 10 minutes
AGE_RENEW_S = 110 * 60  # ... and any connection after 2 hours
DEADLINE_MARGIN_S = 0.1  # answer before Lambda's own timeout would cut the stub off
POST_CHUNK_BYTES = 120 * 1024  # @connections accepts 128 KB per message
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class PyliveDevNotRunning(Exception):
    """No runner is connected for this app and stage."""


class PyliveRelayTimeout(Exception):
    """The runner took the invocation but did not answer before the function's deadline."""


class PyliveRelayError(Exception):
    """The relay connection failed while an invocation was in flight."""


class _Gone(Exception):
    pass


class _Settings:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.relay_url = env["PYLIVE_RELAY_URL"]
        self.callback_url = env["PYLIVE_CALLBACK_URL"]
        self.app = env["PYLIVE_APP"]
        self.stage = env["PYLIVE_STAGE"]
        self.function_id = env["PYLIVE_FUNCTION_ID"]
        self.ack_timeout = float(env.get("PYLIVE_ACK_TIMEOUT") or 2.0)
        self.liveness_interval = float(env.get("PYLIVE_LIVENESS_INTERVAL") or 1.0)
        self.region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.credentials = Credentials(
            env.get("AWS_ACCESS_KEY_ID", ""),
            env.get("AWS_SECRET_ACCESS_KEY", ""),
            env.get("AWS_SESSION_TOKEN") or None,
        )

    def not_running(self, why: str) -> PyliveDevNotRunning:
        return PyliveDevNotRunning(
            f"pylive dev is not running for stage {self.stage} ({why}); "
            f"start `pylive dev --stage {self.stage}`"
        )


class _Connection:
    """This container's relay connection, its ids, and the @connections client."""

    def __init__(self, settings: _Settings) -> None:
        self.settings = settings
        self.ws: ClientConnection | None = None
        self.opened = 0.0
        self.last_active = 0.0
        self.connection_id: str | None = None
        self.runner_id: str | None = None
        self.reassembler = protocol.Reassembler(max_message_bytes=MAX_MESSAGE_BYTES)
        self._client: Any = None

    # -- the WebSocket ---------------------------------------------------------------------

    def ensure_open(self) -> ClientConnection:
        now = time.time()
        ws = self.ws
        if ws is not None and (
            ws.protocol.close_code is not None
            or now - self.last_active > IDLE_RENEW_S
            or now - self.opened > AGE_RENEW_S
        ):
            self.close()
            ws = None
        if ws is None:
            # Entered by hand: the connection lives across invocations, closed in close().
            ws = self.ws = connect(
                self._signed_url(),
                compression=None,
                max_size=MAX_MESSAGE_BYTES,
                ping_interval=None,
                open_timeout=10,
                close_timeout=1,
            ).__enter__()
            self.opened = self.last_active = time.time()
            self.reassembler = protocol.Reassembler(max_message_bytes=MAX_MESSAGE_BYTES)
            self.whoami()
        return ws

    def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):  # already broken
                self.ws.close()
        self.ws = None
        self.connection_id = self.runner_id = None

    def _signed_url(self) -> str:
        s = self.settings
        query = urlencode({"role": "stub", "app": s.app, "stage": s.stage})
        request = AWSRequest(method="GET", url=f"{s.relay_url}?{query}")
        SigV4QueryAuth(s.credentials, "execute-api", s.region, expires=300).add_auth(request)
        return str(request.url)

    def whoami(self) -> None:
        """Ask the router for this connection's id and the runner's."""
        ws = self.ws
        assert ws is not None
        ws.send('{"action":"whoami"}')
        end = time.monotonic() + max(self.settings.ack_timeout, 5.0)
        while True:
            frame = self._recv(ws, end - time.monotonic())
            if frame is None:
                raise PyliveRelayError("the relay did not answer `whoami` within 5 s")
            try:
                body = json.loads(frame)
            except ValueError:
                continue
            if isinstance(body, dict) and body.get("type") == "whoami":
                self.connection_id = body.get("connection_id")
                self.runner_id = body.get("runner")
                return
            if isinstance(body, dict) and body.get("message") and "connectionId" in body:
                raise PyliveRelayError(f"the relay answered `whoami` with {body['message']!r}")

    def _recv(self, ws: ClientConnection, timeout: float) -> str | None:
        if timeout <= 0:
            return None
        try:
            frame = ws.recv(timeout=timeout)
        except TimeoutError:
            return None
        except ConnectionClosed:
            self.ws = None
            raise PyliveRelayError("the relay connection closed during the invocation") from None
        self.last_active = time.time()
        return frame if isinstance(frame, str) else frame.decode()

    def receive(self, timeout: float) -> protocol.Message | None:
        """The next complete relay message, or None after ``timeout`` seconds."""
        ws = self.ws
        assert ws is not None
        end = time.monotonic() + timeout
        while True:
            frame = self._recv(ws, end - time.monotonic())
            if frame is None:
                return None
            try:
                message = self.reassembler.feed(frame)
            except protocol.ProtocolError as exc:
                print(f"pylive: ignored a relay message: {exc}")
                continue
            if message is not None:
                return message

    # -- @connections ----------------------------------------------------------------------

    @property
    def api(self) -> _ConnectionsApi:
        if self._client is None:
            self._client = _ConnectionsApi(self.settings)
        api: _ConnectionsApi = self._client
        return api

    def post(self, connection_id: str, data: bytes) -> None:
        status, body = self.api.call("POST", connection_id, data)
        if status == 410:
            raise _Gone
        if status != 200:
            raise PyliveRelayError(f"@connections POST answered {status}: {body[:200]!r}")
        self.last_active = time.time()

    def runner_alive(self) -> bool:
        if self.runner_id is None:
            return False
        status, body = self.api.call("GET", self.runner_id)
        if status == 410:
            return False
        if status != 200:
            raise PyliveRelayError(f"@connections GET answered {status}: {body[:200]!r}")
        return True


class _ConnectionsApi:
    """The @connections API over one kept-alive HTTP(S) connection, SigV4-signed.

    A plain signed request instead of boto3's client: this is on every invocation's path,
    and the generic client costs far more per call than the request itself."""

    def __init__(self, settings: _Settings) -> None:
        self.settings = settings
        url = urlsplit(settings.callback_url)
        self.scheme, self.netloc = url.scheme, url.netloc
        self.base = url.path.rstrip("/")
        self.host = url.hostname or "localhost"
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self._http: http.client.HTTPConnection | None = None

    def call(self, method: str, connection_id: str, body: bytes = b"") -> tuple[int, bytes]:
        path = f"{self.base}/@connections/{quote(connection_id, safe='')}"
        request = AWSRequest(method=method, url=f"{self.scheme}://{self.netloc}{path}", data=body)
        s = self.settings
        SigV4Auth(s.credentials, "execute-api", s.region).add_auth(request)
        headers = dict(request.headers.items())
        for attempt in range(2):
            connection = self._http or self._open()
            try:
                connection.request(method, path, body=body or None, headers=headers)
                response = connection.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise PyliveRelayError(
                        f"cannot reach the @connections API at {s.callback_url}"
                    ) from None
        raise AssertionError("unreachable")

    def _open(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        self._http = cls(self.host, self.port, timeout=10)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None


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
    conn.ensure_open()
    if conn.runner_id is None:
        conn.whoami()
    if conn.runner_id is None:
        raise settings.not_running("no runner is connected")
    request_id = str(context.aws_request_id)
    invoke = protocol.Invoke(
        request_id=request_id,
        function_id=settings.function_id,
        deadline_ms=deadline_ms,
        event=event,
        context=protocol.InvokeContext(
            invoked_function_arn=str(context.invoked_function_arn),
            trace_id=environ.get("_X_AMZN_TRACE_ID"),
            client_context=_as_dict(getattr(context, "client_context", None)),
            identity=_identity(getattr(context, "identity", None)),
        ),
        environment=protocol.strip_credentials(environ),
        reply_to=conn.connection_id,
    )
    frames = protocol.split(protocol.encode(invoke), max_frame_bytes=POST_CHUNK_BYTES)
    _send(conn, frames)
    return _await_answer(conn, request_id, deadline_ms)


def _send(conn: _Connection, frames: list[str]) -> None:
    for attempt in (1, 2):
        try:
            for frame in frames:
                assert conn.runner_id is not None
                conn.post(conn.runner_id, frame.encode())
            return
        except _Gone:
            if attempt == 2:
                break
            conn.whoami()  # the runner may have reconnected under a new id
            if conn.runner_id is None:
                break
    raise conn.settings.not_running("its connection is gone")


def _await_answer(conn: _Connection, request_id: str, deadline_ms: int) -> Any:
    settings = conn.settings
    acked = False
    ack_end = time.monotonic() + settings.ack_timeout
    while True:
        remaining = deadline_ms / 1000 - DEADLINE_MARGIN_S - time.time()
        if remaining <= 0:
            raise PyliveRelayTimeout(
                f"{settings.function_id} did not answer before its deadline on the developer's "
                f"machine (stage {settings.stage})"
            )
        if acked:
            wait = min(remaining, settings.liveness_interval)
        else:
            wait = min(remaining, ack_end - time.monotonic())
            if wait <= 0:
                raise settings.not_running(f"no answer within {settings.ack_timeout:g} s")
        message = conn.receive(wait)
        if message is None:
            if acked and not conn.runner_alive():
                conn.runner_id = None
                raise PyliveRelayError(
                    f"pylive dev for stage {settings.stage} disconnected while running "
                    f"{settings.function_id}; the invocation was lost"
                )
            continue
        if getattr(message, "request_id", None) != request_id:
            continue  # a late answer to an earlier invocation
        if isinstance(message, protocol.Ack):
            acked = True
        elif isinstance(message, protocol.Result):
            return message.payload
        elif isinstance(message, protocol.Error):
            raise _remote_error(message)
        elif isinstance(message, protocol.Log):
            print(message.text, end="" if message.text.endswith("\n") else "\n")


def _remote_error(error: protocol.Error) -> Exception:
    """An exception Lambda reports with the remote errorType and errorMessage."""
    name = error.error_type or "Exception"
    cls = type(name, (Exception,), {"__module__": "pylive_remote"})
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
