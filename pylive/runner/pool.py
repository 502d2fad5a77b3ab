"""Warm workers per function: one per concurrent invocation, created on demand, reused idle.

Every function has a *generation*; a reload bumps it, which retires the function's workers
(idle ones at once, busy ones when their invocation ends) and warms a replacement so the next
request does not pay for the import.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pylive.cdk.manifest import FunctionSpec
from pylive.runner.environment import function_arn, lambda_environment
from pylive.runner.exits import ExitStatuses
from pylive.runner.function_state import FunctionState
from pylive.runner.invocation import (
    InvokeResult,
    call_worker,
    new_request_id,
    new_trace_id,
    since,
)
from pylive.runner.preload import Preloads
from pylive.runner.record import Invocation, InvocationLog
from pylive.runner.spawn import InitFailed, init_error_hint, spawn_worker
from pylive.runner.upkeep import reclaim_idle, watch_memory
from pylive.runner.worker import OutputSink, Worker
from pylive.runner.zygote import Zygote
from pylive.sandbox.errors import CANCELLED, error_fields, one_line
from pylive.sandbox.frames import InvokeFrame

# Idle workers beyond each function's warmest one are stopped after this long, as Lambda
# reclaims idle execution environments, so memory comes back after a burst of load.
IDLE_RECLAIM_S = 30.0


@dataclass
class PoolOptions:
    region: str = "us-east-1"
    base_env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    output: OutputSink = lambda function, line: None
    events: Callable[[str], None] = lambda message: None
    debug_port: int | None = None  # first debugger port; each function gets the next one
    debug_wait: bool = False
    timeout_override: float | None = None  # e.g. raised while debugging
    preload_file: Path | None = None  # remembers which modules to pre-import next time
    memory_limit: bool = True  # stop a worker over its function's memory size, as Lambda does
    # What to do about an init error's message (a missing package: the file to add it to).
    hint: Callable[[str, str], str] = lambda code_dir, message: ""  # -> what to do
    idle_reclaim_s: float | None = IDLE_RECLAIM_S  # None keeps every idle worker
    record: InvocationLog | None = None  # remembers every invocation (what the console shows)


class WorkerPool:
    def __init__(self, python: Path, root: Path, options: PoolOptions) -> None:
        self._root = root.resolve()
        self._options = options
        self._functions: dict[str, FunctionState] = {}
        self._exits = ExitStatuses()
        self._preloads = Preloads(options.preload_file, self._root)
        self._python = python
        self._zygote = self._new_zygote()
        self._retired_hosts: list[Zygote] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    def _new_zygote(self) -> Zygote:
        debugging = self._options.debug_port is not None
        return Zygote(
            self._python,
            cwd=self._root,
            env=dict(self._options.base_env),
            on_exit=self._exits.reported,
            preload=sorted(self._preloads.modules),
            # Frozen stdlib modules hide their source from the debugger.
            python_flags=["-Xfrozen_modules=off"] if debugging else [],
        )

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, functions: Iterable[FunctionSpec], *, warm: bool = True) -> None:
        """Start the worker host; with ``warm``, return once every function has a worker
        (or has reported its init error)."""
        await self._zygote.start()
        if self._options.memory_limit:
            self._tasks.add(asyncio.create_task(watch_memory(self._functions)))
        if self._options.idle_reclaim_s is not None:
            idle_s = self._options.idle_reclaim_s
            self._tasks.add(asyncio.create_task(reclaim_idle(self._functions, idle_s)))
        self.set_functions(functions, warm=warm)
        await self.warmed()

    async def warmed(self) -> None:
        """Wait for the workers being warmed right now."""
        tasks = [task for state in self._functions.values() for task in state.warming]
        if tasks:
            await asyncio.wait(tasks)

    async def restart_host(self) -> list[str]:
        """Replace the worker host and every function's workers (the environment changed:
        the modules the host pre-imported may be stale). Invocations running now finish on
        their workers; the old host exits once they are done. Returns the function ids."""
        old = self._zygote
        self._zygote = self._new_zygote()
        await self._zygote.start()
        busy = [w for state in self._functions.values() for w in state.busy]
        ids = self.function_ids
        for function_id in ids:
            state = self._functions[function_id]
            self._retire(state)
            self.warm(function_id)
        self._retired_hosts.append(old)
        task = asyncio.create_task(self._close_host_after(old, busy))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return ids

    async def _close_host_after(self, host: Zygote, busy: list[Worker]) -> None:
        if busy:
            longest = max(
                self._options.timeout_override or s.spec.timeout for s in self._functions.values()
            )
            await asyncio.wait(
                [asyncio.ensure_future(w.closed()) for w in busy], timeout=longest + 5
            )
        if host in self._retired_hosts:
            self._retired_hosts.remove(host)
            await host.close()

    async def close(self) -> None:
        workers = []
        for state in self._functions.values():
            for task in state.warming:
                task.cancel()
            workers.extend([*state.idle, *state.busy])
        for worker in workers:
            worker.kill()
        if workers:
            # Let what the workers printed last reach the terminal.
            await asyncio.wait([asyncio.ensure_future(w.closed()) for w in workers], timeout=2)
        for task in list(self._tasks):
            task.cancel()
        await self._zygote.close()
        for host in self._retired_hosts:
            await host.close()
        self._retired_hosts.clear()
        self._preloads.save(complete=self._all_imported())

    def set_functions(self, functions: Iterable[FunctionSpec], *, warm: bool = True) -> list[str]:
        """Adopt a new set of functions; changed ones are retired. Returns the changed ids."""
        specs = {spec.id: spec for spec in functions}
        changed = []
        for function_id in list(self._functions):
            if function_id not in specs:
                self._retire(self._functions.pop(function_id))
        for index, (function_id, spec) in enumerate(sorted(specs.items())):
            state = self._functions.get(function_id)
            if state is not None and state.spec == spec:
                continue
            if state is not None:
                self._retire(state)
            debug_port = (
                self._options.debug_port + index if self._options.debug_port is not None else None
            )
            env = lambda_environment(spec, region=self._options.region, base=self._options.base_env)
            if debug_port is not None:
                env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
            self._functions[function_id] = FunctionState(
                spec,
                env,
                debug_port=debug_port,
                serial=asyncio.Lock() if debug_port is not None else None,
                arn=function_arn(spec, region=self._options.region),
            )
            changed.append(function_id)
            if warm:
                self.warm(function_id)
        return changed

    @property
    def function_ids(self) -> list[str]:
        return sorted(self._functions)

    def spec(self, function_id: str) -> FunctionSpec:
        return self._functions[function_id].spec

    # -- reload ----------------------------------------------------------------------------

    def affected_by(self, paths: Iterable[str]) -> list[str]:
        """Functions whose imported modules include one of ``paths`` (or that failed init)."""
        changed = {os.path.realpath(p) for p in paths}
        return sorted(
            function_id
            for function_id, state in self._functions.items()
            if state.init_failed or state.files & changed
        )

    def reload(self, function_ids: Iterable[str]) -> None:
        for function_id in function_ids:
            state = self._functions[function_id]
            self._retire(state)
            self.warm(function_id, reason="reload")

    def _retire(self, state: FunctionState) -> None:
        state.generation += 1
        for task in state.warming:
            task.cancel()
        state.warming.clear()
        while state.idle:
            state.idle.popleft().kill()

    def warm(self, function_id: str, *, reason: str = "start") -> None:
        """Start one worker in the background and keep it idle for the next invocation."""
        state = self._functions[function_id]
        started = time.perf_counter()
        task = asyncio.create_task(self._spawn(state))
        state.warming.append(task)
        task.add_done_callback(lambda t: self._warmed(state, t, reason, started))

    def _warmed(
        self, state: FunctionState, task: asyncio.Task[Worker], reason: str, t0: float
    ) -> None:
        if task.cancelled():
            return
        outcome = task.exception() or task.result()
        if task in state.warming:
            # Not claimed by an invocation: it becomes an idle worker.
            state.warming.remove(task)
            if isinstance(outcome, Worker):
                if outcome.generation == state.generation:
                    outcome.idle_since = time.monotonic()
                    state.idle.append(outcome)
                else:
                    outcome.kill()
        ms = (time.perf_counter() - t0) * 1000
        if isinstance(outcome, Worker):
            if reason == "reload":
                self._options.events(f"{state.spec.id}: reloaded in {ms:.0f} ms")
        elif isinstance(outcome, InitFailed):
            error = outcome.error
            self._options.events(f"{state.spec.id}: {one_line(error)}{self._hint(state, error)}")
        else:
            self._options.events(f"{state.spec.id}: could not start a worker: {outcome}")

    # -- invocation ------------------------------------------------------------------------

    async def invoke(
        self,
        function_id: str,
        event: bytes,
        *,
        request_id: str | None = None,
        client_context: dict[str, Any] | None = None,
        identity: dict[str, Any] | None = None,
        trace_id: str | None = None,
    ) -> InvokeResult:
        state = self._functions[function_id]
        if state.serial is not None:
            async with state.serial:
                return await self._invoke(
                    state, event, request_id, client_context, identity, trace_id
                )
        return await self._invoke(state, event, request_id, client_context, identity, trace_id)

    async def _invoke(
        self,
        state: FunctionState,
        event: bytes,
        request_id: str | None,
        client_context: dict[str, Any] | None,
        identity: dict[str, Any] | None,
        trace_id: str | None,
    ) -> InvokeResult:
        request_id = request_id or new_request_id()
        log = self._options.record
        if log is None:
            return await self._run(state, event, request_id, client_context, identity, trace_id)
        record = log.begin(state.spec.id, request_id, event)
        try:
            result = await self._run(
                state, event, request_id, client_context, identity, trace_id, record
            )
        except BaseException as exc:  # cancelled, or a bug: the record does not stay running
            failure = error_fields(repr(exc), CANCELLED)
            log.end(record, False, json.dumps(failure).encode(), 0.0)
            raise
        log.end(record, result.ok, result.body, result.duration_ms, result.content_type)
        return result

    async def _run(
        self,
        state: FunctionState,
        event: bytes,
        request_id: str,
        client_context: dict[str, Any] | None,
        identity: dict[str, Any] | None,
        trace_id: str | None,
        record: Invocation | None = None,
    ) -> InvokeResult:
        timeout = self._options.timeout_override or state.spec.timeout
        started = time.perf_counter()
        deadline_ms = int(time.time() * 1000 + timeout * 1000)
        try:
            worker = self._idle_worker(state) or await self._acquire(state)
        except InitFailed as failed:
            if record is not None:
                record.cold = True  # the worker's init failed
            if hint := self._hint(state, failed.error):
                self._options.output(state.spec.id, f"[pylive] hint:{hint.removeprefix(' ->')}")
            return InvokeResult(
                False, failed.error, request_id=request_id, duration_ms=since(started)
            )
        if record is not None:
            worker.record = record
            if worker.invocations == 0:
                record.cold, record.init_ms = True, round(worker.init_ms, 1)
        worker.invocations += 1
        frame = InvokeFrame(
            request_id,
            deadline_ms,
            state.arn,
            trace_id or new_trace_id(),
            client_context,
            identity,
        )
        state.busy.add(worker)
        try:
            return await call_worker(
                worker,
                state,
                frame,
                event,
                timeout=timeout,
                started=started,
                exits=self._exits,
                output=self._options.output,
                record=record,
            )
        finally:
            state.busy.discard(worker)
            self._release(state, worker)

    def _idle_worker(self, state: FunctionState) -> Worker | None:
        """The most recently used idle worker (the warmest), if there is one: no coroutine
        to await on the path nearly every invocation takes."""
        while state.idle:
            worker = state.idle.pop()
            if not worker.dead and worker.generation == state.generation:
                return worker
            worker.kill()
        return None

    async def _acquire(self, state: FunctionState) -> Worker:
        """An idle worker, else a new one (raises InitFailed when its init fails)."""
        worker = self._idle_worker(state)
        if worker is not None:
            return worker
        # Claim a worker that is already starting, else start one.
        task = state.warming.pop(0) if state.warming else asyncio.create_task(self._spawn(state))
        return await task

    def _release(self, state: FunctionState, worker: Worker) -> None:
        if worker.dead or worker.generation != state.generation:
            worker.kill()
            return
        worker.idle_since = time.monotonic()
        state.idle.append(worker)

    async def _spawn(self, state: FunctionState) -> Worker:
        return await spawn_worker(
            state,
            lambda: self._zygote,
            self._preloads,
            self._exits,
            debug_wait=self._options.debug_wait,
            output=self._options.output,
        )

    # -- bookkeeping -----------------------------------------------------------------------

    def _hint(self, state: FunctionState, error: bytes) -> str:
        """`` -> <what to do>`` for an init error pylive knows a fix for, else empty."""
        return init_error_hint(self._options.hint, state.spec.code_dir, error)

    def _all_imported(self) -> bool:
        """Whether every function imported its handler (then the workers said what the app
        uses, and the pre-imports it no longer uses may be forgotten)."""
        return bool(self._functions) and not any(s.init_failed for s in self._functions.values())
