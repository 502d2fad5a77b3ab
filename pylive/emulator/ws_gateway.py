"""A local API Gateway WebSocket API: routes, Lambda proxy integrations, @connections, limits.

::

    async def default(event: dict, context: IntegrationContext) -> dict | None: ...

    async with WebSocketGateway(routes={"$default": default}, credentials={"AKID": "secret"},
                                stage="dev") as gw:
        gw.ws_url           # ws://127.0.0.1:PORT/dev
        gw.connections_url  # endpoint_url of boto3's apigatewaymanagementapi client

Integrations are async callables standing in for Lambda functions; they receive the exact
proxy events API Gateway sends ($connect, MESSAGE, $disconnect; see
:mod:`pylive.emulator.ws_events`). Behaviour follows API Gateway:

- $connect runs before the handshake is accepted: a non-2xx ``statusCode`` rejects it with
  that HTTP status, an exception with 502, a timeout with 504. With ``credentials`` (or
  ``access_keys``) the route is IAM-authorized: the upgrade request must be SigV4-signed (a
  presigned URL, or an ``Authorization`` header) for ``execute-api`` by one of those keys,
  else 403, and the key's principal must be allowed ``execute-api:Invoke`` on the route's
  ARN by its policies (:mod:`pylive.emulator.iam_policy`), else 403 with AWS's AccessDenied
  message; the $connect event then names the principal in ``requestContext.identity``.
- A message is routed on the selection expression (exact match, else ``$default``, else a
  ``Forbidden`` error frame); an integration error sends the ``Internal server error`` frame;
  on a two-way route the result's ``body`` is sent back.
- Frames over 32 KB and messages over 128 KB close the connection with 1009, binary frames
  with 1003; idle and over-age connections are closed with 1001 (``GatewayLimits``; only
  data messages count as activity, in either direction, not pings).
- A client's network path can die silently (:mod:`pylive.emulator.ws_flow`): after
  ``GatewayLimits.flow_idle_timeout`` seconds without traffic, as behind a NAT gateway, or
  at once by :meth:`WebSocketGateway.drop_flow`. Nothing more is delivered either way and
  nothing tells the client; the gateway's side lives on until its idle timeout.
- $disconnect is sent after every close, with ``disconnectStatusCode``/``disconnectReason``.
- @connections (:mod:`pylive.emulator.ws_connections`) is served on the same port; calls are
  counted in :attr:`WebSocketGateway.stats`. With keys, each call is authorized as
  ``execute-api:ManageConnections`` on ``…/{stage}/{METHOD}/@connections/{connectionId}``.

Keys given as ``credentials`` (access key → secret) belong to the developer
(:func:`pylive.emulator.principals.developer`, allowed ``execute-api:*``); ``access_keys`` (or
:meth:`WebSocketGateway.add_key`) name other principals, e.g. a function's role session.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Collection, Coroutine, Iterable, Mapping
from types import TracebackType
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from pylive.emulator import ws_connections
from pylive.emulator.principals import LOCAL_ACCOUNT, AccessKey, developer
from pylive.emulator.ws_connections import ConnectionDetails
from pylive.emulator.ws_events import (
    CONNECT_ROUTE,
    DEFAULT_SELECTION_EXPRESSION,
    ApiInfo,
    ConnectionInfo,
    connect_event,
    new_id,
    selection_path,
    trace_id,
)
from pylive.emulator.ws_flow import Flows
from pylive.emulator.ws_http import HttpRequest, HttpResponse, HttpSessions, bind_connection_class
from pylive.emulator.ws_keys import GatewayKeys
from pylive.emulator.ws_live import REASON_NORMAL, LiveConnection, disconnect_status, flow_dropped
from pylive.emulator.ws_routing import MessageRouter, now_ms
from pylive.emulator.ws_settings import GatewayLimits, GatewayStats, Integration
from pylive.emulator.ws_upgrade import connect_refusal, reject, subprotocol

_log = logging.getLogger(__name__)


class WebSocketGateway:
    """The emulator; use as ``async with WebSocketGateway(...) as gw``."""

    def __init__(
        self,
        routes: Mapping[str, Integration],
        *,
        credentials: Mapping[str, str] | None = None,
        access_keys: Iterable[AccessKey] = (),
        stage: str = "dev",
        api_id: str = "local",
        region: str = "us-east-1",
        account: str = LOCAL_ACCOUNT,
        route_selection_expression: str = DEFAULT_SELECTION_EXPRESSION,
        two_way_routes: Collection[str] | None = None,
        limits: GatewayLimits | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """``two_way_routes=None`` makes every route two-way (its result ``body`` is sent
        back); ``credentials`` (access key → secret, the developer's) or ``access_keys`` turn
        on IAM authorization on $connect and on @connections."""
        self.routes = dict(routes)
        self.stage = stage
        self.api_id = api_id
        self.region = region
        self.account = account
        self.developer = developer(account)  # whose keys ``credentials`` are
        self._keys = GatewayKeys(self.developer)
        if credentials is not None:
            for key_id, secret in credentials.items():
                self.add_key(AccessKey(key_id, secret, self.developer))
        for key in access_keys:
            self.add_key(key)
        self.limits = limits or GatewayLimits()
        self.message_limit_bytes = self.limits.message_bytes
        self.stats = GatewayStats()
        self._host = host
        self._port = port
        self._server: Server | None = None
        self._sessions = HttpSessions(
            self._serve_http, max_body_bytes=8 * 1024 * 1024, head_timeout=self.limits.head_timeout
        )
        self._flows = Flows(self.limits.flow_idle_timeout, time.monotonic)
        self._handshakes: weakref.WeakKeyDictionary[ServerConnection, LiveConnection] = (
            weakref.WeakKeyDictionary()
        )
        self._live: dict[str, LiveConnection] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._router = MessageRouter(
            self.routes,
            selection=selection_path(route_selection_expression),
            two_way=None if two_way_routes is None else frozenset(two_way_routes),
            limits=self.limits,
            stats=self.stats,
            api=self._api,
            connections_url=lambda: self.connections_url,
            spawn=self._spawn,
        )

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> WebSocketGateway:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen; :attr:`ws_url` and :attr:`connections_url` are valid afterwards."""
        self._server = await serve(
            self._handle,
            self._host,
            self._port,
            process_request=self._process_request,
            process_response=self._process_response,
            compression=None,  # API Gateway negotiates no extension; deflate is slow
            max_size=(self.limits.message_bytes, self.limits.frame_bytes),
            ping_interval=None,  # API Gateway does not ping; idle connections time out
            open_timeout=self.limits.integration_timeout + 5,
            close_timeout=5,
            create_connection=bind_connection_class(self._sessions, self._flows),
            server_header=None,
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self, timeout: float = 10.0) -> None:
        """Close every connection (1001, then $disconnect) and stop listening."""
        if self._server is None:
            return
        for live in list(self._live.values()):  # no close handshake through a dead flow
            if live.ws is not None and flow_dropped(live.ws):
                live.ws.transport.abort()
        self._server.close()
        self._sessions.close_all()
        await asyncio.wait_for(self._server.wait_closed(), timeout)
        self._flows.close_detached()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
        self._server = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def domain_name(self) -> str:
        """``requestContext.domainName``: host and port, so ``http://{domainName}/{stage}``
        is the @connections endpoint, as ``https://{domainName}/{stage}`` is on AWS."""
        return f"{self._host}:{self._port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.domain_name}/{self.stage}"

    @property
    def connections_url(self) -> str:
        return f"http://{self.domain_name}/{self.stage}"

    @property
    def credentials(self) -> dict[str, str] | None:
        """Access key → secret of every key accepted; None: no authorization."""
        return self._keys.credentials

    def add_key(self, key: AccessKey) -> None:
        """Accept requests signed with ``key`` (and authorize them for its principal)."""
        self._keys.add(key)

    def arn(self, resource: str) -> str:
        """``arn:aws:execute-api:{region}:{account}:{api}/{stage}/{resource}``."""
        return (
            f"arn:aws:execute-api:{self.region}:{self.account}:{self.api_id}/{self.stage}/"
            f"{resource}"
        )

    def authorize(
        self, key_id: str, token: str | None, action: str, resource: str, source_ip: str
    ) -> tuple[str, str] | None:
        """Why a request signed by ``key_id`` may not do ``action`` on ``resource``: an
        error type and message, or None when it may."""
        return self._keys.authorize(key_id, token, action, resource, source_ip)

    @property
    def connection_ids(self) -> list[str]:
        """The ids of the open connections."""
        return list(self._live)

    # ------------------------------------------------------------ $connect

    async def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        if path.rstrip("/") != f"/{self.stage}":
            return reject(403, '{"message":"Forbidden"}')
        headers = list(request.headers.raw_items())
        source_ip = str(ws.remote_address[0]) if ws.remote_address else "127.0.0.1"
        identity: dict[str, str] | None = None
        if self.credentials is not None:
            checked = self._keys.check_connect(request, self.arn(CONNECT_ROUTE), source_ip)
            if isinstance(checked, Response):
                return checked
            identity = checked
        connected_ms = now_ms()
        loop_now = asyncio.get_running_loop().time()
        info = ConnectionInfo(new_id(), connected_ms, source_ip, request.headers.get("User-Agent"))
        live = LiveConnection(info, connected_ms, loop_now, loop_now)
        if CONNECT_ROUTE in self.routes:
            headers += [
                ("X-Amzn-Trace-Id", trace_id(connected_ms)),
                ("X-Forwarded-For", source_ip),
                ("X-Forwarded-Port", str(self._port)),
                ("X-Forwarded-Proto", "http"),
            ]
            event = connect_event(
                self._api(), info, headers, query, connected_ms, identity=identity
            )
            try:
                result = await self._router.invoke(CONNECT_ROUTE, event)
            except TimeoutError:
                return reject(504, '{"message": "Endpoint request timed out"}')
            except Exception:
                _log.exception("the $connect integration failed")
                return reject(502, '{"message": "Internal server error"}')
            refusal = connect_refusal(result)
            if refusal is not None:
                return refusal
            live.subprotocol = subprotocol(result)
        self._handshakes[ws] = live
        return None

    def _process_response(
        self, ws: ServerConnection, request: Request, response: Response
    ) -> Response | None:
        live = self._handshakes.get(ws)
        if live is not None and live.subprotocol and response.status_code == 101:
            response.headers["Sec-WebSocket-Protocol"] = live.subprotocol
        return None

    # ------------------------------------------------------------ one connection

    async def _handle(self, ws: ServerConnection) -> None:
        live = self._handshakes.pop(ws, None)
        if live is None:  # not through _process_request: cannot happen
            await ws.close(1011)
            return
        live.ws = ws
        self._live[live.info.connection_id] = live
        self.stats.connects += 1
        try:
            await self._router.receive(live, ws)
        finally:
            if self._live.get(live.info.connection_id) is live:
                del self._live[live.info.connection_id]
            await ws.wait_closed()
            code, reason = disconnect_status(live, ws)
            self._spawn(self._router.disconnect(live, code, reason))

    # ------------------------------------------------------------ helpers

    def _api(self) -> ApiInfo:
        return ApiInfo(self.api_id, self.stage, self.domain_name)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------ @connections backend

    async def _serve_http(self, request: HttpRequest) -> HttpResponse:
        return await ws_connections.handle(request, self)

    def count_call(self, operation: str, connection_id: str) -> None:
        self.stats.connections_calls += 1
        self.stats.connections_calls_by_connection[connection_id] += 1
        self.stats.connections_calls_by_operation[operation] += 1

    def details(self, connection_id: str) -> ConnectionDetails | None:
        live = self._live.get(connection_id)
        if live is None:
            return None
        info = live.info
        return ConnectionDetails(
            info.connected_at, live.last_active_ms, info.source_ip, info.user_agent or ""
        )

    async def post(self, connection_id: str, data: bytes) -> bool:
        live = self._live.get(connection_id)
        if live is None:
            return False
        try:
            frame: str | bytes = data.decode()
        except UnicodeDecodeError:
            frame = data
        return await self._router.send(live, frame)

    def drop_flow(self, connection_id: str) -> None:
        """Silently cut the network path of a connection, as a NAT that forgot its flow:
        nothing more is delivered either way, and neither end is told."""
        live = self._live[connection_id]
        flow = getattr(live.ws, "flow", None)
        if flow is not None:
            flow.drop()

    def delete(self, connection_id: str) -> bool:
        live = self._live.pop(connection_id, None)
        if live is None or live.ws is None:
            return False
        live.server_close = (1000, REASON_NORMAL)
        self._spawn(live.ws.close(1000, ""))
        return True
