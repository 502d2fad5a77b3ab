"""The stub's timings and sizes: AWS's limits, and how far inside them the stub stays.

One :class:`StubLimits` per container, so a local host can run stubs with limits of their own
(scaled down, as its gateway's are)."""

from __future__ import annotations

from dataclasses import dataclass

# https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html
IDLE_LIMIT_S = 10 * 60  # API Gateway closes a connection idle for 10 minutes
MAX_DURATION_S = 2 * 60 * 60  # ... and any connection after 2 hours
# https://docs.aws.amazon.com/vpc/latest/userguide/nat-gateway-troubleshooting.html
NAT_IDLE_S = 350  # a NAT gateway forgets a flow idle this long, and tells neither end
TCP_KEEPALIVE = (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3))
POST_CHUNK_BYTES = 120 * 1024  # @connections accepts 128 KB per message
CHUNK_POSTS_IN_FLIGHT = 8  # the chunks of one large invoke posted at the same time


@dataclass(frozen=True)
class StubLimits:
    idle_renew_s: float = 4 * 60  # renew a connection that received nothing this long
    age_margin_s: float = 60  # renew one whose 2 hours end this close to a deadline
    max_duration_s: float = MAX_DURATION_S
    keepalive_s: float = 30  # while waiting, ping when nothing was received for this long
    probe_timeout_s: float = 10.0  # the router (a Lambda function, maybe cold) answers by then
    runner_reconnect_s: float = 3.0  # a runner renewing its connection is away this long at most
    deadline_margin_s: float = 0.1  # answer before Lambda's own timeout cuts the stub off
    post_answer_wait_s: float = 0.05  # how long the answer to an invoke's POST may stay unread
    max_message_bytes: int = 16 * 1024 * 1024
