"""Every `pylive init` template makes an app that runs at once: its own tests pass and
`pylive dev --local` serves it."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from apphelpers import Running, http, json_body, no_node_env, pylive_cmd

pytestmark = pytest.mark.slow

MARIADB = "mysql+pymysql://root@127.0.0.1:3306/{database}"


def _init(tmp_path: Path, template: str) -> Path:
    """`pylive init` as a user runs it: the app and its environment (.venv)."""
    app = tmp_path / f"{template}-app"
    subprocess.run(
        pylive_cmd("init", str(app), "--template", template),
        check=True,
        capture_output=True,
        env={**os.environ, **no_node_env()},
    )
    return app


def _readme_command(app: Path, starts: str) -> list[str]:
    """The command the app's README gives, starting with ``starts``."""
    for line in (app / "README.md").read_text().splitlines():
        command = line.strip().split("#", 1)[0].split()
        if command and " ".join(command).startswith(starts):
            return command
    raise AssertionError(f"no `{starts}` command in {app / 'README.md'}")


@pytest.mark.parametrize("template", ["starter", "aurora"])
def test_the_apps_own_tests_pass_with_the_readme_command(tmp_path: Path, template: str) -> None:
    app = _init(tmp_path, template)
    command = _readme_command(app, ".venv/bin/python -m pytest")
    result = subprocess.run(
        [str(app / command[0]), *command[1:], "-q", "-p", "no:cacheprovider"],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **no_node_env()},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout


def test_starter_app_answers_its_documented_requests(tmp_path: Path) -> None:
    app = _init(tmp_path, "starter")
    running = Running(pylive_cmd("dev", "--local", "--port", "0"), cwd=app, env=no_node_env())
    try:
        url = running.wait_line(r"on (http://127\.0\.0\.1:\d+)", timeout=120).group(1)
        status, _, body = http("GET", url + "/?name=Ada")
        assert status == 200, body
        assert json_body(body)["message"] == "Hello, Ada!"
        assert json_body(http("GET", url + "/")[2])["message"] == "Hello, world!"
    finally:
        assert running.stop() == 0
    invoked = subprocess.run(
        pylive_cmd("invoke", "hello", "--event", '{"queryStringParameters": {"name": "Ada"}}'),
        cwd=app,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **no_node_env()},
    )
    assert invoked.returncode == 0, invoked.stderr
    assert json.loads(json.loads(invoked.stdout)["body"])["message"] == "Hello, Ada!"


@pytest.fixture
def mariadb_database() -> Iterator[str]:
    name = f"pylive_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(MARIADB.format(database="test"))
    with admin.begin() as conn:
        conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    yield MARIADB.format(database=name)
    with admin.begin() as conn:
        conn.execute(sqlalchemy.text(f"DROP DATABASE {name}"))
    admin.dispose()


@pytest.mark.parametrize("backend", ["embedded", "mariadb"])
def test_aurora_app_runs_locally_unchanged(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    app = _init(tmp_path, "aurora")
    env = {}
    if backend == "mariadb":
        env["DATABASE_URL"] = request.getfixturevalue("mariadb_database")
    running = Running(
        pylive_cmd("dev", "--local", "--port", "0"), cwd=app, env={**env, **no_node_env()}
    )
    try:
        url = running.wait_line(r"on (http://127\.0\.0\.1:\d+)", timeout=120).group(1)
        assert json_body(http("GET", url + "/items")[2]) == {"items": []}
        for name in ("pen", "ink"):
            status, _, body = http("POST", url + "/items", json.dumps({"name": name}).encode())
            assert status == 201, body
        listed = json_body(http("GET", url + "/items")[2])["items"]
        assert [item["name"] for item in listed] == ["pen", "ink"]
        for bad in (b"not json", b'{"name": 5}', b'{"nom": "x"}'):
            status, _, body = http("POST", url + "/items", bad)
            assert status == 400 and json_body(body)["message"], body
    finally:
        assert running.stop() == 0
    if backend == "embedded":
        assert (app / ".pylive" / "local.db").exists()
