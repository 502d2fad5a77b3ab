"""The console's commands as a user runs them: sample events, `pylive replay`, levels."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from apphelpers import assert_one_line_error, create_app, pylive_cmd

from pylive.runner.record import InvocationLog
from pylive.webconsole.server import write_state


def pylive(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        pylive_cmd(*args), cwd=cwd, capture_output=True, text=True, timeout=300, env=os.environ
    )


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_app(tmp_path_factory.mktemp("cli") / "demo")


def test_a_sample_event_is_saved_to_edit(app: Path, tmp_path: Path) -> None:
    target = tmp_path / "sqs.json"
    result = pylive("invoke", "hello", "--event", "sqs", "--save", str(target), cwd=app)
    assert result.returncode == 0, result.stderr
    assert f"--event-file {target}" in result.stdout
    event = json.loads(target.read_text())
    assert event["Records"][0]["eventSource"] == "aws:sqs"
    assert event["Records"][0]["awsRegion"] == "us-east-1"  # the app's region


@pytest.mark.slow
def test_a_sample_event_invokes_the_function(app: Path) -> None:
    result = pylive("invoke", "hello", "--event", "schedule", cwd=app)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["statusCode"] == 200


def test_replay_with_nothing_recorded_says_so(app: Path, tmp_path: Path) -> None:
    assert_one_line_error(pylive("replay", cwd=app), 2, "no invocation recorded yet")
    assert_one_line_error(pylive("replay", "abc", "--function", "hello", cwd=app), 2, "not both")


def test_quiet_and_verbose_exclude_each_other(app: Path) -> None:
    result = pylive("dev", "--local", "--quiet", "--verbose", cwd=app)
    assert_one_line_error(result, 2, "either --quiet or --verbose")


@pytest.mark.slow
def test_replay_falls_back_to_a_one_off_worker_when_the_session_is_gone(
    app: Path, tmp_path: Path
) -> None:
    state = tmp_path / "demo" / ".pylive"
    work = tmp_path / "demo"
    shutil.copytree(app, work, ignore=shutil.ignore_patterns(".pylive"))
    shutil.copytree(app / ".pylive", state)

    async def record() -> None:
        log = InvocationLog(state)
        event = b'{"queryStringParameters": {"name": "Again"}}'
        log.end(log.begin("hello", "recorded-1", event), True, b'{"statusCode": 200}', 1.0)
        log.close()

    asyncio.run(record())
    with socket.socket() as probe:  # a port nothing listens on any more
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    write_state(state, f"http://127.0.0.1:{port}", "stale")  # this (live) pid, a dead port
    result = pylive("replay", "recorded-1", cwd=work)
    assert result.returncode == 0, result.stderr
    assert "through a one-off worker" in result.stdout and "Hello, Again!" in result.stdout
