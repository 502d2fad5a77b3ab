"""What a local WebSocket API is configured with and reports: API Gateway's quotas, the
context an integration receives, and the counters benchmarks read."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pylive.emulator.ws_http import HEAD_TIMEOUT_S

Integration = Callable[[dict[str, Any], "IntegrationContext"], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class GatewayLimits:
    """API Gateway's WebSocket quotas; shorten the timeouts in tests.

    https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html
    ("Idle Connection Timeout: 10 minutes", "Connection duration for WebSocket API: 2 hours").
    ``flow_idle_timeout`` puts every client behind a NAT that silently forgets a flow idle
    that long (a NAT gateway: 350 s); None: no NAT."""

    frame_bytes: int = 32 * 1024
    message_bytes: int = 128 * 1024
    idle_timeout: float = 600.0
    max_duration: float = 7200.0
    integration_timeout: float = 29.0
    head_timeout: float = HEAD_TIMEOUT_S  # a request head (or @connections request) unfinished
    flow_idle_timeout: float | None = None


@dataclass(frozen=True)
class IntegrationContext:
    """The ``context`` an integration receives (a stand-in for the Lambda context)."""

    aws_request_id: str
    route_key: str
    connections_url: str


@dataclass
class GatewayStats:
    """Counters for benchmarks: @connections calls in total, per connection, per operation."""

    connections_calls: int = 0
    connections_calls_by_connection: Counter[str] = field(default_factory=Counter)
    connections_calls_by_operation: Counter[str] = field(default_factory=Counter)
    connects: int = 0
    disconnects: int = 0
    messages_in: int = 0
    messages_out: int = 0
