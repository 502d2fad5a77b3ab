"""The stub against the real local gateway and router, with scripted runners on the other
side: in the local Lambda host (whose containers' limits a test can scale down), and in a
worker process of its own, as `pylive dev --local --relay` runs it."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from functools import partial
from types import ModuleType
from typing import Any

import pytest
from asynchelpers import run as bounded_run
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from pylive.cdk.manifest import FunctionSpec
from pylive.emulator.lambda_host import (
    LambdaHost,
    RelaySite,
    stub_environment,
    stub_function,
)
from pylive.emulator.relay_api import LocalRelayApi
from pylive.emulator.ws_gateway import WebSocketGateway
from pylive.in_lambda import protocol
from pylive.in_lambda.stub.limits import StubLimits
from pylive.runner.connections import ConnectionsClient
from pylive.runner.pool import WorkerPool
from pylive.runner.relay_endpoint import RelayEndpoint
from pylive.session.local_cloud import stub_pool, stub_spec

# This module's scenarios are bounded at 30 s.
run = partial(bounded_run, timeout=30)


# Where a stub runs: a container of the local Lambda host, or a worker of the stubs' pool.
WHERE = ("host", "worker")


@dataclass
class Cloud:
    gateway: WebSocketGateway
    host: LambdaHost
    site: RelaySite
    stub_site: RelaySite  # the stub signs as its function's role
    workers: WorkerPool | None = None  # the stub in a worker, once started there

    def endpoint(self) -> RelayEndpoint:
        return self.site  # the local API's site is the runner's endpoint

    def connections(self) -> ConnectionsClient:
        e = self.endpoint()
        return ConnectionsClient(e.connections_url, e.signer())

    def add_stub(
        self,
        timeout: float = 3.0,
        ack: float | None = None,
        grace: float | None = None,
        **limits: Any,
    ) -> None:
        fn = stub_function(
            "hello", self.stub_site, timeout=timeout, lambda_env={}, ack_timeout=ack,
            runner_grace=grace,
        )  # fmt: skip

        def patch(m: ModuleType) -> None:
            m.limits = StubLimits(**limits)  # type: ignore[attr-defined]

        self.host.add(replace(fn, setup=patch))

    async def add_stub_in(
        self, where: str, timeout: float = 3.0, ack: float | None = None, grace: float | None = None
    ) -> None:
        """The stub of "hello" in the Lambda host, or in a worker as dev mode runs it."""
        if where == "host":
            self.add_stub(timeout, ack, grace)
            return
        tunables = {"ack_timeout": ack, "runner_grace": grace}
        settings = {k: value for k, value in tunables.items() if value is not None}
        function = FunctionSpec(id="hello", handler="hello.handler", code_dir="", timeout=timeout)
        self.workers = stub_pool(region=self.site.region)
        await self.workers.start(
            [stub_spec(function, stub_environment("hello", self.stub_site, **settings))]
        )

    async def invoke(self, event: Any) -> tuple[bool, Any]:
        runs = self.host if self.workers is None else self.workers
        result = await runs.invoke("hello", json.dumps(event).encode())
        return result.ok, json.loads(result.body)


@asynccontextmanager
async def local_cloud() -> AsyncIterator[Cloud]:
    async with LocalRelayApi(app="shop", stage="ada") as api:
        cloud = Cloud(api.gateway, api.host, api.site, api.stub_site("hello"))
        try:
            yield cloud
        finally:
            if cloud.workers is not None:
                await cloud.workers.close()


@asynccontextmanager
async def scripted_runner(cloud: Cloud, answer: str) -> AsyncIterator[list[protocol.Invoke]]:
    """A runner that answers each invoke with ``answer``: "echo", "ack" (then nothing) or
    "nothing"."""
    seen: list[protocol.Invoke] = []
    posts = cloud.connections()
    async with connect(cloud.endpoint().signed_url(), compression=None, max_size=None) as ws:

        async def serve() -> None:
            async for frame in ws:
                message = protocol.decode(frame)
                assert isinstance(message, protocol.Invoke) and message.reply_to
                seen.append(message)
                if answer == "echo":
                    reply: protocol.Message = protocol.Result(message.request_id, message.event)
                elif answer == "ack":
                    reply = protocol.Ack(message.request_id)
                else:
                    continue
                await posts.post(message.reply_to, protocol.encode(reply).encode())

        task = asyncio.create_task(serve())
        try:
            yield seen
        finally:
            task.cancel()
            await posts.close()


@pytest.mark.parametrize("where", WHERE)
def test_one_connection_per_container_reused_while_warm(where: str) -> None:
    async def scenario() -> None:
        async with local_cloud() as cloud, scripted_runner(cloud, "echo") as seen:
            await cloud.add_stub_in(where)
            for n in range(5):
                assert await cloud.invoke({"n": n}) == (True, {"n": n})
            assert cloud.gateway.stats.connects == 2  # the runner and one stub container
            invoke = seen[0]
            assert invoke.function_id == "hello" and invoke.deadline_ms > time.time() * 1000
            assert "AWS_SECRET_ACCESS_KEY" not in invoke.environment
            assert invoke.environment["PYLIVE_STAGE"] == "ada"

    run(scenario())


def test_the_connection_is_renewed_before_the_idle_limit() -> None:
    async def scenario() -> None:
        async with local_cloud() as cloud, scripted_runner(cloud, "echo"):
            cloud.add_stub(idle_renew_s=-1)  # every invocation finds it "about to idle out"
            for n in range(3):
                assert await cloud.invoke(n) == (True, n)
            assert cloud.gateway.stats.connects == 1 + 3

    run(scenario())


@pytest.mark.parametrize("where", WHERE)
def test_a_runner_that_reconnected_is_found_again(where: str) -> None:
    async def scenario() -> None:
        async with local_cloud() as cloud:
            await cloud.add_stub_in(where)
            async with scripted_runner(cloud, "echo"):
                assert await cloud.invoke(1) == (True, 1)
            async with scripted_runner(cloud, "echo"):  # a new connection id
                assert await cloud.invoke(2) == (True, 2)

    run(scenario())


@pytest.mark.parametrize("where", WHERE)
def test_no_answer_within_the_ack_timeout_means_dev_is_not_running(where: str) -> None:
    async def scenario() -> None:
        async with local_cloud() as cloud, scripted_runner(cloud, "nothing"):
            await cloud.add_stub_in(where, ack=0.3, grace=0)
            started = time.monotonic()
            ok, body = await cloud.invoke({})
            assert time.monotonic() - started < 2
            assert not ok and body["errorType"] == "PyliveDevNotRunning"
            assert body["errorMessage"] == (
                "pylive dev is not running for stage ada (no answer within 0.3 s); "
                "start `pylive dev --stage ada`"
            )

    run(scenario())


def test_an_acked_invocation_without_answer_times_out_before_the_deadline() -> None:
    async def scenario() -> None:
        async with local_cloud() as cloud, scripted_runner(cloud, "ack"):
            cloud.add_stub(timeout=1.0)
            started = time.monotonic()
            ok, body = await cloud.invoke({})
            took = time.monotonic() - started
            assert not ok and body["errorType"] == "PyliveRelayTimeout", body
            assert "did not answer before its deadline" in body["errorMessage"]
            assert 0.8 <= took < 1.0

    run(scenario())


def test_context_objects_travel_in_the_runtimes_wire_shape() -> None:
    """The runtime's context objects are __slots__ classes: the stub must read them as such."""

    from pylive.in_lambda.stub import as_dict, identity_fields
    from pylive.sandbox.context import LambdaContext

    identity = {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}
    client_context = {"custom": {"k": "v"}, "env": {"e": "1"}, "client": {"app_title": "t"}}
    context = LambdaContext("r", dict(client_context), identity, 0, "arn")
    assert identity_fields(context.identity) == identity
    assert as_dict(context.client_context) == client_context
    empty = LambdaContext("r", None, None, 0, "arn")
    assert identity_fields(empty.identity) is None and as_dict(empty.client_context) is None


