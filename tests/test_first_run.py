"""The first ten minutes on a machine with Python only: `pip install .` into a new
environment, then `pylive init`, `pylive dev --local` and `pylive synth` with no Node.js on
PATH, driven as a user drives them."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from apphelpers import Running, http, json_body
from nodeless import path_without_node

from pylive.appenv import find_uv

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
# What a source distribution of pylive holds: no environments, caches or git data.
NOT_SHIPPED = shutil.ignore_patterns(
    ".git", ".venv", "venv", "*.egg-info", "build", "dist", "__pycache__", ".*_cache",
    ".pylive", "demo-app", "site",
)  # fmt: skip


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new environment with pylive installed from a copy of this checkout (not editable),
    as `pip install .` does; uv makes it (pylive's own install command, and faster)."""
    root = tmp_path_factory.mktemp("install")
    source = root / "pylive-src"
    shutil.copytree(REPO, source, ignore=NOT_SHIPPED)
    env = root / "env"
    uv = find_uv()
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(env)], check=True)
    done = subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(env / "bin" / "python"), str(source)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    return env / "bin"


def user_env(bin_dir: Path) -> dict[str, str]:
    """An activated environment on a machine without Node.js."""
    env = {k: v for k, v in os.environ.items() if k not in ("JSII_NODE", "PYTHONPATH")}
    env["PATH"] = path_without_node([bin_dir])
    env["VIRTUAL_ENV"] = str(bin_dir.parent)
    return env


def test_install_init_dev_and_synth_with_no_node_on_path(installed: Path, tmp_path: Path) -> None:
    env = user_env(installed)
    assert shutil.which("node", path=env["PATH"]) is None

    def pylive(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["pylive", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
        )

    created = pylive("init", "my-app", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    app = tmp_path / "my-app"
    assert (app / ".venv" / "bin" / "python").exists()
    running = Running(
        [str(installed / "pylive"), "dev", "--local", "--port", "0"], cwd=app, env=env
    )
    try:
        url = running.wait_line(r"on (http://127\.0\.0\.1:\d+)", timeout=180).group(1)
        status, _, body = http("GET", url + "/?name=Ada")
        assert status == 200, body
        assert json_body(body)["message"] == "Hello, Ada!"
    finally:
        assert running.stop() == 0
    synth = pylive("synth", "--out", str(tmp_path / "cdk-out"), cwd=app)
    assert synth.returncode == 0, synth.stderr
    templates = list((tmp_path / "cdk-out").rglob("*.template.json"))
    assert templates and json.loads(templates[0].read_text())["Resources"]
    tests = subprocess.run(
        [".venv/bin/python", "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr


def test_aurora_app_runs_where_pylive_has_no_database_drivers(
    installed: Path, tmp_path: Path
) -> None:
    """pylive installed without its db extra (no sqlalchemy beside it): the aurora app's
    functions import sqlalchemy and pymysql from the app's own environment."""
    env = user_env(installed)
    lacks = subprocess.run([str(installed / "python"), "-c", "import sqlalchemy"], env=env)
    assert lacks.returncode != 0
    created = subprocess.run(
        ["pylive", "init", "shop", "--template", "aurora"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    running = Running(
        [str(installed / "pylive"), "dev", "--local", "--port", "0"], cwd=tmp_path / "shop", env=env
    )
    try:
        url = running.wait_line(r"on (http://127\.0\.0\.1:\d+)", timeout=180).group(1)
        status, _, body = http("POST", url + "/items", json.dumps({"name": "pen"}).encode())
        assert status == 201, body
        assert json_body(http("GET", url + "/items")[2]) == {"items": [{"id": 1, "name": "pen"}]}
    finally:
        assert running.stop() == 0


def test_scripts_demo_serves_with_no_node_on_path(tmp_path: Path) -> None:
    """./scripts/demo in a checkout whose .venv is current (this one's programs, linked, and
    the stamp scripts/bootstrap writes), on a PATH with no Node.js: it creates demo-app with
    its environment and serves it."""
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO / "scripts", checkout / "scripts")
    shutil.copy2(REPO / "pyproject.toml", checkout / "pyproject.toml")
    (checkout / ".venv").mkdir()
    (checkout / ".venv" / "bin").symlink_to(REPO / ".venv" / "bin")
    digest = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()
    (checkout / ".venv" / ".pylive-installed").write_text(digest + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("JSII_NODE", "VIRTUAL_ENV")}
    env["PATH"] = path_without_node()
    running = Running([str(checkout / "scripts" / "demo"), "--port", "0"], cwd=tmp_path, env=env)
    try:
        url = running.wait_line(r"on (http://127\.0\.0\.1:\d+)", timeout=300).group(1)
        status, _, body = http("GET", url + "/?name=Ada")
        assert status == 200, body
        assert json_body(body)["message"] == "Hello, Ada!"
    finally:
        assert running.stop() == 0
    assert (checkout / "demo-app" / ".venv" / "bin" / "python").exists()
