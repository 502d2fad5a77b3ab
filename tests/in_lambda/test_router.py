"""The debug stack's router against DynamoDB (moto's server mode) and against the local
cloud's table serving eventually consistent reads as stale as DynamoDB may."""

from __future__ import annotations

import importlib.util
import json
import uuid
from types import ModuleType
from typing import Any

import boto3
import pytest

from pylive.cdk.shipped import handlers_dir
from pylive.emulator.store import MemoryTable
from pylive.in_lambda import protocol


@pytest.fixture(params=["moto", "stale-reads"])
def router(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The router module on DynamoDB (moto), or on a table whose eventually consistent
    reads never see a write (the clock stands still), so only consistent reads see any."""
    if request.param == "moto":
        request.getfixturevalue("moto_env")
        table = f"connections-{uuid.uuid4().hex[:8]}"
        boto3.client("dynamodb").create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        monkeypatch.setenv("PYLIVE_TABLE", table)
    # The debug stack names who may be the runner: the identity that deployed it.
    monkeypatch.setenv("PYLIVE_RUNNER_PRINCIPALS", DEVELOPER)
    spec = importlib.util.spec_from_file_location("router", handlers_dir() / "router.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if request.param == "stale-reads":
        module._dynamodb = MemoryTable(stale_reads=1.0, clock=lambda: 0.0)
    return module


DEVELOPER = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev_0a1b/ada@example.com"
FUNCTION_ROLE = "arn:aws:sts::123456789012:assumed-role/shop-ada-ordersServiceRole1A2B/orders"


def _event(route: str, connection_id: str, **extra: Any) -> dict[str, Any]:
    return {"requestContext": {"routeKey": route, "connectionId": connection_id}, **extra}


def _connect(
    router: ModuleType, connection_id: str, *, caller: str | None = DEVELOPER, **query: str
) -> dict[str, Any]:
    """$connect as API Gateway sends it for an IAM-authorized route: who signed is in
    ``requestContext.identity``."""
    event = _event("$connect", connection_id, queryStringParameters=query)
    if caller is not None:
        account = caller.split(":")[4]
        event["requestContext"]["identity"] = {
            "userArn": caller, "accountId": account, "caller": "AROAEXAMPLE:x",
            "user": "AROAEXAMPLE:x", "accessKey": "ASIAEXAMPLE", "sourceIp": "192.0.2.1",
        }  # fmt: skip
    result: dict[str, Any] = router.handler(event, None)
    return result


def _whoami(router: ModuleType, connection_id: str) -> dict[str, Any]:
    reply = router.handler(_event("$default", connection_id, body='{"action":"whoami"}'), None)
    assert reply["statusCode"] == 200
    body: dict[str, Any] = json.loads(reply["body"])
    return body


def test_a_stub_learns_its_runner(router: ModuleType) -> None:
    assert _connect(router, "R1=", role="runner", app="shop", stage="ada")["statusCode"] == 200
    assert _connect(router, "S1=", role="stub", app="shop", stage="ada")["statusCode"] == 200
    assert _whoami(router, "S1=") == {"type": "whoami", "connection_id": "S1=", "runner": "R1="}


def test_a_newer_runner_replaces_the_older_one(router: ModuleType) -> None:
    _connect(router, "R1=", role="runner", app="shop", stage="ada")
    _connect(router, "R2=", role="runner", app="shop", stage="ada")
    _connect(router, "S1=", role="stub", app="shop", stage="ada")
    assert _whoami(router, "S1=")["runner"] == "R2="
    # The old runner leaving does not unregister the new one.
    router.handler(_event("$disconnect", "R1="), None)
    assert _whoami(router, "S1=")["runner"] == "R2="


def test_no_runner_is_a_clear_answer(router: ModuleType) -> None:
    _connect(router, "R1=", role="runner", app="shop", stage="bob")
    router.handler(_event("$disconnect", "R1="), None)
    _connect(router, "S1=", role="stub", app="shop", stage="bob")
    reply = _whoami(router, "S1=")
    assert reply["runner"] is None
    assert "run `pylive dev --stage bob`" in reply["error"]


def test_connect_without_identity_is_rejected(router: ModuleType) -> None:
    assert _connect(router, "X=", role="spy", app="shop", stage="ada")["statusCode"] == 400
    assert _connect(router, "X=", role="stub")["statusCode"] == 400


def test_a_function_role_may_not_become_the_runner(router: ModuleType) -> None:
    """Every stub's role may $connect; none of them may take the runner's invocations."""
    assert _connect(router, "R1=", role="runner", app="shop", stage="ada")["statusCode"] == 200
    refused = _connect(router, "T1=", caller=FUNCTION_ROLE, role="runner", app="shop", stage="ada")
    assert refused["statusCode"] == 403
    assert refused["body"].startswith(f"{FUNCTION_ROLE} may not connect as the runner")
    assert DEVELOPER in refused["body"]
    # ... but may connect as a stub, and its runner is still the developer's.
    assert (
        _connect(router, "S1=", caller=FUNCTION_ROLE, role="stub", app="shop", stage="ada")[
            "statusCode"
        ]
        == 200
    )
    assert _whoami(router, "S1=")["runner"] == "R1="


def test_any_session_of_the_developers_role_may_be_the_runner(
    router: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    other_session = DEVELOPER.rsplit("/", 1)[0] + "/botocore-session-1700000000"
    assert (
        _connect(router, "R1=", caller=other_session, role="runner", app="shop", stage="ada")[
            "statusCode"
        ]
        == 200
    )
    role = "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Dev_0a1b"
    monkeypatch.setitem(
        router.environ, "PYLIVE_RUNNER_PRINCIPALS", f"arn:aws:iam::123456789012:user/bob,{role}"
    )
    assert _connect(router, "R3=", role="runner", app="shop", stage="ada")["statusCode"] == 200
    other_role = DEVELOPER.replace("AWSReservedSSO_Dev_0a1b", "AWSReservedSSO_Dev_0a1bX")
    other_account = DEVELOPER.replace("123456789012", "210987654321")
    for caller in (other_role, other_account):
        result = _connect(router, "R2=", caller=caller, role="runner", app="shop", stage="ada")
        assert result["statusCode"] == 403, caller


def test_a_runner_without_a_caller_identity_is_refused(
    router: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _connect(router, "R1=", caller=None, role="runner", app="shop", stage="ada")
    assert result["statusCode"] == 403
    assert "no caller identity" in result["body"]
    monkeypatch.setitem(router.environ, "PYLIVE_RUNNER_PRINCIPALS", "")
    result = _connect(router, "R1=", role="runner", app="shop", stage="ada")
    assert result["statusCode"] == 403
    assert "names nobody who may run `pylive dev`" in result["body"]


class _Connections:
    """The @connections API as the router's boto3 client sees it: records each POST."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, bytes]] = []

    def post_to_connection(self, ConnectionId: str, Data: bytes) -> None:
        self.posted.append((ConnectionId, Data))


def test_every_message_the_router_sends_is_a_protocol_message(
    router: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the router answers and posts, read as the stub and the runner read it."""
    url = "https://api.example/ada"
    monkeypatch.setitem(router.environ, "PYLIVE_CALLBACK_URL", url)
    connections = router._management[url] = _Connections()
    read = protocol.Reassembler().feed  # how the runner and the stub read every frame

    def answer(connection_id: str, body: str) -> protocol.Message | None:
        reply = router.handler(_event("$default", connection_id, body=body), None)
        assert reply["statusCode"] == 200
        return read(reply["body"])

    _connect(router, "R1=", role="runner", app="shop", stage="ada")
    _connect(router, "S1=", role="stub", app="shop", stage="ada")
    asked = protocol.encode(protocol.WhoAmIRequest())
    assert answer("S1=", asked) == protocol.WhoAmI("S1=", "R1=")
    assert answer("S1=", '{"action":"whoami"}') == protocol.WhoAmI("S1=", "R1=")  # no version
    assert answer("R1=", protocol.encode(protocol.Ping("p1"))) == protocol.Pong("p1")

    _connect(router, "R2=", role="runner", app="shop", stage="ada")
    [(older, data)] = connections.posted
    assert older == "R1="
    replaced = read(data)
    assert isinstance(replaced, protocol.Replaced)
    assert (replaced.app, replaced.stage) == ("shop", "ada")
    assert "another `pylive dev` connected" in replaced.reason

    router.handler(_event("$disconnect", "R2="), None)
    no_runner = answer("S1=", asked)
    assert isinstance(no_runner, protocol.WhoAmI) and no_runner.runner is None
    assert no_runner.error and "run `pylive dev --stage ada`" in no_runner.error
