"""The invocation record: what the pool remembers of each invocation, in memory and on disk."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

from asynchelpers import run
from conftest import Recorder, make_pool, spec, write

from pylive.invoke.sample_events import SOURCES, sample_event
from pylive.runner import record as record_module
from pylive.runner.event_source import infer_source
from pylive.runner.record import InvocationLog

APP = {
    "functions/__init__.py": "",
    "functions/api.py": (
        "def handler(event, context):\n"
        "    print('got', event.get('n'))\n"
        "    if event.get('fail'):\n"
        "        raise ValueError('bad n')\n"
        "    return {'n': event.get('n')}\n"
    ),
}


def test_every_invocation_is_recorded_with_its_output_and_outcome(
    tmp_path: Path, recorder: Recorder
) -> None:
    write(tmp_path, APP)
    log = InvocationLog(tmp_path / ".pylive")
    seen: list[tuple[str, str]] = []
    log.subscribe(lambda rec, kind: seen.append((rec.id, kind)))

    async def go() -> None:
        pool = make_pool(tmp_path, recorder, record=log)
        await pool.start([spec(tmp_path, "functions/api.handler", id="api")])
        try:
            first = await pool.invoke("api", b'{"n": 1}', request_id="r1")
            second = await pool.invoke("api", b'{"n": 2, "fail": true}', request_id="r2")
            assert first.ok and not second.ok
            await recorder.wait_for(lambda: "got 2" in log.get("r2").output)  # type: ignore[union-attr]
        finally:
            await pool.close()
        log.close()

    run(go())
    first, second = log.get("r1"), log.get("r2")
    assert first is not None and second is not None
    assert first.function == "api" and first.status == "ok"
    assert first.event_value() == {"n": 1} and first.result_value() == {"n": 1}
    assert first.output == ["got 1"] and second.output[0] == "got 2"
    assert first.cold and first.init_ms is not None and not second.cold
    assert first.duration_ms is not None and first.duration_ms > 0
    assert first.memory_mb is not None and first.memory_mb > 1
    error = second.error()
    assert error is not None and error["errorType"] == "ValueError"
    assert error["errorMessage"] == "bad n" and error["stackTrace"]
    assert ("r1", "start") in seen and ("r1", "end") in seen and ("r2", "output") in seen

    # A restart keeps the history: the file holds both, readable by the developer only.
    path = tmp_path / ".pylive" / "invocations.jsonl"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = InvocationLog(tmp_path / ".pylive")
    assert [r.id for r in again] == ["r1", "r2"]
    reloaded = again.get("r2")
    assert reloaded is not None and reloaded.detail() == second.detail()


def test_the_ring_and_the_file_are_bounded(tmp_path: Path, monkeypatch: object) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setattr(record_module, "MAX_FILE_BYTES", 100_000)
    big = json.dumps({"data": "x" * 100_000}).encode()

    async def go() -> InvocationLog:
        log = InvocationLog(tmp_path, max_records=10)
        for n in range(50):
            event = big if n == 0 else json.dumps({"n": n, "pad": "p" * 3000}).encode()
            rec = log.begin("f", f"id{n}", event)
            log.end(rec, True, b"null", 1.0)
            log.flush()
        return log

    log = asyncio.run(go())
    assert len(log) == 10 and next(r.id for r in log) == "id40"
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["invocations.jsonl", "invocations.jsonl.1"]
    assert all(p.stat().st_size <= 100_000 for p in tmp_path.iterdir())
    assert len(InvocationLog(tmp_path, max_records=10)) == 10


def test_a_large_event_is_cut_in_the_record() -> None:
    async def go() -> bytes:
        log = InvocationLog(None)
        rec = log.begin("f", "a", b"x" * (record_module.MAX_PAYLOAD_BYTES + 10))
        return rec.event

    event = asyncio.run(go())
    assert len(event) < record_module.MAX_PAYLOAD_BYTES + 100
    assert event.endswith(b"bytes; the first 32768 kept]")


def test_the_source_is_inferred_from_the_event_shape() -> None:
    for source in SOURCES:
        expected = "http GET /" if source == "http" else source
        assert infer_source(sample_event(source)) == expected, source
    assert infer_source({"anything": 1}) == "direct"
    assert infer_source([1, 2]) == "direct"


def test_http_requests_read_from_the_event_head_match_the_decoded_event() -> None:
    import orjson

    from pylive.emulator.http_events import build_event
    from pylive.runner.event_source import http_head
    from pylive.runner.record import Invocation

    cases = [
        ("GET", "/", "GET /"),
        ("POST", "/items/42", "POST /items/{id}"),
        ("DELETE", "/any/x", "ANY /any/{proxy+}"),
        ("GET", "/nothing", "$default"),
        ("GET", '/q"uote', "GET /{x}"),
    ]
    for method, path, key in cases:
        event = build_event(
            method=method, raw_path=path, raw_query=b"", headers=[], body=b"", route_key=key,
            path_parameters={}, source_ip="127.0.0.1", api_id="local", domain_name="x",
            request_id="r", time_epoch_ms=0,
        )  # fmt: skip
        payload = orjson.dumps(event)
        fast = http_head(payload)
        decoded = Invocation("r", "f", payload, 0.0)
        decoded._http = _decoded_http(decoded)
        assert (method, path) == (decoded._http[0], decoded._http[1])
        if fast is not None:
            assert fast == decoded._http, (fast, decoded._http)
        assert fast is None or key not in ("$default", "ANY /any/{proxy+}", "GET /{x}")
        full = Invocation("r", "f", payload, 0.0)
        expected = f"http {key}" if key != "$default" else f"http {method} {path}"
        assert full.source() == expected


def _decoded_http(record: object) -> tuple[str, str, str]:
    event = record.event_value()  # type: ignore[attr-defined]
    http = event["requestContext"]["http"]
    return http["method"], event["rawPath"], event["routeKey"]


def test_a_request_id_seen_again_is_the_newest_record() -> None:
    async def go() -> list[str]:
        log = InvocationLog(None)
        for request_id in ("a", "b", "a"):
            log.end(log.begin("f", request_id, b"{}"), True, b"null", 1.0)
        return [r.id for r in log]

    assert asyncio.run(go()) == ["b", "a"]


def test_of_a_burst_only_what_a_restart_keeps_is_written(tmp_path: Path) -> None:
    async def go() -> None:
        log = InvocationLog(tmp_path, max_records=10)
        for n in range(35):
            log.end(log.begin("f", f"id{n}", b"{}"), True, b"null", 1.0)
        log.close()

    asyncio.run(go())
    lines = (tmp_path / "invocations.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [f"id{n}" for n in range(25, 35)]
