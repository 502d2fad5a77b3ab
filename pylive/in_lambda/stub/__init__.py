"""The stub: what every function runs in Lambda while its stage is in live development.

Each invocation is relayed to the runner on the developer's machine (``pylive dev``) and its
answer returned as if the function ran here. Runs on the plain Lambda Python runtime: the stdlib,
the bundled ``websockets`` (its sans-I/O protocol only) and ``pylive.in_lambda``, nothing else.
Lambda's handler is ``stub.handler``, the entry :mod:`pylive.in_lambda.handlers.stub`, which
keeps one :class:`Stub` per container.

Both connections are driven on the invocation's own thread, with plain blocking sockets: a
relayed invocation waits on two network round trips, and a reader thread or a generic HTTP
or AWS client would add more time to each than the round trip itself.

One WebSocket connection per container (:mod:`.connection`), opened lazily (SigV4-signed,
``?role=stub``), reused by warm invocations. Only frames received count as proof that it
works: one that has received nothing for ``idle_renew_s`` (a NAT gateway forgets an idle flow
after 350 s, API Gateway closes an idle connection after 10 minutes) is renewed before use,
and so is one that would reach API Gateway's 2-hour limit before the invocation's deadline.
While it waits for an answer (:mod:`.relayed`) the stub pings the router whenever nothing was
received for ``keepalive_s``, which keeps both limits away; a ping unanswered within
``probe_timeout_s``, or a connection that closes, is replaced by a new one, and the invoke is
posted again with the new connection as ``reply_to`` (the runner then answers there, from its
memory of recent answers if need be). TCP keepalive runs on both sockets too. The invoke goes
to the runner's connection through the @connections API (:mod:`.connections_api`); the ack
and the answer come back on the stub's own connection, matched by request id. The
@connections answer to the invoke is read once the runner's answer is in (or after
``post_answer_wait_s``, for a slow one): by then it has long arrived, so a fast warm
invocation waits (and the Lambda container wakes) once instead of twice.

Configuration (environment): :class:`pylive.in_lambda.relay_settings.StubSettings`,
``PYLIVE_RELAY_URL``, ``PYLIVE_CALLBACK_URL``, ``PYLIVE_APP``, ``PYLIVE_STAGE``,
``PYLIVE_FUNCTION_ID``, optionally ``PYLIVE_ACK_TIMEOUT`` (seconds, 2) and
``PYLIVE_LIVENESS_INTERVAL`` (seconds between checks that the runner is still connected while
a slow invocation runs, 1) and ``PYLIVE_RUNNER_GRACE`` (seconds a registered runner that does
not ack may take to come back, 45: a runner whose network path died silently notices within
40 s and reconnects; the invoke is then posted to it again). Timings: :mod:`.limits`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from pylive.in_lambda import protocol
from pylive.in_lambda.stub.connection import Connection
from pylive.in_lambda.stub.limits import StubLimits
from pylive.in_lambda.stub.relayed import Relayed
from pylive.in_lambda.stub.settings import Settings


class Stub:
    """One container's stub: its connection, made on the first invocation and kept."""

    def __init__(self, environ: Mapping[str, str], limits: StubLimits | None = None) -> None:
        self.environ = environ  # the process environment; a local host gives each its own
        self.limits = limits
        self._conn: Connection | None = None
        self._lock = threading.Lock()

    def connection(self) -> Connection:
        with self._lock:
            if self._conn is None:
                self._conn = Connection(Settings(self.environ, self.limits))
            return self._conn

    def handle(self, event: Any, context: Any) -> Any:
        conn = self.connection()
        settings = conn.settings
        deadline_ms = int(time.time() * 1000) + int(context.get_remaining_time_in_millis())
        conn.ensure_open(until=deadline_ms / 1000)
        if conn.runner_id is None:
            conn.whoami()
        if conn.runner_id is None:
            raise settings.not_running("no runner is connected")
        invoke = protocol.Invoke(
            request_id=str(context.aws_request_id),
            function_id=settings.stub.function_id,
            deadline_ms=deadline_ms,
            event=event,
            context=protocol.InvokeContext(
                invoked_function_arn=str(context.invoked_function_arn),
                trace_id=self.environ.get("_X_AMZN_TRACE_ID"),
                client_context=as_dict(getattr(context, "client_context", None)),
                identity=identity_fields(getattr(context, "identity", None)),
            ),
            environment=settings.environment,
            reply_to=conn.connection_id,
        )
        return Relayed(conn, invoke).answer()


def identity_fields(identity: Any) -> dict[str, Any] | None:
    """The Cognito identity in the shape Lambda passes it to a runtime."""
    fields = {
        "cognitoIdentityId": getattr(identity, "cognito_identity_id", None),
        "cognitoIdentityPoolId": getattr(identity, "cognito_identity_pool_id", None),
    }
    return {k: v for k, v in fields.items() if v is not None} or None


def as_dict(value: Any) -> dict[str, Any] | None:
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
            fields[name] = as_dict(field) if hasattr(field, "__slots__") else field
    return fields or None
