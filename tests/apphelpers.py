"""Shared by the end-to-end tests: a starter app built with `pylive init`, and a running
`pylive` process whose output can be awaited line by line."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nodeless import path_without_node
from proctree import descendants

STACKS = """
from aws_cdk import Stack
from constructs import Construct

from pylive.constructs import Api


class AppStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)
        Api(
            self,
            "Api",
            routes={
                "GET /": "functions/hello.handler",
                "GET /boom": "functions/boom.handler",
                "POST /items/{id}": "functions/items.handler",
            },
        )


def stacks(app: Construct) -> None:
    AppStack(app, "App")
"""

FUNCTIONS = {
    "functions/boom.py": (
        "import os\n"
        "def handler(event, context):\n"
        "    if event.get('queryStringParameters', {}).get('how') == 'exit':\n"
        "        os._exit(9)\n"
        "    raise RuntimeError('boom')\n"
    ),
    "functions/items.py": (
        "import json\n"
        "def handler(event, context):\n"
        "    print('creating', event['pathParameters']['id'])\n"
        "    body = json.loads(event.get('body') or 'null')\n"
        "    return {'id': event['pathParameters']['id'], 'body': body}\n"
    ),
}


def pylive_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "pylive", *args]


def create_app(directory: Path) -> Path:
    """A starter app with two extra routes, synthesized once (so later starts reuse it)."""
    subprocess.run(pylive_cmd("init", str(directory), "--no-env"), check=True, capture_output=True)
    (directory / "stacks.py").write_text(STACKS)
    for name, text in FUNCTIONS.items():
        (directory / name).write_text(text)
    result = subprocess.run(
        pylive_cmd("invoke", "hello"), cwd=directory, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return directory


def copy_app(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


class Running:
    """A pylive process with its stdout read on a thread, so tests can wait for lines."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            args,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_line(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        for line in self.lines:
            if found := re.search(pattern, line):
                return found
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(self.lines))
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(
                    f"process exited before {pattern!r}:\n" + "\n".join(self.lines)
                )
            self.lines.append(line)
            if found := re.search(pattern, line):
                return found

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        while (line := self._queue.get_nowait() if not self._queue.empty() else None) is not None:
            self.lines.append(line)
        return code

    def descendants(self) -> set[int]:
        return set(descendants(self.proc.pid))


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> tuple[int, dict[str, str], bytes]:
    if body is not None and headers is None:
        headers = {"content-type": "application/json"}
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def poll(check: Callable[[], Any], timeout: float = 30, interval: float = 0.01) -> Any:
    """Call ``check`` until it returns something truthy (a bounded wait on a condition)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {value!r})")
        time.sleep(interval)


def json_body(raw: bytes) -> Any:
    return json.loads(raw)


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    """A CLI failure as pylive reports every one: exit ``code``, one ``Error: ...`` line on
    stderr that contains ``text``, no traceback."""
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and text in lines[0], lines[0]
    assert "Traceback" not in result.stderr


def no_node_env(extra_path: list[Path] | None = None) -> dict[str, str]:
    """Environment overrides for a subprocess that must find no Node.js of the machine's."""
    return {"PATH": path_without_node(extra_path), "JSII_NODE": ""}
