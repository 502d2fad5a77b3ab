"""The local cloud of `pylive dev --local`'s relay path: the WebSocket API with its router,
the functions' stubs, and the runner's relay client in front of the worker pool."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pylive.cdk.manifest import AppManifest, FunctionSpec
from pylive.cdk.shipped import handlers_dir
from pylive.config import AppConfig
from pylive.console import Console
from pylive.emulator.http_server import Invoke
from pylive.emulator.lambda_host import RelaySite, stub_environment
from pylive.emulator.relay_api import LocalRelayApi
from pylive.emulator.role_policies import resolve
from pylive.runner.environment import process_environment
from pylive.runner.pool import PoolOptions, WorkerPool
from pylive.runner.relay import RelayClient
from pylive.session.target import start_connected

STUB_PRELOAD_FILE = "preload-stub.json"
STUB_HANDLER = "stub.handler"


class LocalCloud:
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
        self.stubs = stub_pool(
            region=config.region,
            output=StubOutput(console.output),
            events=console.event,
            preload_file=config.state_dir / STUB_PRELOAD_FILE,
        )
        self.runner: asyncio.Task[Any]

    async def start(self, manifest: AppManifest, *, timeout_override: float | None) -> Invoke:
        await self.api.start()
        endpoint = self.api.site
        client = RelayClient(endpoint, self.pool, stop=self.stop, log=self.console.event)
        self.runner = await start_connected(
            client.run(), client.connected, "the relay client stopped before it connected"
        )
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
            stub_spec(spec, stub_environment(spec.id, self._stub_site(spec)), timeout_override)
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


def stub_pool(
    *,
    region: str,
    output: Callable[[str, str], None] = lambda function, line: None,
    events: Callable[[str], None] = lambda message: None,
    preload_file: Path | None = None,
) -> WorkerPool:
    """The stubs' own workers, as Lambda runs a stub: one per concurrent invocation, warm
    between invocations, on pylive's interpreter (which has what the stub's bundle has)."""
    return WorkerPool(
        Path(sys.executable),
        handlers_dir(),
        PoolOptions(
            region=region,
            # Lambda's variables and the function's environment, not the developer's
            # shell: the stub relays its environment with every invocation.
            base_env=process_environment(os.environ),
            output=output,
            events=events,
            preload_file=preload_file,
            # The stub runs on pylive's interpreter here, which holds more than the
            # stub's bundle does in Lambda: its memory says nothing about AWS.
            memory_limit=False,
        ),
    )


def stub_spec(
    spec: FunctionSpec, stub_env: dict[str, str], timeout_override: float | None = None
) -> FunctionSpec:
    """Function ``spec`` as dev mode deploys it: the stub (its settings ``stub_env``, see
    :func:`~pylive.emulator.lambda_host.stub_environment`) with the function's environment,
    its ``dev_timeout`` and ``dev_memory``."""
    return dataclasses.replace(
        spec,
        handler=STUB_HANDLER,
        code_dir=str(handlers_dir()),
        timeout=timeout_override or max(spec.dev_timeout, spec.timeout),
        memory=spec.dev_memory or spec.memory,
        environment={**spec.environment, **stub_env},
    )


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
