"""One invocation on one warm worker, and what a Lambda Invoke returns: the function's answer,
or the error Lambda answers with when the worker runs out of time, dies (or is stopped over
its memory size) or returns more than Lambda accepts."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field

from pylive.random_bytes import random_bytes
from pylive.runner import memory
from pylive.runner.exits import ExitStatuses
from pylive.runner.function_state import FunctionState
from pylive.runner.record import Invocation
from pylive.runner.worker import OutputSink, Worker, WorkerDied
from pylive.sandbox.errors import (
    OUT_OF_MEMORY,
    RESPONSE_LIMIT_BYTES,
    RESPONSE_TOO_LARGE,
    exit_error,
    response_too_large_error,
    timeout_error,
)
from pylive.sandbox.frames import JSON, InvokeFrame


@dataclass(slots=True)  # not frozen: made per invocation (a frozen __init__ is 5x slower)
class InvokeResult:
    """What a Lambda Invoke returns: the payload, and whether it is a function error."""

    ok: bool
    body: bytes
    content_type: str = "application/json"
    request_id: str = ""
    duration_ms: float = 0.0
    # The invocation's record, when one was kept: its caller may note what it made of it.
    record: Invocation | None = field(default=None, compare=False, repr=False)

    @property
    def error_type(self) -> str | None:
        if self.ok:
            return None
        try:
            value = json.loads(self.body).get("errorType")
        except (ValueError, AttributeError):
            return None
        return value if isinstance(value, str) else None


async def call_worker(
    worker: Worker,
    state: FunctionState,
    frame: InvokeFrame,
    event: bytes,
    *,
    timeout: float,
    started: float,  # time.perf_counter() when the invocation arrived
    exits: ExitStatuses,
    output: OutputSink,
    record: Invocation | None,
) -> InvokeResult:
    """Run ``frame`` on ``worker`` until its deadline; the worker is stopped (and Lambda's
    error answered) when it runs out of time or answers too much."""
    request_id = frame.id
    try:
        answer, body = await worker.invoke(
            frame, event, timeout=frame.deadline_ms / 1000 - time.time()
        )
        if len(body) > RESPONSE_LIMIT_BYTES and answer.ok:
            worker.kill()  # Lambda refused the answer: its runtime exits
            _too_large(output, state, len(body), record)
            body = response_too_large_error()
            answer = dataclasses.replace(answer, ok=False, content_type=JSON)
    except TimeoutError:
        worker.kill()
        body = timeout_error(request_id, timeout)
        _report(output, state, body, record)
        return InvokeResult(False, body, request_id=request_id, duration_ms=since(started))
    except WorkerDied:
        status = await exits.status(worker.pid)
        if worker.out_of_memory_mb is not None:
            # Lambda kills the sandbox: the exit it reports, under its own errorType.
            body = exit_error(request_id, status, error_type=OUT_OF_MEMORY)
            report = memory.out_of_memory_report(
                state.spec.id, worker.out_of_memory_mb, state.spec.memory
            )
            show(output, state, report, record)
        else:
            body = exit_error(request_id, status)
        _report(output, state, body, record)
        return InvokeResult(False, body, request_id=request_id, duration_ms=since(started))
    if record is not None and answer.memory_kb is not None:
        record.memory_mb = round(answer.memory_kb / 1024, 1)
    return InvokeResult(
        answer.ok,
        body,
        content_type=answer.content_type,
        request_id=request_id,
        duration_ms=since(started),
        record=record,
    )


def show(output: OutputSink, state: FunctionState, line: str, record: Invocation | None) -> None:
    """A line of the runtime's own among the function's output, and in its record."""
    output(state.spec.id, line)
    if record is not None:
        record.add_output(line)


def _too_large(
    output: OutputSink, state: FunctionState, size: int, record: Invocation | None
) -> None:
    line = (
        f"{RESPONSE_TOO_LARGE}: the response is {size} bytes, over Lambda's limit of "
        f"{RESPONSE_LIMIT_BYTES} bytes (return a reference, such as an S3 URL, instead)"
    )
    show(output, state, line, record)


def _report(
    output: OutputSink, state: FunctionState, error: bytes, record: Invocation | None
) -> None:
    """Show an error the runtime raised (no handler code did: a timeout, an exit) among
    the function's output, as Lambda writes it to the function's log."""
    show(output, state, json.loads(error)["errorMessage"], record)


def since(started: float) -> float:
    """Milliseconds since ``started`` (a time.perf_counter() value)."""
    return (time.perf_counter() - started) * 1000


def new_trace_id() -> str:
    """An X-Ray trace header of the form Lambda passes in ``_X_AMZN_TRACE_ID``."""
    root = f"1-{int(time.time()):08x}-{random_bytes(12).hex()}"
    return f"Root={root};Parent={random_bytes(8).hex()};Sampled=0"


# The RFC 4122 variant's hex digit (10xx in binary) for any random one.
_VARIANT_DIGIT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def new_request_id() -> str:
    """A random (version 4) UUID in its text form, as Lambda's request ids are: the same
    value ``str(uuid.uuid4())`` gives, in a third of its time (it is made per invocation)."""
    h = random_bytes(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT_DIGIT[h[16]]}{h[17:20]}-{h[20:]}"
