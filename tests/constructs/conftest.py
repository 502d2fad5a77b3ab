from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest


@pytest.fixture
def make_stack(tmp_path: Path) -> Callable[..., cdk.Stack]:
    """A fresh stack in an app whose root (CDK context ``pylive:root``) is ``tmp_path``."""

    def make(mode: str | None = None, **context: Any) -> cdk.Stack:
        ctx: dict[str, Any] = {"pylive:root": str(tmp_path), **context}
        if mode is not None:
            ctx["pylive:mode"] = mode
        app = cdk.App(outdir=str(tmp_path / "cdk.out"), context=ctx)
        return cdk.Stack(app, "Test")

    return make
