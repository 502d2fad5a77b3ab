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
import dataclasses
import json
import time
from typing import Any, Protocol

from pylive.cdk.manifest import AppManifest
from pylive.config import AppConfig
from pylive.console import Console
from pylive.errors import PyliveError
from pylive.in_lambda import protocol
from pylive.in_lambda.relay_settings import RELAY_VARIABLE, Relay
from pylive.runner.invocation import InvokeResult
from pylive.runner.pool import WorkerPool
from pylive.runner.relay import RelayClient
from pylive.runner.relay_endpoint import RelayEndpoint, SigningCredentials
from pylive.session.options import DevOptions
from pylive.session.target import start_connected


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


class ByPath:
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

    def __init__(self, region: str, pool: WorkerPool, invoker: ByPath) -> None:
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


class AwsTarget:
    how_to_stop = "Press Ctrl-C to stop (the stubs then answer that no runner is on)."
    url = ""  # invocations come from AWS, not from a local HTTP API

    def __init__(
        self,
        config: AppConfig,
        options: DevOptions,
        console: Console,
        stop: asyncio.Event,
        deployer: Deployer | None,
    ) -> None:
        self.config = config
        self.options = options
        self.console = console
        self.stop = stop
        self.deployer = deployer or AwsDeployer(config, console)
        self.label = f"dev, stage {config.stage}"
        self.relay: Relay | None = None
        self._credentials: SigningCredentials | None = None
        self._pool: WorkerPool | None = None
        self._invoker: ByPath | None = None
        self._assumer: RoleAssumer | None = None

    async def prepare(self) -> None:
        self._credentials = await asyncio.to_thread(self.deployer.credentials)
        self.console.event(f"deploying the relay for stage {self.config.stage!r}")
        relay = self.relay = await asyncio.to_thread(self.deployer.deploy_relay)
        self.label = f"dev, stage {relay.stage}"
        self.console.event("deploying the stubs (every invocation will run here)")
        await asyncio.to_thread(self.deployer.deploy_stubs, relay)

    async def start(self, pool: WorkerPool, manifest: AppManifest) -> list[asyncio.Task[Any]]:
        relay, credentials = self.relay, self._credentials
        assert relay is not None and credentials is not None
        self._pool = pool
        invoker = self._invoker = ByPath(pool, manifest)
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
        if self.options.assume_role:
            self._assumer = RoleAssumer(self.config.region, pool, invoker)
        client = RelayClient(
            endpoint,
            invoker,
            stop=self.stop,
            log=self.console.event,
            prepare=self._assumer.prepare if self._assumer is not None else None,
            credentials=self.deployer.credentials,
        )
        runner = await start_connected(
            self._serve(client),
            client.connected,
            f"could not connect to the relay at {relay.relay_url}",
        )
        return [runner]

    async def _serve(self, client: RelayClient) -> None:
        if await client.run() == "replaced":
            self.console.event("another `pylive dev` took over this stage; stopping")

    async def replay(self, function_id: str, event: bytes, request_id: str) -> InvokeResult:
        # Here, on the current code: the event came from AWS once.
        assert self._pool is not None
        return await self._pool.invoke(function_id, event, request_id=request_id)

    def ready(self, manifest: AppManifest, took: float) -> None:
        assert self.relay is not None
        self.console.info(
            f"pylive dev: {manifest.app} stage {self.relay.stage!r} is live; invocations of "
            f"{len(manifest.functions)} function(s) run here (ready in {took:.1f} s)"
        )

    def functions_changed(self, manifest: AppManifest, restarted: list[str]) -> None:
        assert self._invoker is not None
        self._invoker.update(manifest)
        if self._assumer is not None:
            self._assumer.reset()
        self.console.warn(
            "the stacks changed: functions run with the new settings here; restart "
            "`pylive dev` to deploy new functions or routes"
        )

    async def stopping(self) -> None:
        pass

    async def close(self) -> None:
        pass
