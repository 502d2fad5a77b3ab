"""The relay under the limits of the AWS path, shortened: API Gateway's idle timeout and
maximum connection duration, and network paths that die silently (a NAT gateway forgetting
an idle flow). The runner's relay client, the stub in the local Lambda host and the local
WebSocket API are real; the invoker is scripted."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

import pytest
from asynchelpers import run
from runner.conftest import connected_runner
from websockets.asyncio.client import connect

from pylive.emulator.lambda_host import stub_function
from pylive.emulator.relay_api import LocalRelayApi
from pylive.emulator.ws_settings import GatewayLimits
from pylive.in_lambda.stub.limits import StubLimits
from pylive.in_lambda.stub.websocket import open_socket
from pylive.runner.invocation import InvokeResult
from pylive.runner.relay import RelayClient
from pylive.runner.tcp_keepalive import enable_tcp_keepalive

pytestmark = pytest.mark.slow


class Invoker:
    """Echoes each event; ``{"sleep": s}`` first sleeps, ``{"hold": true}`` waits until
    :attr:`release` is set. Counts its runs."""

    def __init__(self) -> None:
        self.runs: list[Any] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def invoke(self, function_id: str, event: bytes, **kw: Any) -> InvokeResult:
        value = json.loads(event)
        self.runs.append(value)
        self.started.set()
        if isinstance(value, dict) and value.get("sleep"):
            await asyncio.sleep(value["sleep"])  # the invocation's own duration
        if isinstance(value, dict) and value.get("hold"):
            await self.release.wait()
        return InvokeResult(True, json.dumps(value).encode())


@dataclass
class Cloud:
    api: LocalRelayApi

    def add_stub(self, timeout: float, **limits: Any) -> None:
        """The stub of function "hello", with :class:`StubLimits` of ``limits``."""
        fn = stub_function("hello", self.api.stub_site("hello"), timeout=timeout, lambda_env={})

        def patch(m: ModuleType) -> None:
            m.limits = StubLimits(**limits)  # type: ignore[attr-defined]

        self.api.host.add(replace(fn, setup=patch))

    async def invoke(self, event: Any) -> tuple[bool, Any]:
        result = await self.api.host.invoke("hello", json.dumps(event).encode())
        return result.ok, json.loads(result.body)

    def connection_of(self, role: str) -> str:
        """The id of the one open connection of ``role`` (runner or stub)."""
        table = self.api.table
        found = [
            cid
            for cid in self.api.gateway.connection_ids
            if (
                table.get_item(Key={"pk": f"conn#{cid}"}, ConsistentRead=True).get("Item") or {}
            ).get("role")
            == role
        ]
        assert len(found) == 1, found
        return found[0]


@asynccontextmanager
async def local_cloud(limits: GatewayLimits | None = None) -> AsyncIterator[Cloud]:
    async with LocalRelayApi(app="shop", stage="dev", limits=limits) as api:
        yield Cloud(api)


def runner(cloud: Cloud, invoker: Invoker, **kw: Any) -> AbstractAsyncContextManager[RelayClient]:
    return connected_runner(cloud.api.site, invoker, **kw)


async def until(condition: Callable[[], bool], timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


# Pings and probes fast enough for limits of a second or two.
FAST_RUNNER = {"keepalive": 0.2, "tick": 0.05, "probe_timeout": 2.0}
FAST_STUB = {"keepalive_s": 0.2, "probe_timeout_s": 2.0}


def test_an_invocation_held_across_several_idle_limits_completes() -> None:
    """API Gateway closes a connection idle for 10 minutes (here 1 s), whatever is in flight:
    the stub keeps its connection alive while it waits (a breakpoint held for minutes)."""

    async def scenario() -> None:
        invoker = Invoker()
        async with (
            local_cloud(GatewayLimits(idle_timeout=1.0)) as cloud,
            runner(cloud, invoker, **FAST_RUNNER),
        ):
            cloud.add_stub(timeout=15.0, **FAST_STUB)
            assert await cloud.invoke({"sleep": 3.5}) == (True, {"sleep": 3.5})
            assert cloud.api.gateway.stats.connects == 2  # the runner's and the stub's
            assert invoker.runs == [{"sleep": 3.5}]

    run(scenario())


def test_an_invocation_that_would_cross_the_two_hour_limit_renews_first() -> None:
    """API Gateway closes every connection at 2 hours (here 4 s): a stub whose connection
    would reach it before the invocation's deadline renews it first; the runner's own
    connection is cut mid-invocation, and the stub finds the runner again."""

    async def scenario() -> None:
        invoker = Invoker()
        async with (
            local_cloud(GatewayLimits(max_duration=4.0)) as cloud,
            runner(cloud, invoker, **FAST_RUNNER) as client,
        ):
            # The margin before the limit, scaled down.
            cloud.add_stub(timeout=3.5, age_margin_s=0.2, max_duration_s=4.0)
            assert await cloud.invoke({"n": 1}) == (True, {"n": 1})
            opened = asyncio.get_running_loop().time()
            await asyncio.sleep(1.5)  # the subject: the stub's connection ages
            assert asyncio.get_running_loop().time() - opened < 2.3  # still "young"
            assert await cloud.invoke({"sleep": 2.7}) == (True, {"sleep": 2.7})
            assert len(invoker.runs) == 2
            assert client.connects >= 2  # the gateway cut the runner at 4 s

    run(scenario())


def test_a_stub_whose_path_died_silently_gets_its_answer_on_a_new_connection() -> None:
    """The stub's flow is forgotten while the runner works (a NAT gateway, 350 s idle): the
    answer posted to the old connection is lost, the stub's ping goes unanswered, it
    reconnects and asks again, and the runner sends the answer it kept. It runs once."""

    async def scenario() -> None:
        invoker = Invoker()
        async with local_cloud() as cloud, runner(cloud, invoker, **FAST_RUNNER):
            cloud.add_stub(timeout=20.0, **FAST_STUB)
            assert await cloud.invoke({"n": 1}) == (True, {"n": 1})
            call = asyncio.ensure_future(cloud.invoke({"hold": True}))
            await invoker.started.wait()
            await asyncio.sleep(0.3)  # past the runner's ack window: the stub has its ack
            cloud.api.gateway.drop_flow(cloud.connection_of("stub"))
            invoker.release.set()
            assert await call == (True, {"hold": True})
            assert invoker.runs == [{"n": 1}, {"hold": True}]
            assert cloud.api.gateway.stats.connects == 3  # runner, stub, the stub again

    run(scenario())


def test_a_runner_whose_path_died_silently_reconnects_and_gets_the_invoke_again() -> None:
    """The runner's flow dies silently: an invoke posted to it is lost. The runner notices
    (nothing received, then no pong), reconnects, and the stub, seeing no ack, finds the new
    connection and posts the invoke there. It runs once."""

    async def scenario() -> None:
        invoker = Invoker()
        async with (
            local_cloud() as cloud,
            runner(cloud, invoker, **{**FAST_RUNNER, "keepalive": 1.0}) as client,
        ):
            cloud.add_stub(timeout=20.0, **FAST_STUB)
            assert await cloud.invoke({"n": 1}) == (True, {"n": 1})
            cloud.api.gateway.drop_flow(cloud.connection_of("runner"))
            assert await cloud.invoke({"n": 2}) == (True, {"n": 2})
            assert invoker.runs == [{"n": 1}, {"n": 2}]
            assert client.connects == 2
            logs = client.logs  # type: ignore[attr-defined]
            assert any("did not answer a ping" in line for line in logs), logs

    run(scenario())


def _keepalive_options(sock: socket.socket) -> tuple[int, int]:
    keepalive = sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
    return keepalive, sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)


def test_both_clients_turn_on_tcp_keepalive_well_inside_the_nat_timeout() -> None:
    """Kernel probes keep a NAT's mapping alive (a NAT gateway's idle timeout is 350 s)."""

    async def scenario() -> None:
        async with local_cloud() as cloud:
            port = cloud.api.gateway.port
            sock = await asyncio.to_thread(open_socket, "127.0.0.1", port, tls=False, timeout=5)
            with sock:
                keepalive, idle = _keepalive_options(sock)
                assert keepalive == 1 and idle < 350
            async with connect(cloud.api.site.signed_url(), compression=None) as ws:
                enable_tcp_keepalive(ws)
                keepalive, idle = _keepalive_options(ws.transport.get_extra_info("socket"))
                assert keepalive == 1 and idle < 350

    run(scenario())


def test_a_runner_restarted_mid_invocation_says_it_was_lost_rather_than_run_it_twice() -> None:
    """The stub sees its runner's connection gone and a new runner registered: it posts the
    invoke there marked ``resume``; the new runner never saw it, and answers with an error
    instead of running it a second time."""

    async def scenario() -> None:
        first, second = Invoker(), Invoker()
        async with local_cloud() as cloud:
            cloud.add_stub(timeout=20.0)
            stop = asyncio.Event()
            old = RelayClient(cloud.api.site, first, stop=stop, log=lambda line: None)
            old_run = asyncio.create_task(old.run())
            await old.connected.wait()
            call = asyncio.ensure_future(cloud.invoke({"hold": True}))
            await first.started.wait()
            await asyncio.sleep(0.3)  # past the runner's ack window: the stub has its ack
            stop.set()  # the old runner disconnects (and drops its running invocation)
            await until(lambda: not old.connected.is_set())
            async with runner(cloud, second):
                ok, body = await call
            await old_run
            assert not ok and body["errorType"] == "PyliveRelayError", body
            assert body["errorMessage"] == (
                "pylive dev (stage dev) restarted while running hello; the invocation was lost"
            )
            assert second.runs == []

    run(scenario())
