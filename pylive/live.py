"""`pylive dev` against AWS: the stage's functions are deployed as stubs, and every real
invocation runs here, in the same warm, hot-reloading workers as `pylive dev --local`.

1. Deploy the stage's DebugStack (the relay: WebSocket API, router, tables), read its outputs.
2. Deploy the app in dev mode: each function's stub, with the relay's address.
3. Connect the runner to the relay with the developer's credentials and serve invocations
   until Ctrl-C; the relay client reconnects (with backoff) after sleep or network loss.

The AWS side sits behind :class:`Deployer`, so the whole session also runs against the local
WebSocket emulator (tests do exactly that).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import os
import signal
import time
from typing import Any, Protocol

from pylive import appenv, protocol
from pylive.cdk.manifest import AppManifest
from pylive.cdk.synth import infra_sources, synthesize
from pylive.config import AppConfig
from pylive.console import Console
from pylive.errors import PyliveError
from pylive.relay_settings import RELAY_VARIABLE, Relay
from pylive.runner.dependencies import DependencySync
from pylive.runner.pool import InvokeResult, PoolOptions, WorkerPool
from pylive.runner.relay import RelayClient, RelayEndpoint, SigningCredentials
from pylive.runner.reload import ReloadWatcher
from pylive.webconsole import SessionConsole, SessionInfo

PRELOAD_FILE = "preload.json"


class Deployer(Protocol):
    def deploy_relay(self) -> Relay: ...

    def deploy_stubs(self, relay: Relay) -> None: ...

    def credentials(self) -> SigningCredentials:
        """The developer's credentials as they are now (asked again while the session runs)."""
        ...


class AwsDeployer:
    """The real thing: CloudFormation through `pylive deploy`'s code path."""

    def __init__(self, config: AppConfig, console: Console) -> None:
        self.config = config
        self.console = console
        self._credentials: Any = None

    def deploy_relay(self) -> Relay:
        from pylive.cdk.deploy import DeployOptions, debug_stack_name, deploy

        result = deploy(self.config, self.console, DeployOptions(mode="debug"))
        outputs = result.outputs.get(debug_stack_name(self.config), {})
        missing = [k for k in ("ApiId", "WebSocketUrl", "CallbackUrl") if k not in outputs]
        if missing:
            raise PyliveError(
                f"the debug stack {debug_stack_name(self.config)} has no output(s) "
                f"{', '.join(missing)}; run `pylive remove --stage {self.config.stage}` and retry"
            )
        return Relay(
            app=self.config.name,
            stage=self.config.stage,
            api_id=outputs["ApiId"],
            relay_url=outputs["WebSocketUrl"],
            callback_url=outputs["CallbackUrl"],
        )

    def deploy_stubs(self, relay: Relay) -> None:
        from pylive.cdk.deploy import DeployOptions, deploy

        synth_env = {RELAY_VARIABLE: json.dumps(relay.to_context())}
        options = DeployOptions(mode="dev", synth_env=synth_env)
        deploy(self.config, self.console, options)

    def credentials(self) -> SigningCredentials:
        from pylive.aws_account import checked_session

        if self._credentials is None:  # botocore's object renews temporary credentials itself
            self._credentials = checked_session(self.config.region).get_credentials()
        frozen = self._credentials.get_frozen_credentials()
        return SigningCredentials(frozen.access_key, frozen.secret_key, frozen.token)


class _ByPath:
    """The pool, addressed by the construct paths the deployed stubs send."""

    def __init__(self, pool: WorkerPool, manifest: AppManifest) -> None:
        self.pool = pool
        self.update(manifest)

    def update(self, manifest: AppManifest) -> None:
        self.manifest = manifest
        self.ids = {spec.path: spec.id for spec in manifest.functions.values() if spec.path}

    async def invoke(self, function_id: str, event: bytes, **kwargs: Any) -> InvokeResult:
        return await self.pool.invoke(self.ids.get(function_id, function_id), event, **kwargs)


