"""Apps bring their environment: `pylive init` makes the app's .venv with its dependencies and
`pylive.db`, and `pylive dev` keeps it in sync with the app's dependency files."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from apphelpers import Running, http, json_body, no_node_env, pylive_cmd

pytestmark = pytest.mark.slow

CHECK_ENV = (
    "import boto3, pymysql, pytest, sqlalchemy\n"
    "from pylive import db\n"
    "import pylive, os\n"
    "print(sorted(n for n in os.listdir(os.path.dirname(pylive.__file__)) if n.endswith('.py')))\n"
)


def init(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Path:
    done = subprocess.run(
        pylive_cmd("init", *args),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **no_node_env(), **(env or {})},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "creating .venv" in done.stdout and ".venv ready in" in done.stdout  # progress
    return tmp_path / args[0]


def test_init_creates_the_apps_environment_as_a_bundle_has_it(tmp_path: Path) -> None:
    app = init(tmp_path, "shop", "--template", "aurora")
    python = app / ".venv" / "bin" / "python"
    done = subprocess.run([str(python), "-c", CHECK_ENV], cwd=app, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # pylive's runtime modules only, as in a function's bundle: not the CLI or aws-cdk-lib
    assert done.stdout.strip() == str(["__init__.py", "db.py"])
    cdk = subprocess.run([str(python), "-c", "import aws_cdk"], cwd=app, capture_output=True)
    assert cdk.returncode != 0


def test_init_works_offline_from_a_warm_uv_cache(tmp_path: Path) -> None:
    init(tmp_path, "first", "--template", "aurora")  # warms the cache (shared by the tests)
    app = init(tmp_path, "second", "--template", "aurora", env={"UV_OFFLINE": "1"})
    python = app / ".venv" / "bin" / "python"
    assert (
        subprocess.run([str(python), "-c", CHECK_ENV], cwd=app, capture_output=True).returncode == 0
    )


def test_dev_installs_a_new_dependency_and_rewarms_the_workers(tmp_path: Path) -> None:
    app = init(tmp_path, "app")
    hello = app / "functions" / "hello.py"
    hello.write_text("import tomli_w\n" + hello.read_text())
    running = Running(pylive_cmd("dev", "--local", "--port", "0"), cwd=app, env=no_node_env())
    try:
        url = running.wait_line(r"on (http://127\.0\.0\.1:\d+)", timeout=180).group(1)
        status, _, _ = http("GET", url + "/")
        assert status == 500
        # one line that names the file the package belongs in
        hint = running.wait_line(r"hello: .*No module named 'tomli_w' -> (.*)").group(1)
        assert (
            hint
            == "add the package that provides 'tomli_w' to pyproject.toml; pylive dev installs it"
        )
        pyproject = app / "pyproject.toml"
        pyproject.write_text(
            pyproject.read_text().replace("dependencies = []", 'dependencies = ["tomli-w>=1"]')
        )
        running.wait_line(
            r"dependencies changed \(pyproject\.toml\): synced \.venv in [\d.]+ s; "
            r"restarted 1 function\(s\)",
            timeout=300,
        )
        status, _, body = http("GET", url + "/?name=Ada")
        assert status == 200, body
        assert json_body(body)["message"] == "Hello, Ada!"
        # A requirement uv cannot read: a warning, and the workers keep serving.
        pyproject.write_text(pyproject.read_text().replace('"tomli-w>=1"', '"tomli-w>>>1"'))
        running.wait_line(r"pyproject\.toml changed, but installing into \.venv failed", 120)
        assert http("GET", url + "/?name=Ada")[0] == 200
    finally:
        assert running.stop() == 0


def test_a_new_function_with_its_own_requirements_gets_them(tmp_path: Path) -> None:
    app = init(tmp_path, "app")
    orders = app / "services" / "orders"
    orders.mkdir(parents=True)
    (orders / "orders.py").write_text(
        "import json\nimport tomli_w\n\n"
        "def handler(event, context):\n"
        "    return {'statusCode': 200, 'body': json.dumps({'toml': tomli_w.dumps({'a': 1})})}\n"
    )
    (orders / "requirements.txt").write_text("tomli-w>=1\n")
    running = Running(pylive_cmd("dev", "--local", "--port", "0"), cwd=app, env=no_node_env())
    try:
        url = running.wait_line(r"on (http://127\.0\.0\.1:\d+)", timeout=180).group(1)
        stacks = app / "stacks.py"
        stacks.write_text(
            stacks.read_text()
            .replace("import Api", "import Api, Function")
            .replace(
                'routes={"GET /": "functions/hello.handler"}',
                'routes={"GET /": "functions/hello.handler", "GET /orders": Function('
                'self, "orders", handler="orders.handler", code="services/orders")}',
            )
        )
        running.wait_line(r"routes updated \(2 routes\)", timeout=180)
        assert any("synced .venv" in line for line in running.lines), running.lines
        status, _, body = http("GET", url + "/orders")
        assert status == 200, body
        assert json_body(body) == {"toml": "a = 1\n"}
    finally:
        assert running.stop() == 0
