"""One open connection of the local WebSocket API, and how its close is reported: the
``disconnectStatusCode`` and ``disconnectReason`` of its $disconnect event, as API Gateway sets
them for each way a connection ends."""

from __future__ import annotations

from dataclasses import dataclass

from websockets.asyncio.server import ServerConnection

from pylive.emulator.ws_events import ConnectionInfo

REASON_NO_STATUS = "Client-side close frame status not set"
REASON_NORMAL = "Connection Closed Normally"


@dataclass
class LiveConnection:
    """One open connection: who it is, when it was last active, and why the gateway closed it."""

    info: ConnectionInfo
    last_active_ms: int
    last_active: float  # loop time
    opened: float  # loop time
    ws: ServerConnection | None = None
    subprotocol: str | None = None
    server_close: tuple[int, str] | None = None  # why the gateway closed it


def flow_dropped(ws: ServerConnection) -> bool:
    flow = getattr(ws, "flow", None)
    return flow is not None and bool(flow.dropped)


def disconnect_status(live: LiveConnection, ws: ServerConnection) -> tuple[int, str]:
    """``disconnectStatusCode``/``disconnectReason`` of a closed connection."""
    if live.server_close is not None:
        return live.server_close
    protocol = ws.protocol
    received, sent = protocol.close_rcvd, protocol.close_sent
    if received is not None and protocol.close_rcvd_then_sent is not False:
        if received.code == 1005:
            return 1005, REASON_NO_STATUS
        if received.code == 1000 and not received.reason:
            return 1000, REASON_NORMAL
        return received.code, received.reason
    if sent is not None:  # the gateway closed it, e.g. 1009 for an oversized frame
        return sent.code, sent.reason
    return 1006, ""
