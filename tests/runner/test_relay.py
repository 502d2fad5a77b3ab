"""The runner's relay client against the real local gateway, router and stub (in the local
Lambda host), with a scripted invoker in place of the worker pool."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import pytest
from asynchelpers import run
from runner.conftest import connected_runner
from websockets.asyncio.client import connect

from pylive.emulator.lambda_host import (
    ROUTER,
    LambdaHost,
    RelaySite,
    stub_function,
)
from pylive.emulator.relay_api import LocalRelayApi
from pylive.emulator.store import MemoryTable
from pylive.emulator.ws_gateway import WebSocketGateway
from pylive.in_lambda import protocol
from pylive.runner.invocation import InvokeResult
from pylive.runner.relay import RelayClient
from pylive.runner.relay_endpoint import RelayEndpoint, SigningCredentials

Handler = Callable[[str, bytes], Awaitable[InvokeResult]]


class ScriptedInvoker:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.calls: list[tuple[str, Any, str | None]] = []

    async def invoke(self, function_id: str, event: bytes, **kw: Any) -> InvokeResult:
        self.calls.append((function_id, json.loads(event), kw.get("request_id")))
        return await self.handler(function_id, event)


async def echo(function_id: str, event: bytes) -> InvokeResult:
    return InvokeResult(True, json.dumps({"fn": function_id, "event": json.loads(event)}).encode())


@dataclass
class Cloud:
    gateway: WebSocketGateway
    host: LambdaHost
    site: RelaySite
    table: MemoryTable
    api: LocalRelayApi

    def endpoint(self) -> RelayEndpoint:
        return self.site  # the local API's site is the runner's endpoint

    def add_stub(self, name: str, timeout: float = 3.0, ack_timeout: float | None = None) -> None:
        env = {"AWS_LAMBDA_FUNCTION_NAME": name}
        self.host.add(
            stub_function(
                name,
                self.api.stub_site(name),
                timeout=timeout,
                lambda_env=env,
                ack_timeout=ack_timeout,
            )
        )


@asynccontextmanager
async def local_cloud(stage: str = "dev") -> AsyncIterator[Cloud]:
    async with LocalRelayApi(app="shop", stage=stage) as api:
        yield Cloud(api.gateway, api.host, api.site, api.table, api)


def runner(cloud: Cloud, invoker: Any, **kw: Any) -> AbstractAsyncContextManager[RelayClient]:
    return connected_runner(cloud.endpoint(), invoker, **kw)


def test_a_warm_invocation_costs_two_connections_calls() -> None:
    async def scenario() -> None:
        async with local_cloud() as cloud, runner(cloud, ScriptedInvoker(echo)):
            cloud.add_stub("hello")
            first = await cloud.host.invoke_value("hello", {"n": 1})
            assert first == {"fn": "hello", "event": {"n": 1}}
            before = cloud.gateway.stats.connections_calls
            for n in range(5):
                assert (await cloud.host.invoke_value("hello", {"n": n}))["event"] == {"n": n}
            assert cloud.gateway.stats.connections_calls - before == 10

    run(scenario())


def test_remote_errors_keep_their_type_and_message() -> None:
    async def fail(function_id: str, event: bytes) -> InvokeResult:
        error = {"errorMessage": "bad thing", "errorType": "ValueError", "stackTrace": []}
        return InvokeResult(False, json.dumps(error).encode())

    async def scenario() -> None:
        async with local_cloud() as cloud, runner(cloud, ScriptedInvoker(fail)):
            cloud.add_stub("hello")
            result = await cloud.host.invoke("hello", b"{}")
            assert not result.ok
            body = json.loads(result.body)
            assert (body["errorType"], body["errorMessage"]) == ("ValueError", "bad thing")

    run(scenario())


def test_a_slow_invocation_is_acked_and_answered() -> None:
    async def slow(function_id: str, event: bytes) -> InvokeResult:
        await asyncio.sleep(0.3)  # the behaviour under test: longer than the ack window
        return await echo(function_id, event)

    async def scenario() -> None:
        async with local_cloud() as cloud, runner(cloud, ScriptedInvoker(slow)):
            cloud.add_stub("hello", ack_timeout=0.2)
            assert (await cloud.host.invoke_value("hello", [1]))["event"] == [1]
            ops = cloud.gateway.stats.connections_calls_by_operation
            assert ops["PostToConnection"] == 3  # invoke, ack, result

    run(scenario())


def test_no_runner_is_a_clear_error_at_once() -> None:
    async def scenario() -> None:
        async with local_cloud(stage="ada") as cloud:
            cloud.add_stub("hello")
            result = await cloud.host.invoke("hello", b"{}")
            body = json.loads(result.body)
            assert body["errorType"] == "PyliveDevNotRunning"
            assert body["errorMessage"] == (
                "pylive dev is not running for stage ada (no runner is connected); "
                "start `pylive dev --stage ada`"
            )

    run(scenario())


def test_large_payloads_are_chunked_both_ways() -> None:
    async def scenario() -> None:
        async with local_cloud() as cloud, runner(cloud, ScriptedInvoker(echo)):
            cloud.add_stub("hello")
            big = "x" * (1024 * 1024)
            assert (await cloud.host.invoke_value("hello", {"big": big}))["event"]["big"] == big

    run(scenario())


def test_large_messages_travel_as_raw_chunks_both_ways() -> None:
    posted: list[tuple[str, bytes]] = []

    async def scenario() -> None:
        async with local_cloud() as cloud, runner(cloud, ScriptedInvoker(echo)):
            deliver = cloud.gateway.post

            async def seen(connection_id: str, data: bytes) -> bool:
                posted.append((connection_id, data))
                return await deliver(connection_id, data)

            cloud.gateway.post = seen  # type: ignore[method-assign]
            cloud.add_stub("hello")
            big = "é" * (300 * 1024)  # two bytes each: slices must not cut one in two
            assert (await cloud.host.invoke_value("hello", {"big": big}))["event"]["big"] == big

    run(scenario())
    chunks = [(to, data) for to, data in posted if data.startswith(protocol.CHUNK_PREFIX)]
    assert len({to for to, _ in chunks}) == 2  # the invoke to the runner, the answer to the stub
    for _, data in chunks:
        head, separator, _ = data.partition(b"\n")
        chunk = protocol.decode(head)
        assert separator and isinstance(chunk, protocol.Chunk) and chunk.data == ""
        data.decode()  # a text message


def test_integers_beyond_64_bits_cross_the_relay_exactly_both_ways() -> None:
    # Lambda's runtime reads and writes JSON with the standard library: such integers stay
    # integers (a fast JSON library would round them to floats, or refuse to write them).
    big = 2**64

    async def answer(function_id: str, event: bytes) -> InvokeResult:
        value = json.loads(event)
        return InvokeResult(True, json.dumps({"n": value["n"] + 1, "m": -big, "f": 0.5}).encode())

    async def scenario() -> None:
        invoker = ScriptedInvoker(answer)
        async with local_cloud() as cloud, runner(cloud, invoker):
            cloud.add_stub("hello")
            assert await cloud.host.invoke_value("hello", {"n": big}) == {
                "n": big + 1,
                "m": -big,
                "f": 0.5,
            }
            assert invoker.calls[0][1] == {"n": big}

    run(scenario())


def test_an_answer_over_the_relays_limit_is_an_error_not_a_timeout() -> None:
    async def raw(function_id: str, event: bytes) -> InvokeResult:
        # A function's bytes result, as the pool returns it: under Lambda's 6 MB, but its
        # NUL bytes travel as JSON escapes, six times the size.
        return InvokeResult(True, b"\x00" * (3 * 1024 * 1024), "application/unknown")

    async def scenario() -> None:
        async with local_cloud() as cloud, runner(cloud, ScriptedInvoker(raw)):
            cloud.add_stub("hello", timeout=30.0)
            body = json.loads((await cloud.host.invoke("hello", b"{}")).body)
            assert body["errorType"] == "PyliveRelayError", body
            assert re.fullmatch(
                r"the answer to \S+ is \d+ bytes encoded, over the relay's limit of "
                r"16777216 bytes for one message",
                body["errorMessage"],
            )

    run(scenario(), timeout=20)


def test_an_invoke_the_runner_cannot_reassemble_is_answered_not_dev_not_running() -> None:
    async def scenario() -> None:
        invoker = ScriptedInvoker(echo)
        async with local_cloud() as cloud, runner(cloud, invoker) as client:
            env = {"PYLIVE_RUNNER_GRACE": "0"}  # a silent runner is "not running" at once
            cloud.host.add(stub_function("hello", cloud.api.stub_site("hello"), timeout=10.0,
                                         lambda_env=env, ack_timeout=0.5))  # fmt: skip
            key = {"pk": "runner#shop#dev"}
            runner_id = cloud.table.get_item(Key=key, ConsistentRead=True)["Item"]["connection_id"]
            # As many large messages as the runner reassembles at once, each missing chunks.
            for n in range(protocol.DEFAULT_MAX_PENDING):
                frame = protocol.encode(protocol.Result(f"r{n}", "x" * 1000))
                first = protocol.split(frame, max_frame_bytes=300)[0]
                assert await client.connections.post(runner_id, first.encode())
            event = {"big": "x" * 300_000}  # three chunks
            body = json.loads((await cloud.host.invoke("hello", json.dumps(event).encode())).body)
            assert body["errorType"] == "PyliveRelayError", body
            assert re.fullmatch(
                r"pylive dev \(stage dev\) could not take invocation \S+: too many incomplete "
                r"chunked messages at once \(limit 64\)",
                body["errorMessage"],
            )
            assert invoker.calls == []
            refusals = [line for line in client.logs if "too many" in line]  # type: ignore[attr-defined]
            assert len(refusals) == 1  # the invoke's other chunks were ignored, not refused again
            # A small invoke needs no reassembly: the runner still serves it.
            assert (await cloud.host.invoke_value("hello", {"n": 1}))["event"] == {"n": 1}

    run(scenario())


def test_unknown_function_and_malformed_messages() -> None:
    async def unknown(function_id: str, event: bytes) -> InvokeResult:
        raise KeyError(function_id)

    async def scenario() -> None:
        async with local_cloud() as cloud, runner(cloud, ScriptedInvoker(unknown)) as client:
            cloud.add_stub("ghost")
            body = json.loads((await cloud.host.invoke("ghost", b"{}")).body)
            assert body["errorType"] == "Runtime.HandlerNotFound"
            key = {"pk": "runner#shop#dev"}
            runner_id = cloud.table.get_item(Key=key, ConsistentRead=True)["Item"]
            for junk in (b"not json", b'{"action":"invoke","v":1}'):
                assert await client.connections.post(runner_id["connection_id"], junk)
            body = json.loads((await cloud.host.invoke("ghost", b"{}")).body)
            assert body["errorType"] == "Runtime.HandlerNotFound"
            assert any("protocol error" in line for line in client.logs)  # type: ignore[attr-defined]

    run(scenario())


def test_a_newer_runner_replaces_the_older_which_stops() -> None:
    async def scenario() -> None:
        async with local_cloud() as cloud:
            stop = asyncio.Event()
            logs: list[str] = []
            first = RelayClient(cloud.endpoint(), ScriptedInvoker(echo), stop=stop, log=logs.append)
            first_task = asyncio.create_task(first.run())
            await first.connected.wait()
            async with runner(cloud, ScriptedInvoker(echo)):
                assert await first_task == "replaced"
                assert any("another `pylive dev` connected" in line for line in logs)
                cloud.add_stub("hello")
                assert (await cloud.host.invoke_value("hello", 1))["event"] == 1

    run(scenario())


def test_the_runner_reconnects_after_the_gateway_restarts() -> None:
    async def scenario() -> None:
        async with local_cloud() as cloud, runner(cloud, ScriptedInvoker(echo)) as client:
            cloud.add_stub("hello")
            assert (await cloud.host.invoke_value("hello", 1))["event"] == 1
            gw = cloud.gateway
            port = gw.port
            await gw.stop()
            async with asyncio.timeout(10):  # the runner sees its connection go
                while client.connected.is_set():
                    await asyncio.sleep(0.01)
            assert client.connects == 1
            assert any("relay connection closed" in line for line in client.logs)  # type: ignore[attr-defined]
            restarted = WebSocketGateway(
                gw.routes, credentials=gw.credentials, stage=gw.stage, port=port
            )
            await restarted.start()
            try:
                while client.connects < 2:
                    await asyncio.sleep(0.01)
                await client.connected.wait()
                assert (await cloud.host.invoke_value("hello", 2))["event"] == 2
            finally:
                await restarted.stop()

    run(scenario())


@pytest.mark.parametrize("frame", [b"x" * (40 * 1024), b"\x00binary"])
def test_oversized_and_binary_frames_from_a_client_close_it(frame: bytes) -> None:
    async def scenario() -> int | None:
        async with local_cloud() as cloud, runner(cloud, ScriptedInvoker(echo)):
            url = cloud.endpoint().signed_url()
            async with connect(url, compression=None) as ws:
                await ws.send(frame if frame.startswith(b"\x00") else frame.decode())
                await ws.wait_closed()
                return ws.close_code

    assert run(scenario()) in (1009, 1003)
    _ = protocol, ROUTER


def test_expiring_credentials_are_renewed_from_the_source() -> None:
    """The developer's temporary credentials rotate while the session runs: the client asks
    its source again, says when that fails, and signs with the new ones."""
    new_key, new_secret = "ASIA" + secrets.token_hex(8).upper(), secrets.token_urlsafe(24)
    stub_key, stub_secret = "ASIA" + secrets.token_hex(8).upper(), secrets.token_urlsafe(24)
    answers: list[SigningCredentials | Exception] = [
        RuntimeError("the SSO session has expired"),
        SigningCredentials(new_key, new_secret, "token-2"),
    ]

    def source() -> SigningCredentials:
        answer = answers[0] if len(answers) == 1 else answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def scenario() -> None:
        async with local_cloud() as cloud:
            accepted = cloud.gateway.credentials
            assert accepted is not None
            accepted.update({new_key: new_secret, stub_key: stub_secret})
            # The stub signs with its own role's credentials, as in Lambda.
            stub_site = replace(cloud.site, access_key_id=stub_key, secret_access_key=stub_secret)
            cloud.host.add(stub_function("hello", stub_site, timeout=3.0, lambda_env={}))
            kw = {"credentials": source, "credentials_refresh": 0.02}
            async with runner(cloud, ScriptedInvoker(echo), **kw) as client:
                while client.endpoint.access_key_id != new_key:
                    await asyncio.sleep(0.01)
                logs = client.logs  # type: ignore[attr-defined]
                assert any("SSO session has expired" in line for line in logs)
                del accepted[cloud.site.access_key_id]  # the runner's first key has expired
                assert (await cloud.host.invoke_value("hello", 2))["event"] == 2

    run(scenario())


def _silence_pongs(cloud: Cloud) -> None:
    """The router stops answering pings: what a connection that died unseen looks like."""
    route = cloud.gateway.routes["$default"]

    async def no_pong(event: dict[str, Any], context: Any) -> Any:
        if '"ping"' in (event.get("body") or ""):
            return None
        return await route(event, context)

    cloud.gateway.routes["$default"] = no_pong


def test_pings_prove_the_connection_alive_or_it_is_replaced() -> None:
    async def scenario() -> None:
        async with local_cloud() as cloud:
            kw = {"keepalive": 0.05, "tick": 0.02, "probe_timeout": 2.0}
            async with runner(cloud, ScriptedInvoker(echo), **kw) as client:
                while client.pongs < 3:
                    await asyncio.sleep(0.01)
                assert client.connects == 1
                _silence_pongs(cloud)
                while client.connects < 2:
                    await asyncio.sleep(0.01)
                logs = client.logs  # type: ignore[attr-defined]
                assert "the relay did not answer a ping within 2 s; reconnecting" in logs
                await client.connected.wait()
                cloud.add_stub("hello")
                assert (await cloud.host.invoke_value("hello", 1))["event"] == 1

    run(scenario())


@pytest.mark.parametrize("alive", [True, False])
def test_after_sleep_the_connection_is_checked_at_once(alive: bool) -> None:
    """The wall clock jumps ahead of the monotonic one (a suspended laptop): the client pings
    right away instead of waiting for the keepalive, and reconnects if nothing answers."""
    slept = [0.0]

    def wall_clock() -> float:
        return time.time() + slept[0]

    async def scenario() -> None:
        async with local_cloud() as cloud:
            # A live router answers within the generous timeout even on a loaded machine.
            probe_timeout = 10.0 if alive else 0.5
            kw = {"keepalive": 3600, "tick": 0.02, "probe_timeout": probe_timeout}
            kw["wall_clock"] = wall_clock
            async with runner(cloud, ScriptedInvoker(echo), **kw) as client:
                if not alive:
                    _silence_pongs(cloud)
                seen = cloud.gateway.stats.messages_in
                logs = client.logs  # type: ignore[attr-defined]
                # Until the watchdog (started just after the connect) has seen a jump:
                while not any("resumed after about 600 s asleep" in line for line in logs):
                    slept[0] += 600.0
                    await asyncio.sleep(0.05)
                if alive:
                    while client.pongs == 0:
                        await asyncio.sleep(0.01)
                    assert cloud.gateway.stats.messages_in > seen  # the ping went through
                    assert client.connects == 1
                else:
                    while client.connects < 2:
                        await asyncio.sleep(0.01)

    run(scenario())


def test_a_large_answer_for_a_stub_that_is_gone_stops_after_the_first_chunks() -> None:
    """Chunks go out a few at a time; once @connections says the stub is gone (410), the
    rest are not sent, and the runner says the answer was dropped."""
    from pylive.runner.answer_posts import CHUNK_POSTS_IN_FLIGHT

    async def scenario() -> None:
        async with local_cloud() as cloud, runner(cloud, ScriptedInvoker(echo)) as client:
            answer = protocol.Result("req-big", {"data": "x" * 3_000_000})
            chunks = len(protocol.split(protocol.encode(answer), max_frame_bytes=120 * 1024))
            assert chunks > 3 * CHUNK_POSTS_IN_FLIGHT
            before = cloud.gateway.stats.connections_calls
            await client._answer("bm9ib2R5", answer)  # a connection id nobody holds
            posted = cloud.gateway.stats.connections_calls - before
            assert 1 <= posted <= CHUNK_POSTS_IN_FLIGHT
            logs = client.logs  # type: ignore[attr-defined]
            assert "the stub waiting for req-big is gone; answer dropped" in logs

    run(scenario())


def test_a_runner_signing_as_a_functions_role_is_told_why_it_is_refused() -> None:
    async def scenario() -> None:
        async with local_cloud() as cloud:
            logs: list[str] = []
            stop = asyncio.Event()
            client = RelayClient(
                cloud.api.stub_site("hello"), ScriptedInvoker(echo), stop=stop, log=logs.append
            )
            task = asyncio.create_task(client.run())
            try:
                async with asyncio.timeout(10):
                    while not any("may not connect as the runner" in line for line in logs):
                        await asyncio.sleep(0.01)
            finally:
                stop.set()
                await task
            assert not client.connected.is_set() and client.connects == 0
            assert "HTTP 403" in logs[0] and "assumed-role/hello-role/hello" in logs[0]

    run(scenario())
