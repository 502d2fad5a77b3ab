"""Every `pylive init` template makes an app that runs at once: its own tests pass and
`pylive dev --local` serves it."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from apphelpers import Running, http, json_body, pylive_cmd

pytestmark = pytest.mark.slow

MARIADB = "mysql+pymysql://root@127.0.0.1:3306/{database}"


def _init(tmp_path: Path, template: str) -> Path:
    app = tmp_path / f"{template}-app"
    subprocess.run(pylive_cmd("init", str(app), "--template", template), check=True)
    return app


@pytest.mark.parametrize("template", ["starter", "aurora"])
def test_the_apps_own_tests_pass(tmp_path: Path, template: str) -> None:
    app = _init(tmp_path, template)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


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
    running = Running(pylive_cmd("dev", "--local", "--port", "0"), cwd=app, env=env)
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
