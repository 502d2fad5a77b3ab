"""A local Lambda host: runs the stub and the router as warm "Lambda functions" in the local
cloud, with the context and environment Lambda gives them.

Each function has *containers*: one per concurrent invocation, created on demand and reused
when idle, as Lambda does. A container is a fresh copy of the handler's module (loaded from
its file under a private name, so module-level state such as the stub's relay connection is
per container) plus one thread that runs its invocations, and the environment mapping the
module sees as ``environ``. An invocation that outlives its timeout answers with Lambda's
timeout error and retires its container.

::

    host = LambdaHost(region="us-east-1")
    stub = Path("pylive/in_lambda/handlers/stub.py")
    host.add(LambdaFunction("hello", stub, timeout=3.0, environment={...}))
    result = await host.invoke("hello", b'{"key": 1}')   # an InvokeResult
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from pylive import exact_json
from pylive.cdk.shipped import handlers_dir
from pylive.in_lambda.relay_settings import StubSettings
from pylive.runner.invocation import InvokeResult
from pylive.runner.relay_endpoint import RelayEndpoint
from pylive.sandbox.context import LambdaContext
from pylive.sandbox.errors import (
    RESPONSE_LIMIT_BYTES,
    Fault,
    make_error,
    marshal,
    response_too_large_error,
    timeout_error,
    user_trace,
)

ModuleSetup = Callable[[ModuleType], None]


@dataclass(frozen=True)
class LambdaFunction:
    """One function: the file that defines ``handler``, its limits and its environment."""

    name: str
    module_path: Path
    handler: str = "handler"
    timeout: float = 3.0
    memory: int = 128
    environment: Mapping[str, str] = field(default_factory=dict)
    setup: ModuleSetup | None = None  # called once per container after the module loads


class _Container:
    def __init__(self, function: LambdaFunction) -> None:
        self.function = function
        self.executor = ThreadPoolExecutor(1, thread_name_prefix=f"lambda-{function.name}")
        self.module: ModuleType | None = None

    def load(self) -> ModuleType:
        if self.module is None:
            self.module = _load(self.function)
        return self.module

    def run(self, event: Any, context: LambdaContext) -> Any:
        self.load()
        handler = getattr(self.module, self.function.handler)
        return handler(event, context)

    def retire(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class _Function:
    def __init__(self, function: LambdaFunction, arn: str) -> None:
        self.function = function
        self.arn = arn
        self.variables = _context_variables(function)
        self.idle: deque[_Container] = deque()
        self.all: set[_Container] = set()


class LambdaHost:
    def __init__(self, *, region: str = "us-east-1", account: str = "123456789012") -> None:
        self.region = region
        self.account = account
        self._functions: dict[str, _Function] = {}

    def add(self, function: LambdaFunction) -> None:
        """Add (or replace) a function; a replaced function's containers are retired."""
        old = self._functions.pop(function.name, None)
        if old is not None:
            for container in old.all:
                container.retire()
        arn = f"arn:aws:lambda:{self.region}:{self.account}:function:{function.name}"
        self._functions[function.name] = _Function(function, arn)

    @property
    def names(self) -> list[str]:
        return list(self._functions)

    def containers(self, name: str) -> int:
        """How many containers the function has (busy and idle)."""
        return len(self._functions[name].all)

    def prewarm(self, name: str) -> None:
        """Start a container and load its module in the background, as a provisioned
        concurrency of one would, so the first request does not pay for the imports."""
        state = self._functions[name]
        if state.all:
            return
        container = self._new(state)
        container.executor.submit(container.load)
        state.idle.append(container)

    async def invoke(self, name: str, event: bytes | Any) -> InvokeResult:
        """Invoke ``name`` with ``event`` (JSON bytes or an already decoded value)."""
        state = self._functions[name]
        payload = exact_json.loads(event) if isinstance(event, bytes | bytearray) else event
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        deadline = time.time() + state.function.timeout
        context = LambdaContext(
            request_id, None, None, int(deadline * 1000), state.arn, environ=state.variables
        )
        container = state.idle.pop() if state.idle else self._new(state)
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(container.executor, container.run, payload, context)
        try:
            async with asyncio.timeout(state.function.timeout):
                value = await asyncio.shield(future)
        except TimeoutError:
            self._discard(state, container)
            body = timeout_error(request_id, state.function.timeout)
            return InvokeResult(False, body, request_id=request_id, duration_ms=_ms(started))
        except asyncio.CancelledError:
            self._discard(state, container)
            raise
        except Exception as exc:  # the handler raised: Lambda's error payload
            state.idle.append(container)
            return InvokeResult(
                False,
                make_error(str(exc), type(exc).__name__, user_trace(exc.__traceback__), request_id),
                request_id=request_id,
                duration_ms=_ms(started),
            )
        state.idle.append(container)
        try:
            body, content_type = marshal(value)
        except Fault as fault:
            body = make_error(fault.message, fault.error_type, fault.trace, request_id)
            return InvokeResult(False, body, request_id=request_id, duration_ms=_ms(started))
        if len(body) > RESPONSE_LIMIT_BYTES:
            # Lambda refuses the answer and its runtime exits: the container is retired.
            self._discard(state, container)
            body = response_too_large_error()
            return InvokeResult(False, body, request_id=request_id, duration_ms=_ms(started))
        return InvokeResult(
            True, body, request_id=request_id, duration_ms=_ms(started), content_type=content_type
        )

    async def invoke_value(self, name: str, event: Any) -> Any:
        """Invoke and return the decoded result; a function error raises :class:`FunctionError`."""
        result = await self.invoke(name, event)
        value = exact_json.loads(result.body)
        if not result.ok:
            raise FunctionError(name, value)
        return value

    def close(self) -> None:
        for state in self._functions.values():
            for container in state.all:
                container.retire()
            state.idle.clear()
            state.all.clear()

    def _new(self, state: _Function) -> _Container:
        container = _Container(state.function)
        state.all.add(container)
        return container

    def _discard(self, state: _Function, container: _Container) -> None:
        state.all.discard(container)
        with contextlib.suppress(ValueError):
            state.idle.remove(container)
        container.retire()


