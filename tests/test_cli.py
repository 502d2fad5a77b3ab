"""The `pylive` command as a user runs it: exit codes and one-line errors, never tracebacks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from apphelpers import assert_one_line_error, copy_app, create_app, no_node_env, pylive_cmd


def pylive(
    *args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        pylive_cmd(*args),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        input=stdin,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_app(tmp_path_factory.mktemp("cli") / "demo")


@pytest.mark.slow
def test_invoke_prints_the_result(app: Path) -> None:
    result = pylive(
        "invoke", "hello", "--event", '{"queryStringParameters": {"name": "Ada"}}', cwd=app
    )
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["message"] == "Hello, Ada!"


@pytest.mark.slow
def test_invoke_reads_the_event_from_a_file_or_stdin(app: Path, tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text('{"pathParameters": {"id": "7"}, "body": "[1]"}')
    by_file = pylive("invoke", "items", "--event-file", str(event), cwd=app)
    by_stdin = pylive("invoke", "items", "-f", "-", cwd=app, stdin=event.read_text())
    for result in (by_file, by_stdin):
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {"id": "7", "body": [1]}
        assert "items | creating 7" in result.stderr  # handler output goes to stderr


@pytest.mark.slow
def test_invoke_function_error_prints_lambda_error_and_fails(app: Path) -> None:
    result = pylive("invoke", "boom", cwd=app)
    assert result.returncode == 1
    error = json.loads(result.stdout)
    assert error["errorType"] == "RuntimeError"
    assert error["errorMessage"] == "boom"
    assert error["stackTrace"]


@pytest.mark.slow
def test_invoke_with_a_response_over_lambdas_6_mb_is_lambdas_error(
    app: Path, tmp_path: Path
) -> None:
    # A 2 MB event whose body parses to numbers that print long: an 8 MB response.
    body = "[" + ",".join(["1e15"] * 400_000) + "]"
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pathParameters": {"id": "7"}, "body": body}))
    result = pylive("invoke", "items", "-f", str(event), cwd=app)
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout) == {
        "errorMessage": "Response payload size exceeded maximum allowed payload size "
        "(6291556 bytes).",
        "errorType": "Function.ResponseSizeTooLarge",
    }
    assert "the response is 8000021 bytes, over Lambda's limit of 6291556 bytes" in result.stderr


@pytest.mark.slow
def test_invoke_bad_input(app: Path, tmp_path: Path) -> None:
    assert_one_line_error(pylive("invoke", "hello", "-e", "{nope", cwd=app), 2, "not valid JSON")
    assert_one_line_error(
        pylive("invoke", "nosuch", cwd=app), 2, "no function named 'nosuch' in app 'demo'"
    )
    assert_one_line_error(
        pylive("invoke", "hello", "-f", str(tmp_path / "missing.json"), cwd=app),
        2,
        "cannot read --event-file",
    )


def test_missing_config(tmp_path: Path) -> None:
    assert_one_line_error(pylive("invoke", "x", cwd=tmp_path), 2, "no pyproject.toml")
    assert_one_line_error(pylive("dev", "--local", cwd=tmp_path), 2, "no pyproject.toml")


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--port", "3001"], "--port belongs to local development (pylive dev --local)"),
        (["--host", "0.0.0.0"], "--host belongs to local development (pylive dev --local)"),
        (["--direct"], "--direct belongs to local development (pylive dev --local)"),
        (["--relay"], "--relay belongs to local development (pylive dev --local)"),
        (["--debug", "--debug-wait"], "--debug-wait belongs to local development"),
        (
            ["--local", "--assume-role"],
            "--assume-role belongs to live development (pylive dev without --local)",
        ),
    ],
)
def test_dev_rejects_a_flag_of_the_other_mode(tmp_path: Path, flags: list[str], named: str) -> None:
    # Checked before the app is read: the same answer inside or outside an app.
    assert_one_line_error(pylive("dev", *flags, cwd=tmp_path), 2, named)


def test_dev_accepts_each_modes_own_flags(tmp_path: Path) -> None:
    # No app here, so both get as far as reading its configuration: the flags passed.
    local = ["--local", "--port", "3001", "--host", "127.0.0.1", "--direct", "--debug-wait"]
    assert_one_line_error(pylive("dev", *local, cwd=tmp_path), 2, "no pyproject.toml")
    assert_one_line_error(pylive("dev", "--assume-role", cwd=tmp_path), 2, "no pyproject.toml")


def test_dev_help_says_which_mode_each_flag_belongs_to(tmp_path: Path) -> None:
    help_text = pylive("dev", "--help", cwd=tmp_path).stdout
    entries: dict[str, str] = {}  # each option's first column -> its whole help, on one line
    for line in help_text.split("Options:", 1)[1].splitlines():
        if line.startswith("  -"):
            flag, _, text = line.strip().partition("  ")
            entries[flag.split(" ")[0]] = text
        elif entries:
            last = list(entries)[-1]
            entries[last] = " ".join((entries[last] + " " + line).split())
    for flag in ("--port", "--host", "--debug-wait", "--relay"):
        assert "Only with --local." in entries[flag], entries[flag]
    assert "Only without --local." in entries["--assume-role"], entries["--assume-role"]
    for flag in ("--stage", "--debug", "--debug-port", "--no-watch", "--console-port"):
        assert "--local." not in entries[flag], entries[flag]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[tool.pylive]\nname = 'a'\nname = 'b'\n", "not valid TOML"),
        ("[tool.pylive]\nregion = 'us-east-1'\n", 'needs `name = "..."`'),
        ("[tool.pylive]\nname = 'ok'\nstack = 'x'\n", "unknown key(s) in [tool.pylive]: stack"),
        ("[tool.pylive]\nname = 3\n", "name must be a string"),
        ("[tool.pylive]\nname = 'no spaces'\n", "must start with a letter"),
        ("[tool.pylive]\nname = 'ok'\nstacks = 'not-a-module'\n", "is not a Python module"),
    ],
)
def test_broken_config(tmp_path: Path, toml: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(toml)
    assert_one_line_error(pylive("invoke", "x", cwd=tmp_path), 2, message)


@pytest.mark.slow
def test_a_handler_that_does_not_resolve(app: Path, tmp_path: Path) -> None:
    broken = copy_app(app, tmp_path / "broken")
    (broken / "functions" / "hello.py").unlink()
    result = pylive("invoke", "hello", cwd=broken)
    assert result.returncode == 1
    error = json.loads(result.stdout)
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert error["errorMessage"] == (
        "Unable to import module 'functions/hello': No module named 'functions.hello'"
    )


@pytest.mark.slow
def test_no_node_on_path_runs_on_the_packaged_node(app: Path, tmp_path: Path) -> None:
    fresh = copy_app(app, tmp_path / "fresh")
    shutil.rmtree(fresh / ".pylive")  # synthesize again, which runs aws-cdk-lib on Node.js
    result = pylive("invoke", "hello", cwd=fresh, env=no_node_env())
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["statusCode"] == 200


@pytest.mark.slow
def test_a_missing_jsii_node_is_a_clear_error(app: Path, tmp_path: Path) -> None:
    fresh = copy_app(app, tmp_path / "fresh")
    shutil.rmtree(fresh / ".pylive")
    result = pylive("invoke", "hello", cwd=fresh, env={"JSII_NODE": str(tmp_path / "node")})
    assert_one_line_error(result, 3, "JSII_NODE=")


def test_help_explains_every_command(tmp_path: Path) -> None:
    top = pylive("--help", cwd=tmp_path)
    assert top.returncode == 0
    for command in ("init", "dev", "invoke"):
        assert command in top.stdout
        result = pylive(command, "--help", cwd=tmp_path)
        assert result.returncode == 0 and "Usage: " in result.stdout
    assert "--debug" in pylive("dev", "--help", cwd=tmp_path).stdout


def test_init_creates_a_runnable_app_and_refuses_to_overwrite(tmp_path: Path) -> None:
    result = pylive("init", "my-app", "--no-env", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    app = tmp_path / "my-app"
    assert 'name = "my-app"' in (app / "pyproject.toml").read_text()
    assert (app / ".gitignore").exists() and (app / "functions" / "hello.py").exists()
    # The app's own tests pass as generated.
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert_one_line_error(pylive("init", "my-app", cwd=tmp_path), 2, "already exists")
    assert_one_line_error(
        pylive("init", "other", "--template", "nope", cwd=tmp_path), 2, "unknown template 'nope'"
    )


def test_init_answers_bad_paths_and_names_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("keep")
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    cases = [
        (["init", "a-file/app"], "which is not a directory"),
        (["init", "a-file"], "already exists and is not empty"),
        (["init", "loop1/app"], "symbolic link loop"),
        (["init", "n" * 300], "the file system allows 255"),
        (["init", "/".join(["deep"] * 1200)], "too long a path"),
        (["init", "ok", "--name", "x" * 41], "at most 40 characters"),
        (["init", "ok", "--name", "1abc"], "must start with a letter"),
    ]
    for args, text in cases:
        assert_one_line_error(pylive(*args, cwd=tmp_path), 2, text)
    # Nothing was created on the way, and nothing that was there is gone.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "loop1", "loop2"]
    assert (tmp_path / "a-file").read_text() == "keep"


def test_other_commands_answer_bad_paths_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.pylive]\nname = "demo"\n')
    (tmp_path / "a-file").write_text("")
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    cases = [
        (["synth", "-o", "loop1/out"], 1, "symbolic link loop"),
        (["synth", "-o", "a-file/out"], 2, "Not a directory"),
        (["synth", "-o", "a-file"], 2, "is a file"),
        (["invoke", "hello", "-f", "loop1"], 2, "cannot read --event-file"),
        (["invoke", "hello", "-f", "e" * 300], 2, "cannot read --event-file"),
        (["vpn", "certs", "--out", str(tmp_path / "a-file" / "certs")], 7, ""),
    ]
    for args, code, text in cases:
        assert_one_line_error(pylive(*args, cwd=tmp_path), code, text)


def test_invoke_with_an_event_over_lambdas_6_mb_is_lambdas_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.pylive]\nname = "demo"\n')
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"data": "x" * (6 * 1024 * 1024)}))
    result = pylive("invoke", "hello", "-f", str(event), cwd=tmp_path)
    assert_one_line_error(
        result,
        2,
        "RequestEntityTooLargeException: Request must be smaller than 6291456 bytes for the "
        "InvokeFunction operation",
    )


@pytest.mark.slow
def test_a_too_old_node_on_path_is_passed_over_with_the_fix(app: Path, tmp_path: Path) -> None:
    fresh = copy_app(app, tmp_path / "fresh")
    shutil.rmtree(fresh / ".pylive")
    old = tmp_path / "old-node"
    old.mkdir()
    (old / "node").write_text("#!/bin/sh\necho v18.20.4\n")  # answers --version only
    (old / "node").chmod(0o755)
    result = pylive("invoke", "hello", cwd=fresh, env=no_node_env([old]))
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "Node.js v18.20.4" in line]
    assert len(warnings) == 1, result.stderr
    assert "too old" in warnings[0] and "Upgrade it to Node.js 22 LTS" in warnings[0]
