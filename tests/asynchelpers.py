"""Running a test's coroutine from a synchronous test, always bounded in time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


def run(coro: Awaitable[T], timeout: float = 60) -> T:
    """Run ``coro`` on a new event loop; a hang fails with TimeoutError after ``timeout`` s."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())
