"""Warm workers per function: one per concurrent invocation, created on demand, reused idle.

Every function has a *generation*; a reload bumps it, which retires the function's workers
(idle ones at once, busy ones when their invocation ends) and warms a replacement so the next
request does not pay for the import.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pylive.cdk.manifest import FunctionSpec
from pylive.runner import memory
from pylive.runner.environment import function_arn, lambda_environment
from pylive.runner.preload import Preloads
from pylive.runner.record import Invocation, InvocationLog
from pylive.runner.worker import OutputSink, Worker, WorkerDied
from pylive.runner.zygote import Zygote, ZygoteError
from pylive.sandbox.errors import (
    CANCELLED,
    OUT_OF_MEMORY,
    RESPONSE_LIMIT_BYTES,
    RESPONSE_TOO_LARGE,
    error_fields,
    exit_error,
    init_timeout_error,
    one_line,
    response_too_large_error,
    timeout_error,
)

INIT_TIMEOUT = 10.0  # Lambda's init phase limit
# Idle workers beyond each function's warmest one are stopped after this long, as Lambda
# reclaims idle execution environments, so memory comes back after a burst of load.
IDLE_RECLAIM_S = 30.0
EXIT_REPORT_TIMEOUT = 2.0


@dataclass(frozen=True)
class InvokeResult:
    """What a Lambda Invoke returns: the payload, and whether it is a function error."""

    ok: bool
    body: bytes
    content_type: str = "application/json"
    request_id: str = ""
    duration_ms: float = 0.0

    @property
    def error_type(self) -> str | None:
        if self.ok:
            return None
        try:
            value = json.loads(self.body).get("errorType")
        except (ValueError, AttributeError):
            return None
        return value if isinstance(value, str) else None


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


@dataclass
class _FunctionState:
    spec: FunctionSpec
    env: dict[str, str]
    generation: int = 0
    idle: deque[Worker] = field(default_factory=deque)
    busy: set[Worker] = field(default_factory=set)
    warming: list[asyncio.Task[Worker | bytes]] = field(default_factory=list)
    files: set[str] = field(default_factory=set)
    init_failed: bool = True  # until a worker imports the handler, any change may fix it
    debug_port: int | None = None
    # While debugging, each function has one worker (one debugger port): calls queue here.
    serial: asyncio.Lock | None = None
    arn: str = ""


class WorkerPool:
    def __init__(self, python: Path, root: Path, options: PoolOptions) -> None:
        self._root = root.resolve()
        self._options = options
        self._functions: dict[str, _FunctionState] = {}
        self._exits: dict[int, asyncio.Future[str]] = {}
        self._exit_reports: dict[int, str] = {}
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
            on_exit=self._worker_exited,
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
            self._tasks.add(asyncio.create_task(self._watch_memory()))
        if self._options.idle_reclaim_s is not None:
            self._tasks.add(asyncio.create_task(self._reclaim_idle(self._options.idle_reclaim_s)))
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
            self._functions[function_id] = _FunctionState(
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

    def _retire(self, state: _FunctionState) -> None:
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
        self, state: _FunctionState, task: asyncio.Task[Worker | bytes], reason: str, t0: float
    ) -> None:
        if task.cancelled():
            return
        if task in state.warming:
            # Not claimed by an invocation: it becomes an idle worker.
            state.warming.remove(task)
            outcome = task.exception() or task.result()
            if isinstance(outcome, Worker):
                if outcome.generation == state.generation:
                    outcome.idle_since = time.monotonic()
                    state.idle.append(outcome)
                else:
                    outcome.kill()
        else:
            outcome = task.exception() or task.result()
        ms = (time.perf_counter() - t0) * 1000
        if isinstance(outcome, Worker):
            if reason == "reload":
                self._options.events(f"{state.spec.id}: reloaded in {ms:.0f} ms")
        elif isinstance(outcome, bytes):
            self._options.events(
                f"{state.spec.id}: {one_line(outcome)}{self._hint(state, outcome)}"
            )
        elif isinstance(outcome, BaseException):
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
        state: _FunctionState,
        event: bytes,
        request_id: str | None,
        client_context: dict[str, Any] | None,
        identity: dict[str, Any] | None,
        trace_id: str | None,
    ) -> InvokeResult:
        request_id = request_id or str(uuid.uuid4())
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
        state: _FunctionState,
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
        acquired = await self._acquire(state)
        if isinstance(acquired, bytes):
            if record is not None:
                record.cold = True  # the worker's init failed
            if hint := self._hint(state, acquired):
                self._options.output(state.spec.id, f"[pylive] hint:{hint.removeprefix(' ->')}")
            return InvokeResult(False, acquired, request_id=request_id, duration_ms=_since(started))
        worker = acquired
        if record is not None:
            worker.record = record
            if worker.invocations == 0:
                record.cold, record.init_ms = True, round(worker.init_ms, 1)
        worker.invocations += 1
        header = {
            "t": "invoke",
            "id": request_id,
            "deadline_ms": deadline_ms,
            "arn": state.arn,
            "trace_id": trace_id or _trace_id(),
            "client_context": client_context,
            "identity": identity,
        }
        state.busy.add(worker)
        try:
            async with asyncio.timeout(deadline_ms / 1000 - time.time()):
                reply, body = await worker.invoke(header, event)
            if len(body) > RESPONSE_LIMIT_BYTES and reply["t"] == "result":
                worker.kill()  # Lambda refused the answer: its runtime exits
                self._too_large(state, len(body), record)
                body = response_too_large_error()
                reply = {**reply, "t": "error", "ct": "application/json"}
        except TimeoutError:
            worker.kill()
            body = timeout_error(request_id, timeout)
            self._report(state, body, record)
            return InvokeResult(False, body, request_id=request_id, duration_ms=_since(started))
        except WorkerDied:
            status = await self._exit_status(worker.pid)
            if worker.out_of_memory_mb is not None:
                # Lambda kills the sandbox: the exit it reports, under its own errorType.
                body = exit_error(request_id, status, error_type=OUT_OF_MEMORY)
                report = memory.out_of_memory_report(
                    state.spec.id, worker.out_of_memory_mb, state.spec.memory
                )
                self._show(state, report, record)
            else:
                body = exit_error(request_id, status)
            self._report(state, body, record)
            return InvokeResult(False, body, request_id=request_id, duration_ms=_since(started))
        finally:
            state.busy.discard(worker)
            self._release(state, worker)
        ok = reply["t"] == "result"
        if record is not None and "mem" in reply:
            record.memory_mb = round(reply["mem"] / 1024, 1)
        return InvokeResult(
            ok,
            body,
            content_type=reply.get("ct", "application/json"),
            request_id=request_id,
            duration_ms=_since(started),
        )

    async def _watch_memory(self) -> None:
        """Stop busy workers over their function's memory size (see pylive.runner.memory)."""
        while True:
            await asyncio.sleep(memory.WATCH_INTERVAL_S)
            for state in self._functions.values():
                for worker in state.busy:
                    if worker.dead:
                        continue
                    used = memory.rss_mb(worker.pid)
                    if used is not None and used > state.spec.memory:
                        worker.out_of_memory_mb = used
                        worker.kill()

    async def _reclaim_idle(self, idle_s: float) -> None:
        """Stop workers idle for ``idle_s``, keeping each function's most recently used one
        so the next invocation stays warm."""
        interval = min(max(idle_s / 2, 0.05), 5.0)
        while True:
            await asyncio.sleep(interval)
            cutoff = time.monotonic() - idle_s
            for state in self._functions.values():
                # The deque's right end is the most recently released worker.
                while len(state.idle) > 1 and state.idle[0].idle_since <= cutoff:
                    state.idle.popleft().kill()

    def _too_large(self, state: _FunctionState, size: int, record: Invocation | None) -> None:
        line = (
            f"{RESPONSE_TOO_LARGE}: the response is {size} bytes, over Lambda's limit of "
            f"{RESPONSE_LIMIT_BYTES} bytes (return a reference, such as an S3 URL, instead)"
        )
        self._show(state, line, record)

    def _report(self, state: _FunctionState, error: bytes, record: Invocation | None) -> None:
        """Show an error the runtime raised (no handler code did: a timeout, an exit) among
        the function's output, as Lambda writes it to the function's log."""
        self._show(state, json.loads(error)["errorMessage"], record)

    def _show(self, state: _FunctionState, line: str, record: Invocation | None) -> None:
        """A line of the runtime's own among the function's output, and in its record."""
        self._options.output(state.spec.id, line)
        if record is not None:
            record.add_output(line)

    async def _acquire(self, state: _FunctionState) -> Worker | bytes:
        while state.idle:
            worker = state.idle.pop()  # the most recently used one is the warmest
            if not worker.dead and worker.generation == state.generation:
                return worker
            worker.kill()
        # Claim a worker that is already starting, else start one.
        task = state.warming.pop(0) if state.warming else asyncio.create_task(self._spawn(state))
        return await task

    def _release(self, state: _FunctionState, worker: Worker) -> None:
        if worker.dead or worker.generation != state.generation:
            worker.kill()
            return
        worker.idle_since = time.monotonic()
        state.idle.append(worker)

    async def _spawn(self, state: _FunctionState) -> Worker | bytes:
        """A ready worker, or the init error (bytes) its handler import raised."""
        generation = state.generation
        spec = {
            "handler": state.spec.handler,
            "code_dir": state.spec.code_dir,
            "env": state.env,
            "debug_port": state.debug_port,
            "debug_wait": self._options.debug_wait,
        }
        try:
            spawned = await self._zygote.spawn(spec)
        except ZygoteError:
            await self._zygote.close()
            await self._zygote.start()
            spawned = await self._zygote.spawn(spec)
        worker = await Worker.attach(state.spec.id, generation, spawned, self._options.output)
        try:
            init_error = await worker.wait_ready(INIT_TIMEOUT)
        except asyncio.CancelledError:
            worker.kill()
            raise
        except TimeoutError:
            worker.kill()
            return init_timeout_error(INIT_TIMEOUT)
        except WorkerDied:
            status = await self._exit_status(worker.pid)
            return exit_error("", status)
        if init_error is not None:
            if generation == state.generation:
                state.init_failed = True
            return init_error
        if generation == state.generation:
            state.init_failed = False
            state.files = {
                p for p in map(os.path.realpath, worker.files) if self._preloads.is_app_file(p)
            }
            fresh = self._preloads.learn(worker.modules, worker.files, worker.uses)
            if fresh:
                with contextlib.suppress(ZygoteError, OSError):
                    self._zygote.preload(fresh)
        return worker

    # -- bookkeeping -----------------------------------------------------------------------

    def _hint(self, state: _FunctionState, error: bytes) -> str:
        """`` -> <what to do>`` for an init error pylive knows a fix for, else empty."""
        try:
            message = json.loads(error).get("errorMessage", "")
        except (ValueError, AttributeError):
            return ""
        hint = self._options.hint(state.spec.code_dir, message) if isinstance(message, str) else ""
        return f" -> {hint}" if hint else ""

    def _all_imported(self) -> bool:
        """Whether every function imported its handler (then the workers said what the app
        uses, and the pre-imports it no longer uses may be forgotten)."""
        return bool(self._functions) and not any(s.init_failed for s in self._functions.values())

    def _worker_exited(self, pid: int, status: str) -> None:
        future = self._exits.pop(pid, None)
        if future is not None and not future.done():
            future.set_result(status)
        else:
            self._exit_reports[pid] = status
            if len(self._exit_reports) > 1000:
                self._exit_reports.pop(next(iter(self._exit_reports)))

    async def _exit_status(self, pid: int) -> str:
        if pid in self._exit_reports:
            return self._exit_reports.pop(pid)
        future = asyncio.get_running_loop().create_future()
        self._exits[pid] = future
        try:
            return await asyncio.wait_for(future, EXIT_REPORT_TIMEOUT)
        except TimeoutError:
            return "unknown exit status"
        finally:
            self._exits.pop(pid, None)


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _trace_id() -> str:
    """An X-Ray trace header of the form Lambda passes in ``_X_AMZN_TRACE_ID``."""
    root = f"1-{int(time.time()):08x}-{random.getrandbits(96):024x}"
    return f"Root={root};Parent={random.getrandbits(64):016x};Sampled=0"
