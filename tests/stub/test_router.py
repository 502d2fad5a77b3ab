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

from pylive.local.store import MemoryTable
from pylive.stub_code import stub_code_dir


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
    spec = importlib.util.spec_from_file_location("router", stub_code_dir() / "router.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if request.param == "stale-reads":
        module._dynamodb = MemoryTable(stale_reads=1.0, clock=lambda: 0.0)
    return module


def _event(route: str, connection_id: str, **extra: Any) -> dict[str, Any]:
    return {"requestContext": {"routeKey": route, "connectionId": connection_id}, **extra}


def _connect(router: ModuleType, connection_id: str, **query: str) -> dict[str, Any]:
    result: dict[str, Any] = router.handler(
        _event("$connect", connection_id, queryStringParameters=query), None
    )
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
