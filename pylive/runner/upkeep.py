"""The worker pool's background loops: stop a worker over its function's memory size, as
Lambda does, and stop idle workers beyond each function's warmest one, as Lambda reclaims
idle execution environments."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from pylive.runner import memory
from pylive.runner.function_state import FunctionState


async def watch_memory(functions: Mapping[str, FunctionState]) -> None:
    """Stop busy workers over their function's memory size (see pylive.runner.memory)."""
    while True:
        await asyncio.sleep(memory.WATCH_INTERVAL_S)
        for state in functions.values():
            for worker in state.busy:
                if worker.dead:
                    continue
                used = memory.rss_mb(worker.pid)
                if used is not None and used > state.spec.memory:
                    worker.out_of_memory_mb = used
                    worker.kill()


async def reclaim_idle(functions: Mapping[str, FunctionState], idle_s: float) -> None:
    """Stop workers idle for ``idle_s``, keeping each function's most recently used one
    so the next invocation stays warm."""
    interval = min(max(idle_s / 2, 0.05), 5.0)
    while True:
        await asyncio.sleep(interval)
        cutoff = time.monotonic() - idle_s
        for state in functions.values():
            # The deque's right end is the most recently released worker.
            while len(state.idle) > 1 and state.idle[0].idle_since <= cutoff:
                state.idle.popleft().kill()
