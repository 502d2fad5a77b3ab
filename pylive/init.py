"""`pylive init`: copy a template app into a new directory."""

from __future__ import annotations

import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from pylive.errors import UsageError

PLACEHOLDER = "__APP_NAME__"
# Files stored under another name so they do not act on pylive's own repository.
_RENAMED = {"gitignore": ".gitignore"}
_SKIPPED = {"__pycache__", "__init__.py"}


def available_templates() -> list[str]:
    root = resources.files("pylive.templates")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in _SKIPPED)


def init_project(directory: Path, *, template: str = "starter", name: str | None = None) -> Path:
    """Create ``directory`` from ``template``; refuses a non-empty directory."""
    templates = available_templates()
    if template not in templates:
        raise UsageError(f"unknown template {template!r}; choose one of: {', '.join(templates)}")
    target = directory.resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"{directory} already exists and is not empty; choose a new directory")
    app_name = name or _app_name(target.name)
    if not re.match(r"^[A-Za-z][A-Za-z0-9-]{0,39}$", app_name):
        raise UsageError(
            f"app name {app_name!r} must start with a letter and hold only letters, digits and "
            "'-'; pass --name"
        )
    _copy(resources.files("pylive.templates") / template, target, app_name, top=True)
    return target


def _app_name(directory_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "-", directory_name).strip("-") or "app"


def _copy(source: Traversable, target: Path, app_name: str, *, top: bool = False) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        if entry.name == "__pycache__" or (top and entry.name == "__init__.py"):
            continue
        destination = target / _RENAMED.get(entry.name, entry.name)
        if entry.is_dir():
            _copy(entry, destination, app_name)
        else:
            text = entry.read_bytes()
            destination.write_bytes(text.replace(PLACEHOLDER.encode(), app_name.encode()))
