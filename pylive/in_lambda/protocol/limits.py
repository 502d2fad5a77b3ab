"""The relay's sizes: API Gateway's and Lambda's limits, and the protocol's own."""

from __future__ import annotations

PROTOCOL_VERSION = 1
FRAME_LIMIT_BYTES = 32 * 1024  # API Gateway WebSocket frame limit
MESSAGE_LIMIT_BYTES = 128 * 1024  # API Gateway WebSocket message limit
DEFAULT_MAX_FRAME_BYTES = 30 * 1024  # a chunk's encoded JSON: 2 KB of headroom per frame
LAMBDA_PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024
# An encoded invoke is the 6 MB event plus the envelope (context, environment, escaping).
DEFAULT_MAX_MESSAGE_BYTES = 7 * 1024 * 1024
DEFAULT_MAX_PENDING = 64
DEFAULT_REASSEMBLY_TIMEOUT = 60.0
REFUSED_KEPT = 1024  # refused message ids remembered, so their other chunks are ignored
