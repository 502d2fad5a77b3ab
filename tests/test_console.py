"""The terminal: one line per invocation, by level."""

from __future__ import annotations

import asyncio
import io
import json

from pylive.console import Console
from pylive.invoke.sample_events import sample_event
from pylive.runner.record import Invocation, InvocationLog


def _records() -> list[Invocation]:
    async def run() -> list[Invocation]:
        log = InvocationLog(None)
        http = sample_event("http")
        ok = log.begin("hello", "r1", json.dumps(http).encode())
        ok.cold, ok.init_ms = True, 21.0
        log.end(ok, True, b'{"statusCode": 201, "body": "made"}', 3.14)
        failed = log.begin("orders", "r2", json.dumps(sample_event("sqs")).encode())
        log.end(failed, False, b'{"errorType": "KeyError", "errorMessage": "\'id\'"}', 2.0)
        return [ok, failed]

    return asyncio.run(run())


def _lines(level: str) -> list[str]:
    out = io.StringIO()
    console = Console(out, color=False, level=level)  # type: ignore[arg-type]
    for record in _records():
        console.invocation(record)
    console.output("hello", "printed")
    console.http_answer("GET", "/nope", "-", 404, 0.3)
    console.http_answer("GET", "/", "hello", 200, 1.0)  # the invocation line says it
    return out.getvalue().splitlines()


def test_one_line_per_invocation() -> None:
    assert _lines("normal") == [
        "GET / -> hello 201 3.1 ms cold (init 21 ms)",
        "sqs -> orders error KeyError: 'id' 2.0 ms warm",
        "hello | printed",
        "GET /nope -> - 404 0.3 ms",
    ]


def test_quiet_prints_failures_only() -> None:
    assert _lines("quiet") == ["sqs -> orders error KeyError: 'id' 2.0 ms warm"]


def test_verbose_adds_event_and_result() -> None:
    lines = _lines("verbose")
    assert lines[0] == "GET / -> hello 201 3.1 ms cold (init 21 ms)"
    assert "  event | {" in lines and '  result |   "statusCode": 201,' in lines
    assert '  error |   "errorType": "KeyError",' in lines


def test_colour_follows_the_status() -> None:
    out = io.StringIO()
    console = Console(out, color=True)
    for record in _records():
        console.invocation(record)
    first, second = out.getvalue().splitlines()
    assert "\x1b[32m201\x1b[0m" in first and "\x1b[31merror\x1b[0m" in second


def test_verbose_leaves_credentials_out() -> None:
    async def run() -> Invocation:
        log = InvocationLog(None)
        event = sample_event("http")
        event["headers"]["authorization"] = "Bearer s3cret"
        event["cookies"] = ["session=s3cret"]
        record = log.begin("hello", "r1", json.dumps(event).encode())
        log.end(record, True, b"{}", 1.0)
        return record

    record = asyncio.run(run())
    out = io.StringIO()
    Console(out, color=False, level="verbose").invocation(record)
    assert "s3cret" not in out.getvalue() and '"authorization": "[redacted]"' in out.getvalue()
    assert b"s3cret" in record.event  # the record keeps the event as it came, for replay
