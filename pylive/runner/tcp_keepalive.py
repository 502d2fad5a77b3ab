"""Kernel keepalive probes on the relay client's WebSocket connection, well inside a NAT
gateway's 350-second idle timeout (the stub sets the same on its socket)."""

from __future__ import annotations

import socket

from websockets.asyncio.client import ClientConnection

TCP_KEEPALIVE = (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3))


def enable_tcp_keepalive(ws: ClientConnection) -> None:
    """Kernel keepalive probes on the connection's socket: they keep NAT mappings alive and
    find a peer that is gone."""
    sock = ws.transport.get_extra_info("socket")
    if sock is None:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in TCP_KEEPALIVE:
        option = getattr(socket, name, None)
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)
