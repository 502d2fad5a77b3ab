"""The runner's handle on one worker process: send an invocation, read its answer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from pylive import exact_json
from pylive.runner.zygote import SpawnedWorker
from pylive.sandbox.frames import FRAME_PREFIX, AnswerFrame, InvokeFrame, ReadyFrame

if TYPE_CHECKING:
    from pylive.runner.record import Invocation

OutputSink = Callable[[str, str], None]  # (function id, one line of its output)
STREAM_LIMIT = 1 << 24


class WorkerDied(Exception):
    """The worker closed its socket: it exited or was killed."""


class Worker:
    """One warm process of one function. It serves one invocation at a time."""

    def __init__(
        self,
        function_id: str,
        generation: int,
        spawned: SpawnedWorker,
        transport: asyncio.Transport,
        frames: FrameReader,
    ) -> None:
        self.function_id = function_id
        self.generation = generation
        self.pid = spawned.pid
        self._transport = transport
        self._frames = frames
        self._output: asyncio.Task[None] | None = None
        self.files: list[str] = []
        self.modules: list[str] = []
        self.uses: list[str] = []  # top-level packages its modules refer to
        self.idle_since = 0.0  # time.monotonic() when it last became idle
        self.init_ms = 0.0
        self.dead = False
        self.out_of_memory_mb: float | None = None  # set when stopped for using too much
        self.invocations = 0  # started on this process
        # The invocation its output belongs to: the running one, else the last one (its
        # last lines may arrive just after its answer).
        self.record: Invocation | None = None

    @classmethod
    async def attach(
        cls, function_id: str, generation: int, spawned: SpawnedWorker, sink: OutputSink
    ) -> Worker:
        loop = asyncio.get_running_loop()
        transport, frames = await loop.create_unix_connection(FrameReader, sock=spawned.sock)
        worker = cls(function_id, generation, spawned, transport, frames)
        worker._output = asyncio.create_task(_relay_output(spawned.output_fd, worker, sink))
        return worker

    async def wait_ready(self, timeout: float) -> bytes | None:
        """Wait for the handler import. None when ready, else the init error payload."""
        header, body = await self._read(timeout)
        ready = ReadyFrame.decode(header)
        if ready is None:
            return body
        self.init_ms = ready.init_ms
        self.files = [path for _name, path in ready.modules]
        self.modules = [name for name, _path in ready.modules]
        self.uses = ready.uses
        return None

    async def invoke(
        self, frame: InvokeFrame, event: bytes, timeout: float | None = None
    ) -> tuple[AnswerFrame, bytes]:
        """Send an invocation and wait for its answer: TimeoutError after ``timeout`` s."""
        # orjson for the header (a frame the worker reads with the standard library): what
        # it cannot write, such as an integer beyond 64 bits, the standard library writes.
        header = exact_json.dumps(frame.encode())
        self._transport.write(FRAME_PREFIX.pack(len(header), len(event)) + header + event)
        answer, body = await self._read(timeout)
        return AnswerFrame.decode(answer), body

    async def _read(self, timeout: float | None) -> tuple[dict[str, Any], bytes]:
        try:
            header, body = await self._frames.read(timeout)
        except WorkerDied:
            self.dead = True
            raise
        return _header(header), body

    def kill(self) -> None:
        """Stop the process now (used on timeout, reload and shutdown)."""
        self.dead = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self._transport.close()

    async def closed(self) -> None:
        """Wait until the process's output has been fully relayed."""
        if self._output is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._output


class FrameReader(asyncio.Protocol):
    """The runner's end of a worker's socket, read frame by frame (prefix, header, body):
    a whole frame resolves the waiting :meth:`read`, with no stream buffering between."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[bytes, bytes]] | None = None
        self._lost = False

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._waiter is not None:
            self._deliver()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self._waiter is not None:
            self._deliver()

    async def read(self, timeout: float | None = None) -> tuple[bytes, bytes]:
        """The next frame's header and body; raises WorkerDied when the socket closes first
        and TimeoutError when ``timeout`` seconds pass first (a plain timer: cheaper, on
        every invocation, than a task cancelled by ``asyncio.timeout``)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[tuple[bytes, bytes]] = loop.create_future()
        self._waiter = waiter
        self._deliver()  # a frame already whole resolves it now
        if timeout is None or waiter.done():
            return await waiter
        timer = loop.call_later(timeout, _time_out, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()

    def _deliver(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        buffer = self._buffer
        if len(buffer) >= FRAME_PREFIX.size:
            header_len, body_len = FRAME_PREFIX.unpack_from(buffer)
            header_end = FRAME_PREFIX.size + header_len
            end = header_end + body_len
            if len(buffer) >= end:
                with memoryview(buffer) as view:  # each part copied once, straight to bytes
                    header = bytes(view[FRAME_PREFIX.size : header_end])
                    body = bytes(view[header_end:end])
                del buffer[:end]
                self._waiter = None
                waiter.set_result((header, body))
                return
        if self._lost:  # the worker exited (or was killed) before its frame was whole
            self._waiter = None
            waiter.set_exception(WorkerDied())


def _time_out(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


def _header(data: bytes) -> dict[str, Any]:
    """A frame's JSON header. orjson refuses a lone surrogate escape, which the standard
    library writes for a file name that is not UTF-8 (a ready frame lists module files)."""
    try:
        header: dict[str, Any] = orjson.loads(data)
    except orjson.JSONDecodeError:
        header = json.loads(data)
    return header


async def _relay_output(fd: int, worker: Worker, sink: OutputSink) -> None:
    """Forward the worker's stdout/stderr line by line, labelled with its function, and
    keep each line with the invocation it belongs to."""
    function_id = worker.function_id
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=STREAM_LIMIT)
    pipe = os.fdopen(fd, "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    try:
        while True:
            try:
                line = await reader.readline()
            except ValueError:  # a line longer than the limit: pass it on in pieces
                line = await reader.read(STREAM_LIMIT)
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            sink(function_id, text)
            if worker.record is not None:
                worker.record.add_output(text)
    finally:
        transport.close()
