"""One `pylive dev` session, whatever its target: the app synthesized, its functions in warm,
hot-reloading workers, every invocation recorded, and the target feeding them (the local
HTTP API with or without the local cloud between, or the stage's stubs in AWS)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import time
from typing import Any

from pylive import appenv
from pylive.cdk.manifest import AppManifest
from pylive.cdk.synth import infra_sources, synthesize
from pylive.config import AppConfig
from pylive.console import Console
from pylive.errors import PyliveError
from pylive.runner.dependencies import DependencySync
from pylive.runner.pool import PoolOptions, WorkerPool
from pylive.runner.reload import ReloadWatcher
from pylive.session.aws import AwsTarget, Deployer
from pylive.session.http_front import LocalTarget
from pylive.session.options import DevOptions
from pylive.session.target import SessionTarget
from pylive.webconsole import SessionConsole, SessionInfo

PRELOAD_FILE = "preload.json"


class DevSession:
    def __init__(
        self,
        config: AppConfig,
        options: DevOptions,
        console: Console,
        *,
        deployer: Deployer | None = None,  # "aws": how the stage is deployed
    ) -> None:
        self.config = config
        self.options = options
        self.console = console
        self.stop = asyncio.Event()
        self.ready = asyncio.Event()
        self.invocations = SessionConsole(
            config.state_dir, console, web=options.web_console, port=options.console_port
        )
        self.target: SessionTarget
        if options.target == "aws":
            self.target = AwsTarget(config, options, console, self.stop, deployer)
        else:
            self.target = LocalTarget(config, options, console, self.stop)
        self._manifest: AppManifest | None = None  # what is served now
        self._pool: WorkerPool | None = None
        self._deps: DependencySync | None = None  # while files are watched

    @property
    def url(self) -> str:
        """The local HTTP API's address, once ready ("" when the target is AWS)."""
        return self.target.url

    async def run(self) -> None:
        started = time.perf_counter()
        _stop_on_signals(self.stop)
        await self.target.prepare()
        manifest = self._manifest = await self._synthesize(announce=False)
        await asyncio.to_thread(
            appenv.prepare_for, self.config, manifest, on_status=self.console.event
        )
        pool = self._pool = WorkerPool(self.config.python, self.config.root, self._pool_options())
        tasks: list[asyncio.Task[Any]] = []
        try:
            await pool.start(manifest.functions.values())
            tasks += await self.target.start(pool, manifest)
            if self.options.watch:
                tasks.append(asyncio.create_task(self._watcher().run()))
            await self.invocations.start(  # a replay runs on the current code
                self.target.replay, SessionInfo(manifest.app, self.target.label)
            )
            self.target.ready(manifest, time.perf_counter() - started)
            self._announce(manifest)
            self.ready.set()
            await _until_one_ends(self.stop, tasks)
        finally:
            self.stop.set()
            await self.target.stopping()
            await _finish(tasks)
            await self.target.close()
            await pool.close()
            await self.invocations.close()
            self.console.event("stopped")

    def _pool_options(self) -> PoolOptions:
        debug = self.options.debug
        return PoolOptions(
            region=self.config.region,
            output=self.console.output,
            events=self.console.event,
            debug_port=self.options.debug_port if debug else None,
            debug_wait=self.options.debug_wait,
            timeout_override=self.options.timeout_override,
            preload_file=self.config.state_dir / PRELOAD_FILE,
            memory_limit=not debug,  # a debugger needs memory of its own
            record=self.invocations.log,
            hint=functools.partial(
                appenv.missing_module_hint, self.config.root, self.config.python
            ),
        )

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
        assert self._pool is not None
        try:
            manifest = self._manifest = await self._synthesize(announce=True)
        except PyliveError as exc:
            self.console.warn(f"{exc} (still serving the previous version)")
            return
        if self._deps is not None:
            await self._deps.functions_changed()
        restarted = self._pool.set_functions(manifest.functions.values())
        self.target.functions_changed(manifest, restarted)

    def _announce(self, manifest: AppManifest) -> None:
        if self.invocations.url:
            self.console.info(f"Console: {self.invocations.url}")
        if self.options.debug:
            for index, function_id in enumerate(sorted(manifest.functions)):
                port = self.options.debug_port + index
                self.console.info(f"  debugger for {function_id}: attach to 127.0.0.1:{port}")
        self.console.info(self.target.how_to_stop)


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def _until_one_ends(stop: asyncio.Event, tasks: list[asyncio.Task[Any]]) -> None:
    """Wait for ``stop`` or for one of ``tasks`` to end; a task's failure is raised."""
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    for task in done:
        if task is not stopper and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def _finish(tasks: list[asyncio.Task[Any]], timeout: float = 5.0) -> None:
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(BaseException):
            await task
