"""The console's ASGI app in-process: who it answers, and what its list filters keep."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pylive.invoke.sample_events import sample_event
from pylive.runner.invocation import InvokeResult
from pylive.runner.record import InvocationLog
from pylive.webconsole.server import ConsoleApp, SessionInfo

TOKEN = "t0ken-for-tests"
PORT = 4567


async def _never(function: str, event: bytes, request_id: str) -> InvokeResult:
    raise AssertionError("no replay expected")


def _app(log: InvocationLog | None = None) -> ConsoleApp:
    app = ConsoleApp(log or InvocationLog(None), _never, SessionInfo("shop", "test"), TOKEN)
    app.port = PORT
    return app


def _call(
    app: ConsoleApp, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query.encode(),
        "headers": [
            (k.lower().encode(), v.encode())
            for k, v in {"host": f"127.0.0.1:{PORT}", **(headers or {})}.items()
        ],
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    head = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    return sent[0]["status"], head, b"".join(m.get("body", b"") for m in sent[1:])


def test_the_page_is_served_without_data_and_with_a_strict_policy() -> None:
    status, headers, body = _call(_app(), "GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b"pylive console" in body and b"http://" not in body.replace(b"http://www.w3", b"")
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"


def test_api_calls_need_the_token_the_origin_and_a_loopback_host() -> None:
    app = _app()
    good = {"x-pylive-token": TOKEN}
    assert _call(app, "GET", "/api/session", good)[0] == 200
    assert _call(app, "GET", f"/api/session?token={TOKEN}")[0] == 200
    assert _call(app, "GET", "/api/session")[0] == 403
    assert _call(app, "GET", "/api/session", {"x-pylive-token": TOKEN + "x"})[0] == 403
    evil = {**good, "origin": "http://evil.example"}
    assert _call(app, "POST", "/api/invocations/last/replay", evil)[0] == 403
    other_port = {**good, "origin": f"http://127.0.0.1:{PORT + 1}"}
    assert _call(app, "GET", "/api/session", other_port)[0] == 403
    assert _call(app, "GET", "/api/session", {**good, "sec-fetch-site": "cross-site"})[0] == 403
    assert _call(app, "GET", "/api/session", {**good, "sec-fetch-site": "same-site"})[0] == 403
    assert _call(app, "GET", "/api/session", {**good, "host": "evil.example"})[0] == 403
    assert _call(app, "GET", "/", {"host": f"rebound.example:{PORT}"})[0] == 403
    same = {**good, "origin": f"http://localhost:{PORT}", "sec-fetch-site": "same-origin"}
    assert _call(app, "GET", "/api/session", same)[0] == 200
    assert _call(app, "GET", "/api/invocations/x/replay", good)[0] == 405


def test_the_list_filters_by_function_status_and_text() -> None:
    async def fill() -> InvocationLog:
        log = InvocationLog(None)
        for n, (function, ok) in enumerate([("a", True), ("b", False), ("a", False)]):
            event = json.dumps({**sample_event("sqs"), "n": f"needle{n}"}).encode()
            record = log.begin(function, f"id{n}", event)
            record.add_output(f"line {n}")
            log.end(record, ok, b'{"errorMessage": "bad", "errorType": "E"}' if not ok else b"1", 1)
        return log

    app = _app(asyncio.run(fill()))
    good = {"x-pylive-token": TOKEN}

    def ids(query: str) -> list[str]:
        status, _, body = _call(app, "GET", f"/api/invocations?{query}", good)
        assert status == 200
        return [s["id"] for s in json.loads(body)]

    assert ids("") == ["id0", "id1", "id2"]
    assert ids("function=a") == ["id0", "id2"]
    assert ids("status=error") == ["id1", "id2"]
    assert ids("function=a&status=error") == ["id2"]
    assert ids("q=needle1") == ["id1"]
    assert ids("q=LINE%202") == ["id2"]
    assert ids("limit=1") == ["id2"]
    status, _, body = _call(app, "GET", "/api/invocations/id1", good)
    detail = json.loads(body)
    assert status == 200 and detail["source"] == "sqs"
    assert detail["error_detail"] == {"errorType": "E", "errorMessage": "bad", "stackTrace": []}
    assert _call(app, "GET", "/api/invocations/nope", good)[0] == 404
    assert _call(app, "GET", "/api/invocations?limit=x", good)[0] == 400
