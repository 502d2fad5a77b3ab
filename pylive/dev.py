"""`pylive dev --local`: the app's HTTP API on localhost, served by warm, hot-reloading workers.

By default every request takes the path a deployed app takes in live development: the HTTP
API emulator invokes the function's stub (in a Lambda-like worker of its own), which relays
it over the local WebSocket API (with its router) to the runner's relay client, which runs it
on the worker pool. With ``--direct`` the HTTP API calls the worker pool itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from pylive import appenv
from pylive.cdk.manifest import AppManifest, FunctionSpec
from pylive.cdk.stub_code import stub_code_dir
from pylive.cdk.synth import infra_sources, synthesize
from pylive.config import AppConfig
from pylive.console import Console
from pylive.emulator.http_protocol import head_timeout_protocol
from pylive.emulator.http_server import HttpApi, HttpApiApp, Invoke, bind
from pylive.emulator.lambda_host import (
    RelaySite,
    stub_environment,
)
from pylive.emulator.relay_api import LocalRelayApi
from pylive.emulator.role_policies import resolve
from pylive.emulator.routes import RouteTable
from pylive.errors import PyliveError
from pylive.runner.dependencies import DependencySync
from pylive.runner.environment import process_environment
from pylive.runner.pool import PoolOptions, WorkerPool
from pylive.runner.relay import RelayClient
from pylive.runner.reload import ReloadWatcher
from pylive.webconsole import SessionConsole, SessionInfo

DEV_FILE = "dev.json"
PRELOAD_FILE = "preload.json"
STUB_PRELOAD_FILE = "preload-stub.json"
STUB_HANDLER = "stub.handler"


@dataclass(frozen=True)
class DevOptions:
    host: str = "127.0.0.1"
    port: int = 3000
    debug: bool = False
    debug_port: int = 5678
    debug_wait: bool = False
    watch: bool = True
    direct: bool = False  # True: HTTP API → worker pool, skipping the stub and the relay
    web_console: bool = True  # serve the web console (invocations are recorded either way)
    console_port: int = 0  # 0: any free port


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
        self._manifest: AppManifest | None = None  # what is served now
        self._pool: WorkerPool | None = None
        self._relay: _LocalRelay | None = None
        self._deps: DependencySync | None = None  # while files are watched
        self.invocations = SessionConsole(
            config.state_dir, console, web=options.web_console, port=options.console_port
        )

    async def run(self) -> None:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop.set)
        sock = bind(self.options.host, self.options.port)
        # Accepted sockets inherit it: uvicorn on the standard event loop sends a response's
        # head and body in two writes, which Nagle would hold for a delayed ACK (~40 ms).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        manifest = self._manifest = await self._synthesize(announce=False)
        await asyncio.to_thread(
            appenv.prepare_for, self.config, manifest, on_status=self.console.event
        )
        pool = self._pool = WorkerPool(self.config.python, self.config.root, self._pool_options())
        server: _QuietServer | None = None
        tasks: list[asyncio.Task[Any]] = []
        try:
            await pool.start(manifest.functions.values())
            invoke: Invoke = pool.invoke
            entry = pool
            if not self.options.direct:
                relay = self._relay = _LocalRelay(self.config, pool, self.stop, self.console)
                invoke = await relay.start(manifest, timeout_override=self._timeout_override())
                entry = relay.stubs
                tasks.append(relay.runner)
            self._api = HttpApi(RouteTable(manifest.routes))
            if self.options.debug:  # a breakpoint may hold an invocation for minutes
                self._api.integration_timeout = None
            app = HttpApiApp(self._api, invoke, self.console.http_answer)
            server = _QuietServer(
                uvicorn.Config(
                    app,
                    http=head_timeout_protocol(),  # httptools; unfinished heads time out
                    loop="none",
                    lifespan="off",
                    access_log=False,
                    log_level="warning",
                    timeout_keep_alive=75,
                    server_header=False,
                    proxy_headers=False,
                )
            )
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            tasks.append(serving)
            if self.options.watch:
                tasks.append(asyncio.create_task(self._watcher().run()))
            host, port = sock.getsockname()[:2]
            self.url = f"http://{host}:{port}"
            await self._wait_started(server, serving)
            path = "direct" if self._relay is None else "relay"
            await self.invocations.start(
                # A replay takes the path the session's requests take, on the current code.
                lambda function, event, rid: entry.invoke(function, event, request_id=rid),
                SessionInfo(manifest.app, f"dev --local ({path})"),
            )
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
            if self._relay is not None:
                await self._relay.close()
            await pool.close()
            await self.invocations.close()
            sock.close()
            self._remove_dev_file()
            self.console.event("stopped")

    def _pool_options(self) -> PoolOptions:
        return PoolOptions(
            region=self.config.region,
            output=self.console.output,
            events=self.console.event,
            debug_port=self.options.debug_port if self.options.debug else None,
            debug_wait=self.options.debug_wait,
            timeout_override=self._timeout_override(),
            preload_file=self.config.state_dir / PRELOAD_FILE,
            memory_limit=not self.options.debug,  # a debugger needs memory of its own
            record=self.invocations.log,
            hint=functools.partial(
                appenv.missing_module_hint, self.config.root, self.config.python
            ),
        )

    def _timeout_override(self) -> float | None:
        return 900.0 if self.options.debug else None

    async def _synthesize(self, *, announce: bool) -> AppManifest:
        started = time.perf_counter()
        result = await asyncio.to_thread(synthesize, self.config)
        if announce or not result.reused:
            took = time.perf_counter() - started
            self.console.event(f"synthesized {self.config.stacks_module} in {took:.1f} s")
        return result.manifest

    def _watcher(self) -> ReloadWatcher:
        assert self._pool is not None
        deps = self._deps = DependencySync(
            self.config.root,
            self.config.python,
            lambda: self._manifest.code_dirs() if self._manifest is not None else [],
            self._pool,
            self.console,
        )
        return ReloadWatcher(
            self.config.root,
            infra_files=self._infra_files,
            on_code=self._code_changed,
            on_infra=self._infra_changed,
            stop=self.stop,
            deps_files=deps.files,
            on_deps=deps.changed,
        )

    def _infra_files(self) -> set[str]:
        return {os.path.realpath(p) for p in infra_sources(self.config, self._manifest)}

    def _code_changed(self, paths: set[str]) -> None:
        assert self._pool is not None
        affected = self._pool.affected_by(paths)
        if affected:
            self._pool.reload(affected)

    async def _infra_changed(self) -> None:
        assert self._pool is not None and self._api is not None
        try:
            manifest = self._manifest = await self._synthesize(announce=True)
        except PyliveError as exc:
            self.console.warn(f"{exc} (still serving the previous routes)")
            return
        if self._deps is not None:
            await self._deps.functions_changed()
        changed = self._pool.set_functions(manifest.functions.values())
        if self._relay is not None:
            self._relay.set_functions(manifest, self._timeout_override())
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
        path = "directly" if self._relay is None else "through the local relay"
        self.console.info(
            f"pylive dev --local: {manifest.app} serving {len(manifest.functions)} "
            f"function(s) on {self.url} {path} (ready in {took:.2f} s)"
        )
        for route in manifest.routes:
            self.console.info(f"  {route.route_key:<28} -> {route.function}")
        if self.invocations.url:
            self.console.info(f"Console: {self.invocations.url}")
        if self.options.debug:
            for index, function_id in enumerate(sorted(manifest.functions)):
                port = self.options.debug_port + index
                self.console.info(f"  debugger for {function_id}: attach to 127.0.0.1:{port}")
        self.console.info("Press Ctrl-C to stop.")

    def _remove_dev_file(self) -> None:
        """Remove ``dev.json`` when this session wrote it (never another session's)."""
        path = self.config.state_dir / DEV_FILE
        with contextlib.suppress(OSError, ValueError, AttributeError):
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()

    def _write_dev_file(self, manifest: AppManifest) -> None:
        data: dict[str, Any] = {
            "http_url": self.url,
            "pid": os.getpid(),
            "region": self.config.region,
            "functions": sorted(manifest.functions),
            "routes": [r.route_key for r in manifest.routes],
            "path": "direct" if self._relay is None else "relay",
        }
        if self._relay is not None:
            site = self._relay.api.site
            data.update(
                ws_url=site.ws_url,
                connections_url=site.connections_url,
                stage=site.stage,
                credentials={
                    "access_key_id": site.access_key_id,
                    "secret_access_key": site.secret_access_key,
                },
            )
        path = self.config.state_dir / DEV_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        # It holds the emulator's credentials: readable by the developer only.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(data, indent=2))
        tmp.replace(path)


class _LocalRelay:
    """The local cloud of the relay path: the WebSocket API with its router, the stubs, and
    the runner's relay client in front of the worker pool.

    The stubs run like Lambda runs them: each function's stub in worker processes of its own
    (one per concurrent invocation, warm between invocations) on pylive's interpreter, which
    has what the stub's bundle has in AWS (websockets, botocore, pylive's protocol)."""

    def __init__(
        self, config: AppConfig, pool: WorkerPool, stop: asyncio.Event, console: Console
    ) -> None:
        self.config = config
        self.pool = pool
        self.stop = stop
        self.console = console
        self.api = LocalRelayApi(app=config.name, stage=config.stage, region=config.region)
        self.stubs = WorkerPool(
            Path(sys.executable),
            stub_code_dir(),
            PoolOptions(
                region=config.region,
                # Lambda's variables and the function's environment, not the developer's
                # shell: the stub relays its environment with every invocation.
                base_env=process_environment(os.environ),
                output=StubOutput(console.output),
                events=console.event,
                preload_file=config.state_dir / STUB_PRELOAD_FILE,
                # The stub runs on pylive's interpreter here, which holds more than the
                # stub's bundle does in Lambda: its memory says nothing about AWS.
                memory_limit=False,
            ),
        )
        self.runner: asyncio.Task[Any]

    async def start(self, manifest: AppManifest, *, timeout_override: float | None) -> Invoke:
        await self.api.start()
        endpoint = self.api.site
        client = RelayClient(endpoint, self.pool, stop=self.stop, log=self.console.event)
        self.runner = asyncio.create_task(client.run())
        connected = asyncio.create_task(client.connected.wait())
        done, _ = await asyncio.wait({connected, self.runner}, return_when=asyncio.FIRST_COMPLETED)
        if connected not in done:
            connected.cancel()
            raise PyliveError("the relay client stopped before it connected")
        await self.stubs.start(self._stubs(manifest, timeout_override))
        return self.stubs.invoke

    def set_functions(self, manifest: AppManifest, timeout_override: float | None) -> None:
        self.stubs.set_functions(self._stubs(manifest, timeout_override))

    def _stubs(self, manifest: AppManifest, timeout_override: float | None) -> list[FunctionSpec]:
        """Each function as dev mode deploys it: the stub, with the function's settings, its
        ``dev_timeout``, so that a function that runs too long fails with its own timeout
        error from the worker, as it does live, and its ``dev_memory`` (which the stub's
        Lambda variables state; the function's workers keep its own memory size)."""
        return [
            dataclasses.replace(
                spec,
                handler=STUB_HANDLER,
                code_dir=str(stub_code_dir()),
                timeout=timeout_override or max(spec.dev_timeout, spec.timeout),
                memory=spec.dev_memory or spec.memory,
                environment={
                    **spec.environment,
                    **stub_environment(spec.id, self._stub_site(spec)),
                },
            )
            for spec in manifest.functions.values()
        ]

    def _stub_site(self, spec: FunctionSpec) -> RelaySite:
        """Where the stub of ``spec`` signs in as its function's role: with the relay's
        grants and the role's other policies as the template states them, resolved for the
        local cloud (its account, region and API)."""
        api = self.api
        policies = resolve(spec.role_policies, region=api.region, account=api.account)
        return api.stub_site(spec.id, extra_policies=policies)

    async def close(self) -> None:
        await self.stubs.close()
        await self.api.stop()


class StubOutput:
    """What the stubs print, for the console. A function's error reaches the console from
    the function's own worker; the stub re-raises it for Lambda, and the runtime logs it again
    with the stub's traceback: that report is left out. The stub's own failures (``Pylive...``
    errors: no runner, the relay unreachable) keep their one ``[ERROR]`` line. Everything else
    is shown, labelled ``<function> (stub)``."""

    def __init__(self, sink: Callable[[str, str], None]) -> None:
        self._sink = sink
        self._in_report: set[str] = set()  # functions whose stub is printing an error report

    def __call__(self, function_id: str, line: str) -> None:
        if line.startswith("[ERROR] "):
            self._in_report.add(function_id)
            if not line[len("[ERROR] ") :].startswith("Pylive"):
                return
        elif function_id in self._in_report and (
            line.startswith(" ") or line == "Traceback (most recent call last):"
        ):
            return
        else:
            self._in_report.discard(function_id)
        self._sink(f"{function_id} (stub)", line)


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
