"""The local HTTP API as tests run it: :class:`HttpServer` serving :class:`HttpApiApp` with
a real worker pool, on a thread of its own."""

from __future__ import annotations

import asyncio
import http.client
import os
import sys
import threading
from pathlib import Path
from typing import Any

from pylive.cdk.manifest import FunctionSpec, RouteSpec
from pylive.emulator import limits
from pylive.emulator.http1 import HEAD_TIMEOUT_S, HttpServer
from pylive.emulator.http_server import HttpApi, HttpApiApp, bind
from pylive.emulator.routes import RouteTable
from pylive.runner.pool import PoolOptions, WorkerPool
from pylive.runner.record import InvocationLog


class Server:
    """The local HTTP API (HttpServer, HttpApiApp, a real worker pool) on a thread."""

    def __init__(
        self,
        root: Path,
        routes: list[RouteSpec],
        functions: tuple[str, ...] = ("handler", "boom"),
        head_timeout: float | None = None,
        records: InvocationLog | None = None,
        **api: Any,
    ) -> None:
        """``functions`` name handlers in ``root/api.py``; ``api`` sets :class:`HttpApi`
        fields (``integration_timeout=...``); ``records`` keeps the invocations."""
        self.root = root
        self.routes = routes
        self.functions = functions
        self.api = api
        self.head_timeout = head_timeout
        self.records = records
        self.log: list[tuple[str, str, str, int, float]] = []
        self.port = 0
        self._ready = threading.Event()
        self._server: HttpServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Server:
        self._thread.start()
        assert self._ready.wait(60), "the server did not start"
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._server is not None:
            self._loop.call_soon_threadsafe(self._server.stop)
        self._thread.join(30)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        options = PoolOptions(
            base_env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, record=self.records
        )
        pool = WorkerPool(Path(sys.executable), self.root, options)
        await pool.start(
            FunctionSpec(id=name, handler=f"api.{name}", code_dir=str(self.root), timeout=60)
            for name in self.functions
        )
        sock = bind("127.0.0.1", 0)
        self.port = sock.getsockname()[1]
        api = HttpApi(RouteTable(self.routes), **self.api)
        app = HttpApiApp(api, pool.invoke, lambda *entry: self.log.append(entry))
        # Idle connections are kept as long as `pylive dev` keeps them (the default, 75 s).
        self._server = HttpServer(
            app,
            max_body=limits.MAX_BODY_BYTES,
            head_timeout=self.head_timeout or HEAD_TIMEOUT_S,
        )
        try:
            await self._server.start(sock)
            self._ready.set()
            await self._server.serve()
        finally:
            await pool.close()
            sock.close()

    def request(self, method: str, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(
                method, path, headers={k.replace("_", "-"): v for k, v in headers.items()}
            )
            response = connection.getresponse()
            return (
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
            )
        finally:
            connection.close()
