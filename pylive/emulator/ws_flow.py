"""A network flow that can die silently: what a NAT in front of a WebSocket client does.

A VPC function reaches API Gateway through a NAT gateway, which forgets a TCP flow idle for
350 seconds (https://docs.aws.amazon.com/vpc/latest/userguide/nat-gateway-troubleshooting.html)
and tells neither end: what API Gateway sends afterwards is dropped, and the NAT answers
only a packet from inside with a reset
(https://docs.aws.amazon.com/vpc/latest/userguide/vpc-nat-comparison.html). A laptop that
loses its network leaves its connections in the same state.

:class:`Flow` is that state for one connection: any bytes in either direction keep it alive
(as any packet keeps a NAT's mapping); once idle for ``idle_timeout`` seconds, or after
:meth:`Flow.drop`, it is dead for good. The gateway then delivers nothing more in either
direction and closes nothing the client could see: :class:`FlowTransport` drops what the
gateway writes, and its ``close``/``abort`` only detach the socket (which stays open until
the gateway stops), while the gateway's side carries on as API Gateway's does, until its own
idle timeout. A client learns of it only by a probe that goes unanswered. (A NAT gateway
resets a client's next packet; dropping it instead is stricter and covers the laptop case.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class Flow:
    """One connection's path through a NAT; ``idle_timeout=None`` never expires."""

    def __init__(self, idle_timeout: float | None, clock: Callable[[], float]) -> None:
        self.idle_timeout = idle_timeout
        self._clock = clock
        self._last = clock()
        self.dropped = False

    def passes(self) -> bool:
        """Whether traffic passes now (it then keeps the flow alive)."""
        if self.dropped:
            return False
        now = self._clock()
        if self.idle_timeout is not None and now - self._last >= self.idle_timeout:
            self.dropped = True
            return False
        self._last = now
        return True

    def drop(self) -> None:
        """Forget the flow now, as a NAT does after its idle timeout."""
        self.dropped = True


class Flows:
    """The flows of one server: their idle timeout, and the sockets of dead ones that were
    closed (kept open until :meth:`close_detached`)."""

    def __init__(self, idle_timeout: float | None, clock: Callable[[], float]) -> None:
        self.idle_timeout = idle_timeout
        self.clock = clock
        self.detached: set[asyncio.BaseTransport] = set()

    def new(self) -> Flow:
        return Flow(self.idle_timeout, self.clock)

    def close_detached(self) -> None:
        for transport in self.detached:
            transport.close()
        self.detached.clear()


class FlowTransport:
    """A server transport behind ``flow``: writes pass only while it lives; closing a dead
    one detaches the socket (kept in ``flows.detached`` until the server stops) and tells the
    protocol the connection is lost, so the client sees neither a close frame nor a FIN."""

    def __init__(self, transport: asyncio.Transport, flow: Flow, flows: Flows) -> None:
        self._transport = transport
        self._flow = flow
        self._flows = flows
        self._closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed or not self._flow.passes():
            return
        self._transport.write(data)

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def write_eof(self) -> None:
        if not self._flow.dropped:
            self._transport.write_eof()

    def close(self) -> None:
        if not self._flow.dropped:
            self._transport.close()
        else:
            self._detach()

    def abort(self) -> None:
        if not self._flow.dropped:
            self._transport.abort()
        else:
            self._detach()

    def is_closing(self) -> bool:
        return self._closed or self._transport.is_closing()

    def _detach(self) -> None:
        if self._closed:
            return
        self._closed = True
        protocol = self._transport.get_protocol()
        self._transport.set_protocol(asyncio.Protocol())  # what arrives now goes nowhere
        self._flows.detached.add(self._transport)
        asyncio.get_running_loop().call_soon(protocol.connection_lost, None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
