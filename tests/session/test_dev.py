"""One dev session for every target: what differs is only where invocations come from."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pylive.config import AppConfig
from pylive.console import Console
from pylive.session.aws import AwsTarget
from pylive.session.dev import DevSession
from pylive.session.http_front import LocalTarget
from pylive.session.options import DevOptions


def _config(root: Path) -> AppConfig:
    return AppConfig(
        root=root, name="demo", region="us-east-1", stage="dev", stacks_module="stacks",
        python=Path("python"),
    )  # fmt: skip


@pytest.mark.parametrize("debug", [False, True])
def test_workers_are_set_up_alike_whatever_the_target(tmp_path: Path, debug: bool) -> None:
    options = DevOptions(debug=debug, debug_port=6000)
    pools = {}
    for target in ("aws", "local", "direct"):
        session = DevSession(
            _config(tmp_path), dataclasses.replace(options, target=target), Console()
        )
        pool = session._pool_options()
        pools[target] = {
            f.name: getattr(pool, f.name)
            for f in dataclasses.fields(pool)
            if f.name not in ("output", "events", "record", "hint")  # bound to the session
        }
    assert pools["aws"] == pools["local"] == pools["direct"]
    assert pools["aws"]["debug_port"] == (6000 if debug else None)
    assert pools["aws"]["timeout_override"] == (900.0 if debug else None)
    assert pools["aws"]["memory_limit"] is not debug


def test_the_target_follows_the_options(tmp_path: Path) -> None:
    def target(name: str) -> object:
        return DevSession(_config(tmp_path), DevOptions(target=name), Console()).target  # type: ignore[arg-type]

    assert isinstance(target("aws"), AwsTarget)
    local, direct = target("local"), target("direct")
    assert isinstance(local, LocalTarget) and not local.direct
    assert isinstance(direct, LocalTarget) and direct.direct
    assert local.label == "dev --local (relay)" and direct.label == "dev --local (direct)"
