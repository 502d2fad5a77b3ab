"""The console's commands as a user runs them: sample events, `pylive replay`, levels."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from apphelpers import assert_one_line_error, create_app, pylive_cmd


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
