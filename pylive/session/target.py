"""What a dev session's target does: where its invocations come from (see DevOptions)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Protocol

from pylive.cdk.manifest import AppManifest
from pylive.errors import PyliveError
from pylive.runner.invocation import InvokeResult
from pylive.runner.pool import WorkerPool


class SessionTarget(Protocol):
    label: str  # how the web console names the session
    how_to_stop: str  # the last line of the session's announcement
    url: str  # the local HTTP API's, once started ("" for AWS)

    async def prepare(self) -> None:
        """What comes before synthesis: claim the port, or deploy the stubs to AWS."""

    async def start(self, pool: WorkerPool, manifest: AppManifest) -> list[asyncio.Task[Any]]:
        """Start taking invocations into ``pool``; returns the tasks that serve them (the
        session ends when one of them does)."""

    async def replay(self, function_id: str, event: bytes, request_id: str) -> InvokeResult:
        """Run a recorded event again, on the path the session's invocations take."""

    def ready(self, manifest: AppManifest, took: float) -> None:
        """Everything runs (``took`` seconds to start): say what is served and where."""

    def functions_changed(self, manifest: AppManifest, restarted: list[str]) -> None:
        """The stacks were synthesized again and the pool took their functions."""

    async def stopping(self) -> None:
        """Stop taking new invocations (the session is about to wait for its tasks)."""

    async def close(self) -> None: ...


async def start_connected(
    run: Coroutine[Any, Any, Any], connected: asyncio.Event, error: str
) -> asyncio.Task[Any]:
    """Run a relay client (``run``) until it has connected; ``error`` if it stops first."""
    runner = asyncio.create_task(run)
    waiter = asyncio.create_task(connected.wait())
    done, _ = await asyncio.wait({waiter, runner}, return_when=asyncio.FIRST_COMPLETED)
    if waiter not in done:
        waiter.cancel()
        raise PyliveError(error)
    return runner
