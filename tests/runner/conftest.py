"""Helpers for driving a real WorkerPool (real zygote, real forked workers) from tests."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from pylive.cdk.manifest import FunctionSpec
from pylive.runner.pool import PoolOptions, WorkerPool
from pylive.runner.relay import RelayClient


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def spec(root: Path, handler: str, **kwargs: Any) -> FunctionSpec:
    kwargs.setdefault("id", handler.rsplit(".", 1)[0].replace("/", "-"))
    return FunctionSpec(handler=handler, code_dir=str(root), **kwargs)


class Recorder:
    """Collects worker output and pool events; lets a test wait for a line to appear."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.events: list[str] = []
        self._changed: asyncio.Event | None = None

    def output(self, function_id: str, line: str) -> None:
        self.lines.append((function_id, line))
        self._notify()

    def event(self, message: str) -> None:
        self.events.append(message)
        self._notify()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        self._changed = self._changed or asyncio.Event()
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


def make_pool(root: Path, recorder: Recorder, **options: Any) -> WorkerPool:
    options.setdefault("base_env", {"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    return WorkerPool(
        Path(sys.executable),
        root,
        PoolOptions(output=recorder.output, events=recorder.event, **options),
    )


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    yield Recorder()


@asynccontextmanager
async def connected_runner(endpoint: Any, invoker: Any, **kw: Any) -> AsyncIterator[RelayClient]:
    """A relay client serving ``invoker``, connected to ``endpoint`` until the block ends;
    what it logged is in its ``logs``."""
    stop = asyncio.Event()
    logs: list[str] = []
    client = RelayClient(endpoint, invoker, stop=stop, log=logs.append, **kw)
    task = asyncio.create_task(client.run())
    await client.connected.wait()
    client.logs = logs  # type: ignore[attr-defined]
    try:
        yield client
    finally:
        stop.set()
        await task
