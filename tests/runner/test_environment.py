from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from pylive.cdk.manifest import AppManifest, FunctionSpec
from pylive.config import AppConfig
from pylive.console import Console
from pylive.runner.environment import lambda_environment, process_environment
from pylive.runner.invocation import InvokeResult
from pylive.runner.pool import PoolOptions, WorkerPool
from pylive.session.local_cloud import LocalCloud


def test_process_environment_keeps_only_what_a_process_needs_to_start() -> None:
    shell = {
        "PATH": "/usr/bin",
        "PYTHONPATH": "/src",
        "HOME": "/home/dev",
        "GITHUB_TOKEN": "ghp_secret",
        "AWS_PROFILE": "admin",
    }
    assert process_environment(shell) == {"PATH": "/usr/bin", "PYTHONPATH": "/src"}


def test_local_relay_stubs_do_not_carry_the_developers_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stub relays its environment with every invocation: locally, as in Lambda, that is
    Lambda's variables and the function's own, not whatever the developer's shell holds."""
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret")
    monkeypatch.setenv("AWS_PROFILE", "admin")
    config = AppConfig(
        root=tmp_path, name="demo", region="us-east-1", stage="dev", stacks_module="stacks",
        python=Path("python"),
    )  # fmt: skip
    pool = WorkerPool(Path("python"), tmp_path, PoolOptions())
    relay = LocalCloud(config, pool, asyncio.Event(), Console())
    base = relay.stubs._options.base_env
    assert "GITHUB_TOKEN" not in base and "AWS_PROFILE" not in base
    assert "PATH" in base


MEMORY_HANDLER = """import os


def handler(event, context):
    return [context.memory_limit_in_mb, os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]]
"""


def test_through_the_relay_a_handler_sees_its_own_memory_size_not_the_stubs(
    tmp_path: Path,
) -> None:
    """Dev mode deploys the stub with more memory than the function (a vCPU of CPU for the
    relaying); the stub's Lambda variables, relayed with the invoke, say so, and the handler
    still sees the function's own memory size, in its context and its environment."""
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "mem.py").write_text(MEMORY_HANDLER)
    spec = FunctionSpec(
        id="mem", handler="functions/mem.handler", code_dir=str(tmp_path), timeout=10,
        memory=256, dev_memory=1769,
    )  # fmt: skip
    manifest = AppManifest(app="demo", functions={"mem": spec}, routes=[])
    config = AppConfig(
        root=tmp_path, name="demo", region="us-east-1", stage="dev", stacks_module="stacks",
        python=Path(sys.executable),
    )  # fmt: skip

    async def scenario() -> tuple[InvokeResult, FunctionSpec]:
        pool = WorkerPool(Path(sys.executable), tmp_path, PoolOptions())
        stop = asyncio.Event()
        relay = LocalCloud(config, pool, stop, Console())
        try:
            await pool.start([spec], warm=False)
            invoke = await relay.start(manifest, timeout_override=None)
            result = await invoke("mem", b"{}")
            return result, relay.stubs.spec("mem")
        finally:
            stop.set()
            await relay.close()
            await pool.close()

    result, stub = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert result.ok, result.body
    assert json.loads(result.body) == ["256", "256"]
    assert stub.handler == "stub.handler" and stub.memory == 1769
    stub_env = lambda_environment(stub, region="us-east-1", base={})
    assert stub_env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "1769"
