"""The web console of `pylive dev`: see :mod:`pylive.webconsole.server`."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn

from pylive.console import Console
from pylive.errors import ServeError
from pylive.runner.record import InvocationLog
from pylive.webconsole.server import (
    STATE_FILE,
    ConsoleApp,
    Replayer,
    SessionInfo,
    new_token,
    write_state,
)

__all__ = ["SessionConsole", "SessionInfo", "WebConsole"]


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the session that runs it decides how to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebConsole:
    """The console's server on 127.0.0.1 (``port`` 0: any free one) for one session."""

    def __init__(
        self,
        log: InvocationLog,
        replayer: Replayer,
        info: SessionInfo,
        state_dir: Path,
        *,
        port: int = 0,
    ) -> None:
        self.app = ConsoleApp(log, replayer, info, new_token())
        self.state_dir = state_dir
        self.port = port
        self.url = ""
        self._server: QuietServer | None = None
        self._task: asyncio.Task[Any] | None = None
        self._sock: socket.socket | None = None

    async def start(self) -> str:
        """Listen; returns the URL to open (it carries the session's token)."""
        from pylive.emulator.http_server import bind

        try:
            sock = bind("127.0.0.1", self.port)
        except ServeError as exc:
            raise ServeError(f"console: {exc} (or pass --console-port)") from None
        self._sock = sock
        port = sock.getsockname()[1]
        self.app.port = port
        config = uvicorn.Config(
            self.app,
            http="httptools",
            loop="none",
            lifespan="off",
            access_log=False,
            log_level="warning",
            server_header=False,
            proxy_headers=False,
            timeout_graceful_shutdown=1,
        )
        self._server = QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        async with asyncio.timeout(10):
            while not self._server.started:
                if self._task.done():
                    self._task.result()
                    raise ServeError("the console's server stopped while starting")
                await asyncio.sleep(0.005)
        base = f"http://127.0.0.1:{port}"
        self.url = f"{base}/?token={self.app.token}"
        write_state(self.state_dir, base, self.app.token)
        return self.url

    async def close(self) -> None:
        self.app.closing.set()
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._task, 5)
        if self._sock is not None:
            self._sock.close()
        with contextlib.suppress(OSError):
            (self.state_dir / STATE_FILE).unlink()


class SessionConsole:
    """What a dev session adds for watching invocations: the record (``log``, for the
    pool's options), one terminal line per invocation, and the web console."""

    def __init__(self, state_dir: Path, terminal: Console, *, web: bool, port: int = 0) -> None:
        self.log = InvocationLog(state_dir)
        self.state_dir = state_dir
        self.web = web
        self.port = port
        self.url = ""
        self._server: WebConsole | None = None
        self._unsubscribe = self.log.subscribe(terminal.invocation)

    async def start(self, replayer: Replayer, info: SessionInfo) -> str:
        """Serve the web console (unless disabled); returns its URL (or "")."""
        if self.web:
            self._server = WebConsole(self.log, replayer, info, self.state_dir, port=self.port)
            self.url = await self._server.start()
        return self.url

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()
        self._unsubscribe()
        self.log.close()
