"""The local Lambda host: containers per concurrent invocation, Lambda's context and errors."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

from pylive.emulator.lambda_host import LambdaFunction, LambdaHost
from pylive.emulator.store import MemoryTable

MODULE = """
import os, threading, time
calls = 0
def handler(event, context):
    global calls
    calls += 1
    if event.get("raise"):
        raise KeyError("missing")
    if event.get("gate"):
        GATE.wait(5)
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("size"):
        return "y" * (event["size"] - 2)  # two quotes more as JSON
    return {
        "calls": calls, "thread": threading.get_ident(), "env": environ.get("GREETING"),
        "request_id": context.aws_request_id, "arn": context.invoked_function_arn,
        "name": context.function_name, "memory": context.memory_limit_in_mb,
        "remaining": context.get_remaining_time_in_millis(),
    }
"""


GATE = threading.Event()


@pytest.fixture
def function(tmp_path: Path) -> LambdaFunction:
    path = tmp_path / "fn.py"
    path.write_text(MODULE)
    gate = GATE
    gate.clear()

    def setup(module: object) -> None:
        module.GATE = gate  # type: ignore[attr-defined]

    fn = LambdaFunction("fn", path, timeout=1.0, memory=256, environment={"GREETING": "hi"},
                        setup=setup)  # fmt: skip
    return fn


def test_context_environment_and_warm_reuse(function: LambdaFunction) -> None:
    async def scenario() -> None:
        host = LambdaHost(region="eu-west-1", account="111122223333")
        host.add(function)
        first = await host.invoke_value("fn", {})
        second = await host.invoke_value("fn", b"{}")
        assert (first["calls"], second["calls"]) == (1, 2)  # one warm container
        assert first["thread"] == second["thread"]
        assert first["env"] == "hi" and first["name"] == "fn" and first["memory"] == "256"
        assert first["arn"] == "arn:aws:lambda:eu-west-1:111122223333:function:fn"
        assert first["request_id"] != second["request_id"]
        assert 0 < first["remaining"] <= 1000
        host.close()

    asyncio.run(scenario())


def test_one_container_per_concurrent_invocation_each_with_its_own_module(
    function: LambdaFunction,
) -> None:
    async def scenario() -> None:
        host = LambdaHost()
        host.add(function)
        waiting = [asyncio.ensure_future(host.invoke_value("fn", {"gate": True})) for _ in range(3)]
        while host.containers("fn") < 3:
            await asyncio.sleep(0.001)
        GATE.set()
        results = await asyncio.gather(*waiting)
        assert [r["calls"] for r in results] == [1, 1, 1]  # module state per container
        assert len({r["thread"] for r in results}) == 3
        host.close()

    asyncio.run(scenario())


def test_errors_and_timeouts_look_like_lambda(function: LambdaFunction) -> None:
    async def scenario() -> None:
        host = LambdaHost()
        host.add(function)
        result = await host.invoke("fn", {"raise": True})
        body = json.loads(result.body)
        assert not result.ok
        assert (body["errorType"], body["errorMessage"]) == ("KeyError", "'missing'")
        assert body["stackTrace"]
        result = await host.invoke("fn", {"sleep": 1.5})
        assert not result.ok
        assert "Task timed out after 1.00 seconds" in json.loads(result.body)["errorMessage"]
        assert host.containers("fn") == 0  # the timed-out container is retired
        host.close()

    asyncio.run(scenario())


def test_a_response_over_lambdas_limit_fails_and_retires_the_container(
    function: LambdaFunction,
) -> None:
    async def scenario() -> None:
        host = LambdaHost()
        host.add(function)
        at_limit = await host.invoke("fn", {"size": 6291556})
        assert at_limit.ok and len(at_limit.body) == 6291556
        over = await host.invoke("fn", {"size": 6291557})
        assert not over.ok and json.loads(over.body) == {
            "errorMessage": "Response payload size exceeded maximum allowed payload size "
            "(6291556 bytes).",
            "errorType": "Function.ResponseSizeTooLarge",
        }
        assert host.containers("fn") == 0  # Lambda's runtime exits when its answer is refused
        assert (await host.invoke_value("fn", {}))["calls"] == 1  # a new container
        host.close()

    asyncio.run(scenario())


def test_memory_table_has_the_shapes_of_boto3() -> None:
    table = MemoryTable()
    assert table.get_item(Key={"pk": "a"}) == {}
    table.put_item(Item={"pk": "a", "v": 1})
    item = table.get_item(Key={"pk": "a"})["Item"]
    item["v"] = 2  # a copy
    assert table.get_item(Key={"pk": "a"}) == {"Item": {"pk": "a", "v": 1}}
    table.delete_item(Key={"pk": "a"})
    assert table.get_item(Key={"pk": "a"}) == {} and len(table) == 0


def test_the_context_and_errors_are_the_workers_own(tmp_path: Path) -> None:
    """The host builds its context and error payloads from pylive.sandbox, as the workers do:
    the runtime's class (with its identity object), and the runtime's JSON for an error."""
    path = tmp_path / "ctx.py"
    path.write_text(
        "def handler(event, context):\n"
        "    if event.get('raise'):\n"
        "        raise ValueError('no')\n"
        "    return {'cls': type(context).__module__ + '.' + type(context).__qualname__,\n"
        "            'identity': repr(context.identity), 'log_group': context.log_group_name}\n"
    )

    async def scenario() -> tuple[object, bytes]:
        host = LambdaHost()
        host.add(LambdaFunction("ctx", path))
        value = await host.invoke_value("ctx", {})
        failed = await host.invoke("ctx", {"raise": True})
        host.close()
        return value, failed.body

    value, error = asyncio.run(scenario())
    assert value == {
        "cls": "pylive.sandbox.context.LambdaContext",
        "identity": "CognitoIdentity([cognito_identity_id=None,cognito_identity_pool_id=None])",
        "log_group": "/aws/lambda/ctx",
    }
    payload = json.loads(error)
    assert payload["errorType"] == "ValueError" and payload["errorMessage"] == "no"
    assert b'"errorType": "ValueError"' in error  # the runtime's separators, not orjson's
