from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pylive.config import AppConfig
from pylive.console import Console
from pylive.dev import _LocalRelay
from pylive.runtime.environment import process_environment
from pylive.runtime.pool import PoolOptions, WorkerPool


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
    relay = _LocalRelay(config, pool, asyncio.Event(), Console())
    base = relay.stubs._options.base_env
    assert "GITHUB_TOKEN" not in base and "AWS_PROFILE" not in base
    assert "PATH" in base