class RoleAssumer:
    """`--assume-role`: each function runs with its own execution role's credentials
    (assumed with the developer's, renewed before they expire), so a missing permission fails
    here as it would in Lambda. Role credentials only ever live in the workers' environment."""

    RENEW_BEFORE_S = 300
    DURATION_S = 3600

    def __init__(self, region: str, pool: WorkerPool, invoker: _ByPath) -> None:
        self.region = region
        self.pool = pool
        self.invoker = invoker
        self._cache: dict[str, tuple[dict[str, str], float]] = {}
        self._applied: dict[str, str] = {}  # function id -> the access key its workers have
        self._lock = asyncio.Lock()

    def reset(self) -> None:
        """The functions were replaced (new settings): apply credentials again."""
        self._applied.clear()

    async def prepare(self, invoke: protocol.Invoke) -> None:
        role = invoke.environment.get(protocol.ROLE_ARN_VARIABLE)
        if not role:
            return
        function_id = self.invoker.ids.get(invoke.function_id, invoke.function_id)
        async with self._lock:
            credentials = await asyncio.to_thread(self._credentials, role)
            if self._applied.get(function_id) == credentials["AWS_ACCESS_KEY_ID"]:
                return
            specs = []
            for spec in (self.pool.spec(i) for i in self.pool.function_ids):
                if spec.id == function_id:
                    spec = dataclasses.replace(
                        spec, environment={**spec.environment, **credentials}
                    )
                specs.append(spec)
            self.pool.set_functions(specs)  # its workers restart with the role's credentials
            self._applied[function_id] = credentials["AWS_ACCESS_KEY_ID"]

    def _credentials(self, role: str) -> dict[str, str]:
        cached = self._cache.get(role)
        if cached is not None and cached[1] - time.time() > self.RENEW_BEFORE_S:
            return cached[0]
        from pylive.aws_account import checked_session

        sts = checked_session(self.region).client("sts")
        try:
            answer = sts.assume_role(
                RoleArn=role, RoleSessionName="pylive-dev", DurationSeconds=self.DURATION_S
            )
        except Exception as exc:
            raise PyliveError(f"cannot assume {role} (--assume-role): {exc}") from None
        issued = answer["Credentials"]
        credentials = {
            "AWS_ACCESS_KEY_ID": issued["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": issued["SecretAccessKey"],
            "AWS_SESSION_TOKEN": issued["SessionToken"],
        }
        self._cache[role] = (credentials, issued["Expiration"].timestamp())
        return credentials


class LiveDevSession:
    def __init__(
        self,
        config: AppConfig,
        console: Console,
        *,
        deployer: Deployer | None = None,
        watch: bool = True,
        debug_port: int | None = None,
        assume_role: bool = False,
        web_console: bool = True,
        console_port: int = 0,
    ) -> None:
        self.config = config
        self.console = console
        self.deployer = deployer or AwsDeployer(config, console)
        self.watch = watch
        self.debug_port = debug_port
        self.assume_role = assume_role
        self.stop = asyncio.Event()
        self.ready = asyncio.Event()
        self.relay: Relay | None = None
        self.invocations = SessionConsole(
            config.state_dir, console, web=web_console, port=console_port
        )

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop.set)
        started = time.perf_counter()
        credentials = await asyncio.to_thread(self.deployer.credentials)
        self.console.event(f"deploying the relay for stage {self.config.stage!r}")
        relay = self.relay = await asyncio.to_thread(self.deployer.deploy_relay)
        self.console.event("deploying the stubs (every invocation will run here)")
        await asyncio.to_thread(self.deployer.deploy_stubs, relay)
        manifest = (await asyncio.to_thread(synthesize, self.config)).manifest
        await asyncio.to_thread(
            appenv.prepare_for, self.config, manifest, on_status=self.console.event
        )
        pool = WorkerPool(
            self.config.python,
            self.config.root,
            PoolOptions(
                region=self.config.region,
                output=self.console.output,
                events=self.console.event,
                debug_port=self.debug_port,
                timeout_override=900.0 if self.debug_port is not None else None,
                preload_file=self.config.state_dir / PRELOAD_FILE,
                memory_limit=self.debug_port is None,  # a debugger needs memory of its own
                record=self.invocations.log,
                hint=functools.partial(
                    appenv.missing_module_hint, self.config.root, self.config.python
                ),
            ),
        )
        invoker = _ByPath(pool, manifest)
        endpoint = RelayEndpoint(
            relay.relay_url,
            relay.callback_url,
            relay.app,
            relay.stage,
            self.config.region,
            credentials.access_key_id,
            credentials.secret_access_key,
            credentials.session_token,
        )
        assumer = RoleAssumer(self.config.region, pool, invoker) if self.assume_role else None
        client = RelayClient(
            endpoint,
            invoker,
            stop=self.stop,
            log=self.console.event,
            prepare=assumer.prepare if assumer is not None else None,
            credentials=self.deployer.credentials,
        )
        tasks: list[asyncio.Task[Any]] = []
        try:
            await pool.start(manifest.functions.values())
            runner = asyncio.create_task(client.run())
            tasks.append(runner)
            connected = asyncio.create_task(client.connected.wait())
            done, _ = await asyncio.wait({connected, runner}, return_when="FIRST_COMPLETED")
            if connected not in done:
                connected.cancel()
                raise PyliveError(f"could not connect to the relay at {relay.relay_url}")
            # A replay runs here on the current code (the event came from AWS once).
            await self.invocations.start(
                lambda function, event, rid: pool.invoke(function, event, request_id=rid),
                SessionInfo(manifest.app, f"dev, stage {relay.stage}"),
            )
            if self.watch:
                tasks.append(asyncio.create_task(self._watcher(pool, invoker, assumer).run()))
            took = time.perf_counter() - started
            self.console.info(
                f"pylive dev: {manifest.app} stage {relay.stage!r} is live; invocations of "
                f"{len(manifest.functions)} function(s) run here (ready in {took:.1f} s)"
            )
            if self.invocations.url:
                self.console.info(f"Console: {self.invocations.url}")
            self.console.info("Press Ctrl-C to stop (the stubs then answer that no runner is on).")
            self.ready.set()
            stopper = asyncio.create_task(self.stop.wait())
            await asyncio.wait([stopper, runner], return_when="FIRST_COMPLETED")
            stopper.cancel()
            if runner.done() and runner.result() == "replaced":
                self.console.event("another `pylive dev` took over this stage; stopping")
        finally:
            self.stop.set()
            for task in tasks:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            await pool.close()
            await self.invocations.close()
            self.console.event("stopped")

    def _watcher(
        self, pool: WorkerPool, invoker: _ByPath, assumer: RoleAssumer | None
    ) -> ReloadWatcher:
        def code_changed(paths: set[str]) -> None:
            affected = pool.affected_by(paths)
            if affected:
                pool.reload(affected)

        async def infra_changed() -> None:
            try:
                manifest = (await asyncio.to_thread(synthesize, self.config)).manifest
            except PyliveError as exc:
                self.console.warn(f"{exc} (still serving the previous functions)")
                return
            await deps.functions_changed()
            pool.set_functions(manifest.functions.values())
            invoker.update(manifest)
            if assumer is not None:
                assumer.reset()
            self.console.warn(
                "the stacks changed: functions run with the new settings here; restart "
                "`pylive dev` to deploy new functions or routes"
            )

        def infra_files() -> set[str]:
            return {os.path.realpath(p) for p in infra_sources(self.config, invoker.manifest)}

        deps = DependencySync(
            self.config.root,
            self.config.python,
            lambda: invoker.manifest.code_dirs(),
            pool,
            self.console,
        )
        return ReloadWatcher(
            self.config.root,
            infra_files=infra_files,
            on_code=code_changed,
            on_infra=infra_changed,
            stop=self.stop,
            deps_files=deps.files,
            on_deps=deps.changed,
        )
