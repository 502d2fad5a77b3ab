"""The first ten minutes on a machine with Python only: `pylive init`, `pylive dev --local`
and `pylive synth` with no Node.js on PATH, driven as a user drives them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from apphelpers import Running, http, json_body, no_node_env, pylive_cmd

pytestmark = pytest.mark.slow


def run(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        pylive_cmd(*args),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **no_node_env()},
    )


def test_init_dev_and_synth_with_no_node_on_path(tmp_path: Path) -> None:
    created = run("init", "my-app", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    app = tmp_path / "my-app"
    running = Running(pylive_cmd("dev", "--local", "--port", "0"), cwd=app, env=no_node_env())
    try:
        url = running.wait_line(r"on (http://127\.0\.0\.1:\d+)", timeout=180).group(1)
        status, _, body = http("GET", url + "/?name=Ada")
        assert status == 200, body
        assert json_body(body)["message"] == "Hello, Ada!"
    finally:
        assert running.stop() == 0
    synth = run("synth", "--out", str(tmp_path / "cdk-out"), cwd=app)
    assert synth.returncode == 0, synth.stderr
    templates = list((tmp_path / "cdk-out").rglob("*.template.json"))
    assert templates and json.loads(templates[0].read_text())["Resources"]
