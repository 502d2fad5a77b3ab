"""The traffic of one WebSocket API's connections: each message routed to its integration
(the selection expression, two-way replies, API Gateway's error frames), $disconnect, the
integration timeout, and the frames sent back, which count as activity."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Collection, Coroutine, Mapping
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from pylive.emulator.ws_events import (
    CONNECT_ROUTE,
    DISCONNECT_ROUTE,
    ApiInfo,
    disconnect_event,
    error_frame,
    message_event,
    new_id,
    select_route,
)
from pylive.emulator.ws_live import LiveConnection, flow_dropped
from pylive.emulator.ws_settings import GatewayLimits, GatewayStats, Integration, IntegrationContext

_log = logging.getLogger("pylive.emulator.ws_gateway")


class MessageRouter:
    """Routes a gateway's messages; ``routes`` is the gateway's own table (changes to it
    apply at once)."""

    def __init__(
        self,
        routes: Mapping[str, Integration],
        *,
        selection: tuple[str, ...],
        two_way: Collection[str] | None,
        limits: GatewayLimits,
        stats: GatewayStats,
        api: Callable[[], ApiInfo],
        connections_url: Callable[[], str],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        self.routes = routes
        self._selection = selection
        self._two_way = two_way
        self.limits = limits
        self.stats = stats
        self._api = api
        self._connections_url = connections_url
        self._spawn = spawn

    async def receive(self, live: LiveConnection, ws: ServerConnection) -> None:
        loop = asyncio.get_running_loop()
        while True:
            idle_end = live.last_active + self.limits.idle_timeout
            age_end = live.opened + self.limits.max_duration
            remaining = min(idle_end, age_end) - loop.time()
            if remaining <= 0:
                live.server_close = (1001, "")
                if flow_dropped(ws):  # no close handshake through a dead flow
                    ws.transport.abort()
                else:
                    await ws.close(1001, "Going away")
                return
            try:
                async with asyncio.timeout(remaining):
                    message = await ws.recv()
            except TimeoutError:
                continue
            except ConnectionClosed:
                return
            if isinstance(message, bytes):
                live.server_close = (1003, "Binary frames are not supported")
                await ws.close(1003, "Binary frames are not supported")
                return
            self.touch(live)
            self.stats.messages_in += 1
            self._spawn(self.on_message(live, message))

    async def on_message(self, live: LiveConnection, body: str) -> None:
        connection_id = live.info.connection_id
        route = select_route(body, self._selection, self._message_routes)
        if route is None:
            await self.send(live, error_frame("Forbidden", connection_id, new_id()))
            return
        event = message_event(self._api(), live.info, route, body, now_ms())
        request_id = event["requestContext"]["requestId"]
        try:
            result = await self.invoke(route, event)
        except TimeoutError:
            frame = error_frame("Endpoint request timed out", connection_id, request_id)
            await self.send(live, frame)
            return
        except Exception:
            _log.exception("the %s integration failed", route)
            await self.send(live, error_frame("Internal server error", connection_id, request_id))
            return
        if self._two_way is not None and route not in self._two_way:
            return
        if isinstance(result, dict) and result.get("body") is not None:
            reply = result["body"]
            await self.send(live, reply if isinstance(reply, str) else _json(reply))

    async def disconnect(self, live: LiveConnection, code: int, reason: str) -> None:
        self.stats.disconnects += 1
        if DISCONNECT_ROUTE not in self.routes:
            return
        event = disconnect_event(self._api(), live.info, code, reason, now_ms())
        try:
            await self.invoke(DISCONNECT_ROUTE, event)
        except Exception:  # best effort, as on AWS
            _log.exception("the $disconnect integration failed")

    @property
    def _message_routes(self) -> set[str]:
        return {k for k in self.routes if k not in (CONNECT_ROUTE, DISCONNECT_ROUTE)}

    async def invoke(self, route: str, event: dict[str, Any]) -> dict[str, Any] | None:
        """Run ``route``'s integration on ``event``, within the integration timeout."""
        integration = self.routes[route]
        context = IntegrationContext(
            event["requestContext"]["requestId"], route, self._connections_url()
        )
        async with asyncio.timeout(self.limits.integration_timeout):
            return await integration(event, context)

    async def send(self, live: LiveConnection, frame: str | bytes) -> bool:
        if live.ws is None:
            return False
        try:
            await live.ws.send(frame)
        except ConnectionClosed:
            return False
        self.touch(live)
        self.stats.messages_out += 1
        return True

    def touch(self, live: LiveConnection) -> None:
        live.last_active_ms = now_ms()
        live.last_active = asyncio.get_running_loop().time()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _json(value: Any) -> str:
    return json.dumps(value)