def _add_stub_for(cloud: Cloud, site: RelaySite) -> None:
    cloud.host.add(stub_function("hello", site, timeout=3.0, lambda_env={}))


def test_a_connect_the_relay_refuses_is_a_clear_error() -> None:
    async def scenario() -> None:
        async with local_cloud() as cloud, scripted_runner(cloud, "echo"):
            _add_stub_for(cloud, replace(cloud.site, secret_access_key="not-the-secret"))
            started = time.monotonic()
            ok, body = await cloud.invoke({})
            assert time.monotonic() - started < 2
            assert not ok and body["errorType"] == "PyliveRelayError", body
            assert body["errorMessage"].startswith("the relay refused the connection")
            assert "403" in body["errorMessage"]

    run(scenario())


def test_an_unreachable_relay_is_a_clear_error() -> None:
    async def scenario() -> None:
        async with local_cloud() as cloud:
            with socket.socket() as unused:
                unused.bind(("127.0.0.1", 0))
                port = unused.getsockname()[1]
            url = f"ws://127.0.0.1:{port}/ada"
            _add_stub_for(cloud, replace(cloud.site, ws_url=url))
            ok, body = await cloud.invoke({})
            assert not ok and body["errorType"] == "PyliveRelayError", body
            assert body["errorMessage"].startswith(f"cannot reach the relay at {url}")

    run(scenario())


def test_an_invocation_over_the_relays_limit_is_not_reported_as_dev_not_running() -> None:
    async def scenario() -> None:
        async with local_cloud() as cloud, scripted_runner(cloud, "nothing") as seen:
            cloud.add_stub(ack=0.3, max_message_bytes=4096)  # the relay's limit, made small
            ok, body = await cloud.invoke({"data": "x" * 5000})
            assert not ok and body["errorType"] == "PyliveRelayError", body
            assert "over the relay's limit of 4096 bytes for one message" in body["errorMessage"]
            assert "not running" not in body["errorMessage"]
            assert seen == []  # nothing was sent that the runner would have had to drop

    run(scenario())


def test_a_functions_role_cannot_take_the_runners_place() -> None:
    """Every stub's role may open a connection; connecting as the runner with it is refused,
    and invocations keep reaching the developer's runner."""

    async def scenario() -> None:
        async with local_cloud() as cloud, scripted_runner(cloud, "echo"):
            with pytest.raises(InvalidStatus) as raised:
                async with connect(cloud.stub_site.signed_url(), compression=None):
                    pass
            response = raised.value.response
            assert response.status_code == 403
            assert b"may not connect as the runner of app 'shop' stage 'ada'" in response.body
            cloud.add_stub()
            ok, body = await cloud.invoke({"n": 1})
            assert ok and body == {"n": 1}, body

    run(scenario())
