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
ONE_READ_MAX = 1 << 16  # a frame up to this size is read in one go, header and body


class WorkerDied(Exception):
    """The worker closed its socket: it exited or was killed."""


class Worker:
    """One warm process of one function. It serves one invocation at a time."""

    def __init__(
        self,
        function_id: str,
        generation: int,
        spawned: SpawnedWorker,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.function_id = function_id
        self.generation = generation
        self.pid = spawned.pid
        self._reader = reader
        self._writer = writer
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
        reader, writer = await asyncio.open_unix_connection(sock=spawned.sock, limit=STREAM_LIMIT)
        worker = cls(function_id, generation, spawned, reader, writer)
        worker._output = asyncio.create_task(_relay_output(spawned.output_fd, worker, sink))
        return worker

    async def wait_ready(self, timeout: float) -> bytes | None:
        """Wait for the handler import. None when ready, else the init error payload."""
        header, body = await asyncio.wait_for(self._read(), timeout)
        ready = ReadyFrame.decode(header)
        if ready is None:
            return body
        self.init_ms = ready.init_ms
        self.files = [path for _name, path in ready.modules]
        self.modules = [name for name, _path in ready.modules]
        self.uses = ready.uses
        return None

    async def invoke(self, frame: InvokeFrame, event: bytes) -> tuple[AnswerFrame, bytes]:
        # orjson for the header (a frame the worker reads with the standard library): what
        # it cannot write, such as an integer beyond 64 bits, the standard library writes.
        header = exact_json.dumps(frame.encode())
        self._writer.write(FRAME_PREFIX.pack(len(header), len(event)) + header + event)
        answer, body = await self._read()
        return AnswerFrame.decode(answer), body

    async def _read(self) -> tuple[dict[str, Any], bytes]:
        try:
            prefix = await self._reader.readexactly(FRAME_PREFIX.size)
            header_len, body_len = FRAME_PREFIX.unpack(prefix)
            if header_len + body_len <= ONE_READ_MAX:
                data = await self._reader.readexactly(header_len + body_len)
                header, body = _header(data[:header_len]), data[header_len:]
            else:  # a large body is not copied once more by slicing
                header = _header(await self._reader.readexactly(header_len))
                body = await self._reader.readexactly(body_len)
        except (asyncio.IncompleteReadError, ConnectionError):
            self.dead = True
            raise WorkerDied from None
        return header, body

    def kill(self) -> None:
        """Stop the process now (used on timeout, reload and shutdown)."""
        self.dead = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self._writer.close()

    async def closed(self) -> None:
        """Wait until the process's output has been fully relayed."""
        if self._output is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._output


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
