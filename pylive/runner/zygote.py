"""The runner's handle on the fork-server that creates workers on the app's interpreter."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pylive import sandbox

WORKER_MAIN = Path(sandbox.__file__).with_name("main.py")


class ZygoteError(Exception):
    """The fork-server died or could not start."""


@dataclass
class SpawnedWorker:
    pid: int
    sock: socket.socket  # the runner's end of the worker's socket
    output_fd: int  # read end of the worker's stdout/stderr pipe


class Zygote:
    """Starts ``sandbox/main.py`` on the app's interpreter and asks it to fork workers.

    The zygote reports every worker's exit; ``on_exit(pid, description)`` receives them.
    """

    def __init__(
        self,
        python: Path,
        *,
        cwd: Path,
        env: dict[str, str],
        on_exit: Callable[[int, str], None],
        preload: list[str] | None = None,
        python_flags: list[str] | None = None,
    ) -> None:
        self._python = python
        self._flags = list(python_flags or [])
        self._cwd = cwd
        self._env = env
        self._on_exit = on_exit
        self._preload = list(preload or [])
        self._process: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._spawns: dict[int, asyncio.Future[int]] = {}
        self._ids = itertools.count(1)
        self._hello: asyncio.Future[int] | None = None

    async def start(self, timeout: float = 30.0) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        loop = asyncio.get_running_loop()
        self._hello = loop.create_future()
        try:
            self._process = subprocess.Popen(
                [
                    str(self._python),
                    *self._flags,
                    str(WORKER_MAIN),
                    str(theirs.fileno()),
                    *self._preload,
                ],
                pass_fds=[theirs.fileno()],
                cwd=self._cwd,
                env=self._env,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the runner only; it stops us in order
            )
        except OSError as exc:
            ours.close()
            raise ZygoteError(f"cannot start {self._python}: {exc.strerror}") from None
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        self._reader = asyncio.create_task(self._read_events(), name="zygote-events")
        try:
            await asyncio.wait_for(asyncio.shield(self._hello), timeout)
        except (TimeoutError, ZygoteError):
            await self.close()
            raise ZygoteError(
                f"the worker host on {self._python} did not start; "
                "check that this interpreter runs (python --version)"
            ) from None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def preload(self, modules: list[str]) -> None:
        """Import these modules in the zygote so later workers start with them loaded."""
        if modules:
            self._preload.extend(modules)
            self._send({"op": "preload", "modules": modules})

    async def spawn(self, spec: dict[str, Any], timeout: float = 10.0) -> SpawnedWorker:
        """Fork a worker that runs ``spec`` (see ``pylive.sandbox.worker.run_worker``)."""
        if not self.alive:
            raise ZygoteError("the worker host has exited")
        runner_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        out_r, out_w = os.pipe()
        request = next(self._ids)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._spawns[request] = future
        try:
            message = json.dumps({"op": "spawn", "worker": request, "spec": spec}).encode() + b"\n"
            assert self._sock is not None
            await _send_with_fds(self._sock, message, [worker_end.fileno(), out_w])
            pid = await asyncio.wait_for(future, timeout)
        except BaseException:
            runner_end.close()
            os.close(out_r)
            raise
        finally:
            self._spawns.pop(request, None)
            worker_end.close()
            os.close(out_w)
        return SpawnedWorker(pid=pid, sock=runner_end, output_fd=out_r)

    async def close(self, timeout: float = 5.0) -> None:
        if self._sock is not None:
            self._sock.close()  # EOF tells the zygote to kill its workers and exit
            self._sock = None
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        process, self._process = self._process, None
        if process is not None:
            try:
                await asyncio.to_thread(process.wait, timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)

    def _send(self, message: dict[str, Any]) -> None:
        if self._sock is None:
            raise ZygoteError("the worker host is closed")
        self._sock.sendall(json.dumps(message).encode() + b"\n")

    async def _read_events(self) -> None:
        loop = asyncio.get_running_loop()
        buffer = b""
        assert self._sock is not None
        sock = self._sock
        while True:
            try:
                data = await loop.sock_recv(sock, 65536)
            except OSError:
                data = b""
            if not data:
                self._fail_all(ZygoteError("the worker host exited"))
                return
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                self._dispatch(json.loads(line))

    def _dispatch(self, event: dict[str, Any]) -> None:
        op = event["op"]
        if op == "hello" and self._hello is not None and not self._hello.done():
            self._hello.set_result(event["pid"])
        elif op == "spawned":
            future = self._spawns.get(event["worker"])
            if future is not None and not future.done():
                future.set_result(event["pid"])
        elif op == "exited":
            self._on_exit(event["pid"], event["status"])

    def _fail_all(self, error: Exception) -> None:
        for future in [*self._spawns.values(), self._hello]:
            if future is not None and not future.done():
                future.set_exception(error)


async def _send_with_fds(sock: socket.socket, message: bytes, fds: list[int]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        try:
            sent = socket.send_fds(sock, [message], fds)
        except BlockingIOError:
            waiter = loop.create_future()
            loop.add_writer(sock.fileno(), waiter.set_result, None)
            try:
                await waiter
            finally:
                loop.remove_writer(sock.fileno())
            continue
        if sent < len(message):
            await loop.sock_sendall(sock, message[sent:])
        return
