"""One function's place in the worker pool: its settings for a worker, its idle, busy and
warming workers, and the *generation* whose bump (a reload) retires them."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from pylive.cdk.manifest import FunctionSpec
from pylive.runner.worker import Worker


@dataclass
class FunctionState:
    spec: FunctionSpec
    env: dict[str, str]
    generation: int = 0
    idle: deque[Worker] = field(default_factory=deque)
    busy: set[Worker] = field(default_factory=set)
    # A warming task raises pylive.runner.spawn.InitFailed when the handler import fails.
    warming: list[asyncio.Task[Worker]] = field(default_factory=list)
    files: set[str] = field(default_factory=set)
    init_failed: bool = True  # until a worker imports the handler, any change may fix it
    debug_port: int | None = None
    # While debugging, each function has one worker (one debugger port): calls queue here.
    serial: asyncio.Lock | None = None
    arn: str = ""