class FunctionError(Exception):
    """A local function answered with an error payload."""

    def __init__(self, name: str, payload: Any) -> None:
        self.payload = payload
        message = payload.get("errorMessage") if isinstance(payload, dict) else payload
        super().__init__(f"{name} failed: {message}")


def _load(function: LambdaFunction) -> ModuleType:
    name = f"_pylive_container_{function.module_path.stem}_{secrets.token_hex(4)}"
    spec = importlib.util.spec_from_file_location(name, function.module_path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {function.module_path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    setattr(module, "environ", dict(function.environment))  # noqa: B010
    if function.setup is not None:
        function.setup(module)
    return module


def _context_variables(function: LambdaFunction) -> dict[str, str]:
    """The Lambda variables the context reads (a worker reads its own environment)."""
    return {
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": function.environment.get("AWS_LAMBDA_LOG_STREAM_NAME", ""),
    }


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


# -- the relay's two functions -------------------------------------------------------------


# What the stub and the router need to know about the local relay API: the same as what the
# runner needs (its address, app, stage, region, and credentials the API accepts).
RelaySite = RelayEndpoint


ROUTER = "pylive-router"


def _credentials(site: RelaySite) -> dict[str, str]:
    """What Lambda puts in a function's environment: its role session's credentials."""
    credentials = {
        "AWS_ACCESS_KEY_ID": site.access_key_id,
        "AWS_SECRET_ACCESS_KEY": site.secret_access_key,
        "AWS_REGION": site.region,
        "AWS_DEFAULT_REGION": site.region,
    }
    if site.session_token:
        credentials["AWS_SESSION_TOKEN"] = site.session_token
    return credentials


def router_function(
    site: RelaySite, table: Any, runner_principals: Sequence[str] = ()
) -> LambdaFunction:
    """The debug stack's router, its table swapped for ``table`` (e.g. a MemoryTable);
    ``runner_principals`` (ARNs) may connect as the runner, as the DebugStack sets them."""

    def use_table(module: ModuleType) -> None:
        setattr(module, "_dynamodb", table)  # noqa: B010

    environment = {
        **_credentials(site),
        "PYLIVE_TABLE": "connections",
        "PYLIVE_CALLBACK_URL": site.connections_url,
        "PYLIVE_RUNNER_PRINCIPALS": ",".join(runner_principals),
        "AWS_LAMBDA_FUNCTION_NAME": ROUTER,
    }
    return LambdaFunction(
        ROUTER, handlers_dir() / "router.py", timeout=10.0, memory=256,
        environment=environment, setup=use_table,
    )  # fmt: skip


def stub_environment(function_id: str, site: RelaySite, **tunables: Any) -> dict[str, str]:
    """What the stub of ``function_id`` needs to reach the local relay (see pylive/in_lambda/stub);
    ``tunables`` are :class:`StubSettings` fields such as ``ack_timeout``."""
    settings = StubSettings(
        relay_url=site.ws_url,
        callback_url=site.connections_url,
        app=site.app,
        stage=site.stage,
        function_id=function_id,
    )
    return {**_credentials(site), **replace(settings, **tunables).to_env()}


def stub_function(
    name: str,
    site: RelaySite,
    *,
    timeout: float,
    lambda_env: Mapping[str, str],
    ack_timeout: float | None = None,
    runner_grace: float | None = None,
) -> LambdaFunction:
    """The stub deployed for function ``name``; ``lambda_env`` is what Lambda would set
    (reserved variables and the function's own environment)."""
    tunables = {"ack_timeout": ack_timeout, "runner_grace": runner_grace}
    stub = stub_environment(
        name, site, **{k: value for k, value in tunables.items() if value is not None}
    )
    environment = {**lambda_env, **stub, "_HANDLER": "stub.handler"}
    return LambdaFunction(
        name, handlers_dir() / "stub.py", timeout=timeout, environment=environment
    )


def router_integration(host: LambdaHost) -> Callable[[dict[str, Any], Any], Any]:
    """A WebSocket gateway integration that invokes the router in ``host``."""

    async def integration(event: dict[str, Any], context: Any) -> dict[str, Any] | None:
        value = await host.invoke_value(ROUTER, event)
        return value if isinstance(value, dict) else None

    return integration
