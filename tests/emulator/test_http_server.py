"""The local HTTP API's own behaviour, on the real server with real workers: the 30 s
integration timeout of HTTP APIs (made short here), and what it tells the invocation's
record."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from apphelpers import poll
from serving import Server

from pylive.cdk.manifest import RouteSpec
from pylive.emulator.http_server import INTEGRATION_TIMEOUT_S
from pylive.runner.record import _UNSET, InvocationLog

HANDLERS = """
import pathlib
import time


def slow(event, context):
    params = event.get("queryStringParameters") or {}
    time.sleep(float(params.get("seconds", "0")))
    if "mark" in params:
        pathlib.Path(params["mark"]).write_text("finished")
    return {"slept": params.get("seconds", "0")}


def teapot(event, context):
    return {"statusCode": 418, "headers": {"x-n": 1}, "body": "short and stout"}
"""
ROUTES = [RouteSpec("GET /slow", "slow")]


@pytest.fixture(scope="module")
def app_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("http-app")
    (root / "api.py").write_text(HANDLERS)
    return root


@pytest.fixture(scope="module")
def short_timeout(app_root: Path) -> Iterator[Server]:
    with Server(app_root, ROUTES, functions=("slow",), integration_timeout=0.5) as running:
        yield running


def test_the_default_is_api_gateways_30_seconds() -> None:
    assert INTEGRATION_TIMEOUT_S == 30.0


def test_past_the_integration_timeout_the_client_gets_503_and_the_function_runs_on(
    short_timeout: Server, tmp_path: Path
) -> None:
    mark = tmp_path / "finished"
    started = time.monotonic()
    status, headers, body = short_timeout.request("GET", f"/slow?seconds=1.5&mark={mark}")
    took = time.monotonic() - started
    assert (status, json.loads(body)) == (503, {"message": "Service Unavailable"})
    assert headers["content-type"] == "application/json"
    assert 0.45 <= took < 1.4  # answered at the timeout, not when the function ended
    assert not mark.exists()
    poll(mark.exists, timeout=10)  # Lambda does not stop the function: it finishes
    assert ("GET", "/slow", "slow", 503) in [entry[:4] for entry in short_timeout.log]


def test_an_answer_within_the_integration_timeout_is_unchanged(short_timeout: Server) -> None:
    status, _, body = short_timeout.request("GET", "/slow?seconds=0.1")
    assert (status, json.loads(body)) == (200, {"slept": "0.1"})


def test_without_an_integration_timeout_the_client_waits(app_root: Path) -> None:
    """What `pylive dev --local --debug` does: a breakpoint may hold an invocation."""
    with Server(app_root, ROUTES, functions=("slow",), integration_timeout=None) as running:
        status, _, body = running.request("GET", "/slow?seconds=1")
        assert (status, json.loads(body)) == (200, {"slept": "1"})


def test_the_record_has_the_request_and_status_from_the_http_api(app_root: Path) -> None:
    """The console prints every invocation's request and status: the HTTP API tells the
    record both, so printing them decodes neither the event nor the result again."""
    records = InvocationLog()
    routes = [RouteSpec("GET /pots/{name}", "teapot"), RouteSpec("$default", "teapot")]
    with Server(app_root, routes, functions=("teapot",), records=records) as running:
        assert running.request("GET", "/pots/brown")[0] == 418
        assert running.request("POST", "/elsewhere")[0] == 418
    by_route, by_default = list(records)
    assert (by_route.http_request(), by_route.source(), by_route.http_status()) == (
        ("GET", "/pots/brown", "GET /pots/{name}"),
        "http GET /pots/{name}",
        418,
    )
    assert (by_default.http_request(), by_default.source(), by_default.http_status()) == (
        ("POST", "/elsewhere", "$default"),
        "http POST /elsewhere",
        418,
    )
    for record in (by_route, by_default):  # nothing was decoded to find them
        assert record._event_value is _UNSET and record._result_value is _UNSET
