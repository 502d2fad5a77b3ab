"""The web console's API against a real `pylive dev --local` (both request paths): what it
lists, its live stream, replay after a real file edit, `pylive replay`, and who it refuses."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apphelpers import Running, copy_app, create_app, http, poll, pylive_cmd

pytestmark = pytest.mark.slow

ITEMS_V2 = (
    "import json\n"
    "def handler(event, context):\n"
    "    print('version two', event['pathParameters']['id'])\n"
    "    return {'id': event['pathParameters']['id'], 'version': 2}\n"
)


@pytest.fixture(scope="module")
def template_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_app(tmp_path_factory.mktemp("app") / "demo")


@pytest.fixture(params=["relay", "direct"])
def session(
    request: pytest.FixtureRequest, template_app: Path, tmp_path: Path
) -> Iterator[tuple[Running, str, str, Path]]:
    app = copy_app(template_app, tmp_path / "demo")
    extra = ["--relay"] if request.param == "relay" else []
    running = Running(pylive_cmd("dev", "--local", "--port", "0", *extra), cwd=app)
    url = running.wait_line(r"on (http://127\.0\.0\.1:\d+)", timeout=120).group(1)
    console = running.wait_line(r"^Console: (http://127\.0\.0\.1:\d+/\?token=\S+)$").group(1)
    yield running, url, console, app
    running.stop()


def _api(console: str, path: str, method: str = "GET", **headers: str) -> tuple[int, Any]:
    base, token = console.split("/?token=")
    status, _, body = http(
        method,
        base + path,
        b"" if method == "POST" else None,
        headers={"x-pylive-token": token, **headers},
    )
    return status, json.loads(body)


def test_invocations_are_listed_replayed_and_protected(
    session: tuple[Running, str, str, Path],
) -> None:
    running, url, console, app = session
    base, token = console.split("/?token=")
    stream = _open_stream(base, token)
    status, _, _ = http("POST", url + "/items/42", body=b'{"name": "pen"}')
    assert status == 200
    # One terminal line for the invocation, with its status, time and start.
    running.wait_line(r"^POST /items/42 -> items 200 [\d.]+ ms (cold \(init \d+ ms\)|warm)$")

    # The live stream announces it (no polling of the list).
    announced = _next_event(stream, lambda s: s["function"] == "items" and s["status"] == "ok")
    assert announced["source"] == "http POST /items/{id}" and announced["http_status"] == 200

    _, listed = _api(console, "/api/invocations?function=items")
    assert [s["id"] for s in listed] == [announced["id"]]
    _, detail = _api(console, f"/api/invocations/{announced['id']}")
    assert detail["event"]["pathParameters"] == {"id": "42"}
    assert detail["result"] == {"id": "42", "body": {"name": "pen"}}
    assert detail["output"] == ["creating 42"]
    assert detail["duration_ms"] > 0 and detail["memory_mb"] > 0

    # Filters: by status and by text found only in the event.
    assert _api(console, "/api/invocations?status=error")[1] == []
    assert len(_api(console, "/api/invocations?q=pen")[1]) == 1

    # A real edit, a hot reload, then replay: the same event on the new code.
    (app / "functions/items.py").write_text(ITEMS_V2)
    running.wait_line(r"items: reloaded in \d+ ms")
    status, answer = _api(console, f"/api/invocations/{announced['id']}/replay", "POST")
    assert status == 200, answer
    assert answer["old"]["result"] == {"id": "42", "body": {"name": "pen"}}
    assert answer["new"]["result"] == {"id": "42", "version": 2}
    assert answer["new"]["replay_of"] == announced["id"]
    assert answer["new"]["event"] == answer["old"]["event"]
    poll(
        lambda: (
            "version two 42"
            in _api(console, f"/api/invocations/{answer['new']['id']}")[1]["output"]
        ),
        timeout=10,
    )

    # `pylive replay` goes through the same session and prints the result's diff.
    result = subprocess.run(
        pylive_cmd("replay", announced["id"]), cwd=app, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "through the running session" in result.stdout
    assert "--- before" in result.stdout and '+  "version": 2' in result.stdout
    last = subprocess.run(
        pylive_cmd("replay", "--function", "items"),
        cwd=app,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert last.returncode == 0, last.stderr

    # Refused: no token, a wrong token, another origin, a non-loopback Host header.
    assert http("GET", base + "/api/invocations")[0] == 403
    assert http("GET", base + "/api/invocations", headers={"x-pylive-token": "x" * 32})[0] == 403
    cross = _api(console, "/api/invocations/last/replay", "POST", origin="http://example.com")
    assert cross[0] == 403
    site = _api(console, "/api/invocations/last/replay", "POST", **{"sec-fetch-site": "cross-site"})
    assert site[0] == 403
    rebinding = _api(console, "/api/invocations", host="attacker.example")
    assert rebinding[0] == 403
    # Same origin is fine.
    assert _api(console, "/api/invocations", origin=base)[0] == 200


def test_history_survives_a_restart(template_app: Path, tmp_path: Path) -> None:
    app = copy_app(template_app, tmp_path / "demo")
    first = Running(pylive_cmd("dev", "--local", "--port", "0", "--direct"), cwd=app)
    url = first.wait_line(r"on (http://127\.0\.0\.1:\d+)", timeout=120).group(1)
    assert http("GET", url + "/?name=Kept")[0] == 200
    first.wait_line(r"^GET /\?name=Kept -> hello 200|^GET / -> hello 200")
    first.stop()
    path = app / ".pylive" / "invocations.jsonl"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    second = Running(pylive_cmd("dev", "--local", "--port", "0", "--direct", "--quiet"), cwd=app)
    try:
        console = second.wait_line(r"^Console: (\S+)$", timeout=120).group(1)
        _, listed = _api(console, "/api/invocations")
        assert [s["function"] for s in listed] == ["hello"]
    finally:
        second.stop()
    # Without a session, `pylive replay` runs the recorded event in a one-off worker.
    result = subprocess.run(
        pylive_cmd("replay", "last"), cwd=app, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "through a one-off worker" in result.stdout
    assert re.search(r"Hello, Kept!", result.stdout)


def _open_stream(base: str, token: str) -> Any:
    response = urllib.request.urlopen(f"{base}/api/stream?token={token}", timeout=30)
    assert response.headers["content-type"] == "text/event-stream"
    return response


def _next_event(stream: Any, wanted: Any) -> dict[str, Any]:
    event = None
    for raw in stream:  # bounded by the response's socket timeout
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event == "invocation":
            summary = json.loads(line[6:])
            if wanted(summary):
                return dict(summary)
    raise AssertionError("the stream ended")
