"""`pylive dev --local`: the app's HTTP API on localhost, served by warm, hot-reloading workers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from pylive.config import AppConfig
from pylive.console import Console
from pylive.errors import PyliveError
from pylive.local.http_server import HttpApi, HttpApiApp, bind
from pylive.local.routes import RouteTable
from pylive.manifest import AppManifest
from pylive.runtime.pool import PoolOptions, WorkerPool
from pylive.runtime.reload import ReloadWatcher
from pylive.synth import infra_sources, synthesize

DEV_FILE = "dev.json"
PRELOAD_FILE = "preload.json"


@dataclass(frozen=True)
class DevOptions:
    host: str = "127.0.0.1"
    port: int = 3000
    debug: bool = False
    debug_port: int = 5678
    debug_wait: bool = False
    watch: bool = True


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the session decides how to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class LocalDevSession:
    def __init__(self, config: AppConfig, options: DevOptions, console: Console) -> None:
        self.config = config
        self.options = options
        self.console = console
        self.stop = asyncio.Event()
        self.url = ""
        self.ready = asyncio.Event()
        self._api: HttpApi | None = None
        self._pool: WorkerPool | None = None

    async def run(self) -> None:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop.set)
        sock = bind(self.options.host, self.options.port)
        manifest = await self._synthesize(announce=False)
        pool = self._pool = WorkerPool(self.config.python, self.config.root, self._pool_options())
        server: _QuietServer | None = None
        tasks: list[asyncio.Task[Any]] = []
        try:
            await pool.start(manifest.functions.values())
            self._api = HttpApi(RouteTable(manifest.routes))
            app = HttpApiApp(self._api, pool.invoke, self.console.request)
            server = _QuietServer(
                uvicorn.Config(
                    app,
                    http="httptools",
                    loop="none",
                    lifespan="off",
                    access_log=False,
                    log_level="warning",
                    timeout_keep_alive=75,
                    server_header=False,
                    proxy_headers=False,
                )
            )
            tasks.append(asyncio.create_task(server.serve(sockets=[sock])))
            if self.options.watch:
                tasks.append(asyncio.create_task(self._watcher().run()))
            host, port = sock.getsockname()[:2]
            self.url = f"http://{host}:{port}"
            await self._wait_started(server, tasks[0])
            self._write_dev_file(manifest)
            self._announce(manifest, time.perf_counter() - started)
            self.ready.set()
            stopper = asyncio.create_task(self.stop.wait())
            done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            for task in done:
                if task is not stopper and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            self.stop.set()
            if server is not None:
                server.should_exit = True
            await _finish(tasks)
            await pool.close()
            sock.close()
            with contextlib.suppress(OSError):
                (self.config.state_dir / DEV_FILE).unlink()
            self.console.event("stopped")

    def _pool_options(self) -> PoolOptions:
        return PoolOptions(
            region=self.config.region,
            output=self.console.output,
            events=self.console.event,
            debug_port=self.options.debug_port if self.options.debug else None,
            debug_wait=self.options.debug_wait,
            timeout_override=900.0 if self.options.debug else None,
            preload_file=self.config.state_dir / PRELOAD_FILE,
        )

    async def _synthesize(self, *, announce: bool) -> AppManifest:
        started = time.perf_counter()
        result = await asyncio.to_thread(synthesize, self.config)
        if announce or not result.reused:
            took = time.perf_counter() - started
            self.console.event(f"synthesized {self.config.stacks_module} in {took:.1f} s")
        return result.manifest

    def _watcher(self) -> ReloadWatcher:
        return ReloadWatcher(
            self.config.root,
            infra_files=self._infra_files,
            on_code=self._code_changed,
            on_infra=self._infra_changed,
            stop=self.stop,
        )

    def _infra_files(self) -> set[str]:
        files = {os.path.realpath(p) for p in infra_sources(self.config)}
        return files | {os.path.realpath(self.config.root / "pyproject.toml")}

    def _code_changed(self, paths: set[str]) -> None:
        assert self._pool is not None
        affected = self._pool.affected_by(paths)
        if affected:
            self._pool.reload(affected)

    async def _infra_changed(self) -> None:
        assert self._pool is not None and self._api is not None
        try:
            manifest = await self._synthesize(announce=True)
        except PyliveError as exc:
            self.console.warn(f"{exc} (still serving the previous routes)")
            return
        changed = self._pool.set_functions(manifest.functions.values())
        self._api.routes = RouteTable(manifest.routes)
        self._write_dev_file(manifest)
        what = f"; restarted {', '.join(changed)}" if changed else ""
        self.console.event(f"routes updated ({len(manifest.routes)} routes){what}")

    async def _wait_started(self, server: uvicorn.Server, serving: asyncio.Task[Any]) -> None:
        while not server.started:
            if serving.done():
                serving.result()
                raise PyliveError("the HTTP server stopped while starting")
            await asyncio.sleep(0.005)

    def _announce(self, manifest: AppManifest, took: float) -> None:
        self.console.info(
            f"pylive dev --local: {manifest.app} serving {len(manifest.functions)} "
            f"function(s) on {self.url} (ready in {took:.2f} s)"
        )
        for route in manifest.routes:
            self.console.info(f"  {route.route_key:<28} -> {route.function}")
        if self.options.debug:
            for index, function_id in enumerate(sorted(manifest.functions)):
                port = self.options.debug_port + index
                self.console.info(f"  debugger for {function_id}: attach to 127.0.0.1:{port}")
        self.console.info("Press Ctrl-C to stop.")

    def _write_dev_file(self, manifest: AppManifest) -> None:
        data = {
            "http_url": self.url,
            "pid": os.getpid(),
            "region": self.config.region,
            "functions": sorted(manifest.functions),
            "routes": [r.route_key for r in manifest.routes],
        }
        path = self.config.state_dir / DEV_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(path)


async def _finish(tasks: list[asyncio.Task[Any]], timeout: float = 5.0) -> None:
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(BaseException):
            await task


def run_event_loop(main: Callable[[], Any]) -> Any:
    """Run ``main()`` on uvloop when available (it carries the hot path faster)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())
