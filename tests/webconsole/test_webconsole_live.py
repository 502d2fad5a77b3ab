"""`pylive dev` against AWS (the AWS side played by the local WebSocket API and router, as in
test_live): an event that arrives through a deployed stub is recorded with the source its
shape shows, printed as one line, and replays on the local workers."""

from __future__ import annotations

import asyncio
import io
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from apphelpers import create_app
from test_live import LocalAccount

from pylive.cdk.synth import synthesize
from pylive.config import load_config
from pylive.console import Console
from pylive.emulator.lambda_host import stub_function
from pylive.invoke.sample_events import sample_event
from pylive.session.dev import DevSession
from pylive.session.options import DevOptions

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_app(tmp_path_factory.mktemp("live") / "shop")


def test_a_live_sqs_invocation_is_recorded_and_replays(app: Path) -> None:
    config = load_config(app)
    hello = synthesize(config).manifest.functions["hello"]
    terminal = io.StringIO()

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        account = LocalAccount(config.name, config.stage)
        await account.api.start()
        session = DevSession(
            config, DevOptions(target="aws", watch=False), Console(terminal), deployer=account
        )
        running = asyncio.create_task(session.run())
        try:
            await asyncio.wait_for(session.ready.wait(), 60)
            stub = stub_function(
                hello.path, account.api.stub_site(hello.path), timeout=10, lambda_env={}
            )
            account.api.host.add(stub)
            await account.api.host.invoke_value(hello.path, sample_event("sqs"))
            url = session.invocations.url
            base, token = url.split("/?token=")
            listed = await asyncio.to_thread(_get, base, token, "/api/invocations")
            request = urllib.request.Request(
                f"{base}/api/invocations/{listed[-1]['id']}/replay",
                method="POST",
                data=b"",
                headers={"x-pylive-token": token},
            )
            replayed = await asyncio.to_thread(_json, request)
            return listed[-1], replayed
        finally:
            session.stop.set()
            await asyncio.wait_for(running, 30)
            await account.api.stop()

    summary, replayed = asyncio.run(scenario())
    assert summary["function"] == "hello" and summary["source"] == "sqs"
    assert summary["status"] == "ok" and summary["http_status"] is None
    assert replayed["new"]["replay_of"] == summary["id"]
    assert replayed["new"]["status"] == "ok"
    assert replayed["new"]["event"]["Records"][0]["eventSource"] == "aws:sqs"
    lines = terminal.getvalue().splitlines()
    assert any(line.startswith("sqs -> hello ok ") for line in lines), lines
    assert any(line.startswith("sqs -> hello ok ") and "(replay)" in line for line in lines)
    assert any(line.startswith("Console: http://127.0.0.1:") for line in lines)


def _get(base: str, token: str, path: str) -> Any:
    return _json(urllib.request.Request(base + path, headers={"x-pylive-token": token}))


def _json(request: urllib.request.Request) -> Any:
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())
