"""Where the relay's deployed code (the stub and the router) lives: ``pylive/stub`` when pylive
is installed, ``stub/`` in a checkout. Light on purpose: the runner imports it too."""

from __future__ import annotations

from pathlib import Path

import pylive


def stub_code_dir() -> Path:
    package = Path(pylive.__file__).resolve().parent
    installed = package / "stub"
    return installed if (installed / "stub.py").is_file() else package.parent / "stub"
