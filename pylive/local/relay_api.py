"""The local cloud's DebugStack: the WebSocket API, the router behind it (in the local Lambda
host, its table in memory) and the only credentials the API accepts (random per instance).

As strict as AWS by default: API Gateway's idle and maximum-duration limits (``limits``
shortens them for tests, and can add a NAT's flow timeout), and eventually consistent reads
of the table as stale as ``stale_reads`` seconds."""

from __future__ import annotations

import secrets
from typing import Any

from pylive.local.lambda_host import (
    LambdaHost,
    RelaySite,
    router_function,
    router_integration,
)
from pylive.local.store import MemoryTable
from pylive.local.ws_gateway import GatewayLimits, WebSocketGateway

STALE_READS_S = 1.0  # DynamoDB replicates a write within about a second


class LocalRelayApi:
    def __init__(
        self,
        *,
        app: str,
        stage: str,
        region: str = "us-east-1",
        limits: GatewayLimits | None = None,
        stale_reads: float = STALE_READS_S,
    ) -> None:
        self.app, self.stage, self.region = app, stage, region
        self.access_key_id = "AKIA" + secrets.token_hex(8).upper()
        self.secret_access_key = secrets.token_urlsafe(30)
        self.host = LambdaHost(region=region)
        self.table = MemoryTable(stale_reads=stale_reads)  # the router's connection table
        integration = router_integration(self.host)
        self.gateway = WebSocketGateway(
            {"$connect": integration, "$disconnect": integration, "$default": integration},
            credentials={self.access_key_id: self.secret_access_key},
            stage=stage,
            limits=limits,
        )

    async def start(self) -> None:
        await self.gateway.start()
        self.host.add(router_function(self.site, self.table))

    async def stop(self) -> None:
        self.host.close()
        await self.gateway.stop()

    async def __aenter__(self) -> LocalRelayApi:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    @property
    def site(self) -> RelaySite:
        """What the stubs, the router and the runner need to reach this API."""
        gw = self.gateway
        return RelaySite(
            gw.ws_url,
            gw.connections_url,
            self.app,
            self.stage,
            self.region,
            self.access_key_id,
            self.secret_access_key,
        )
