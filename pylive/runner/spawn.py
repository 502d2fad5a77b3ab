"""Starting one worker of a function: fork it from the worker host, wait for its handler
import (Lambda's init phase), and learn what it imported (for hot reload and the host's
pre-imports). A failed init raises :class:`InitFailed` with the payload Lambda answers with."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable

from pylive.runner.exits import ExitStatuses
from pylive.runner.function_state import FunctionState
from pylive.runner.preload import Preloads
from pylive.runner.worker import OutputSink, Worker, WorkerDied
from pylive.runner.zygote import Zygote, ZygoteError
from pylive.sandbox.errors import exit_error, init_timeout_error, one_line

INIT_TIMEOUT = 10.0  # Lambda's init phase limit


class InitFailed(Exception):
    """The worker did not import its handler; ``error`` is the init error payload."""

    def __init__(self, error: bytes) -> None:
        super().__init__(one_line(error))
        self.error = error


async def spawn_worker(
    state: FunctionState,
    host: Callable[[], Zygote],
    preloads: Preloads,
    exits: ExitStatuses,
    *,
    debug_wait: bool,
    output: OutputSink,
) -> Worker:
    """A ready worker of ``state``'s function, from the worker host ``host()`` names (it is
    restarted once when it died)."""
    generation = state.generation
    spec = {
        "handler": state.spec.handler,
        "code_dir": state.spec.code_dir,
        "env": state.env,
        "debug_port": state.debug_port,
        "debug_wait": debug_wait,
    }
    try:
        spawned = await host().spawn(spec)
    except ZygoteError:
        await host().close()
        await host().start()
        spawned = await host().spawn(spec)
    worker = await Worker.attach(state.spec.id, generation, spawned, output)
    try:
        init_error = await worker.wait_ready(INIT_TIMEOUT)
    except asyncio.CancelledError:
        worker.kill()
        raise
    except TimeoutError:
        worker.kill()
        raise InitFailed(init_timeout_error(INIT_TIMEOUT)) from None
    except WorkerDied:
        status = await exits.status(worker.pid)
        raise InitFailed(exit_error("", status)) from None
    if init_error is not None:
        if generation == state.generation:
            state.init_failed = True
        raise InitFailed(init_error)
    if generation == state.generation:
        state.init_failed = False
        state.files = {p for p in map(os.path.realpath, worker.files) if preloads.is_app_file(p)}
        fresh = preloads.learn(worker.modules, worker.files, worker.uses)
        if fresh:
            with contextlib.suppress(ZygoteError, OSError):
                host().preload(fresh)
    return worker


def init_error_hint(hint: Callable[[str, str], str], code_dir: str, error: bytes) -> str:
    """`` -> <what to do>`` for an init error ``hint`` knows a fix for, else empty."""
    try:
        message = json.loads(error).get("errorMessage", "")
    except (ValueError, AttributeError):
        return ""
    advice = hint(code_dir, message) if isinstance(message, str) else ""
    return f" -> {advice}" if advice else ""
