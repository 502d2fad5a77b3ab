"""`pylive init`: copy a template app into a new directory."""

from __future__ import annotations

import os
import re
import shutil
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
    """Create ``directory`` from ``template``; refuses a non-empty directory.

    A path that cannot hold an app (below a file, through a symbolic link loop, a name too
    long for the file system) is a :class:`UsageError` before anything is created; when
    copying fails part-way, the directories this call created are removed again (nothing
    that existed before is touched).
    """
    templates = available_templates()
    if template not in templates:
        raise UsageError(f"unknown template {template!r}; choose one of: {', '.join(templates)}")
    target = _usable_target(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"{directory} already exists and is not empty; choose a new directory")
    app_name = name or _app_name(target.name)
    if not re.match(r"^[A-Za-z][A-Za-z0-9-]{0,39}$", app_name):
        raise UsageError(
            f"app name {app_name[:60]!r} must start with a letter and hold only letters, "
            "digits and '-' (at most 40 characters); pass --name"
        )
    created = next((p for p in reversed([target, *target.parents]) if not p.exists()), None)
    try:
        _copy(resources.files("pylive.templates") / template, target, app_name, top=True)
    except OSError as exc:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)  # only what this call created
        raise UsageError(f"cannot create the app in {directory}: {exc.strerror}") from None
    return target


def _usable_target(directory: Path) -> Path:
    """``directory`` as an absolute path without symbolic links, or a :class:`UsageError`
    saying why no app can be created there."""
    try:
        target = directory.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symbolic link loop (Python < 3.13)
        raise UsageError(f"{directory} goes through a symbolic link loop") from None
    name_max = _limit("PC_NAME_MAX", 255)
    for part in target.parts:
        if len(os.fsencode(part)) > name_max:
            raise UsageError(
                f"the name {part[:40]!r}... is {len(os.fsencode(part))} bytes long; the file "
                f"system allows {name_max}"
            )
    if len(os.fsencode(str(target))) > _limit("PC_PATH_MAX", 4096) - 256:
        raise UsageError(
            f"{str(directory)[:60]}... is too long a path for an app (and the files in it)"
        )
    for parent in target.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise UsageError(f"{directory} is below {parent}, which is not a directory")
            break
    return target


def _limit(name: str, default: int) -> int:
    try:
        return os.pathconf("/", name)
    except (OSError, ValueError):
        return default


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
