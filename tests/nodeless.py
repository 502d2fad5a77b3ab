"""A PATH with no Node.js on it: what a machine with Python only has.

Standard library only: the first-run benchmark (bench/first_run.py) uses it as well as the
tests.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

NODE_TOOLS = ("node", "nodejs", "npm", "npx", "corepack")
_shadows: dict[tuple[str, Path | None], str] = {}


def path_without_node(extra: list[Path] | None = None, *, shadows: Path | None = None) -> str:
    """This machine's PATH with no Node.js on it. A folder that holds ``node`` (such as
    /usr/bin) is replaced by a folder of links to everything else in it, made in ``shadows``
    (default: the system's temporary folder). ``extra`` folders come first."""
    folders = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not folder or not os.path.isdir(folder):
            continue
        if any(os.path.exists(os.path.join(folder, tool)) for tool in NODE_TOOLS):
            folder = _shadow(folder, shadows)
        folders.append(folder)
    return os.pathsep.join([*(str(p) for p in extra or []), *folders])


def _shadow(folder: str, shadows: Path | None) -> str:
    if (folder, shadows) not in _shadows:
        shadow = tempfile.mkdtemp(prefix="pylive-no-node-", dir=shadows)
        for name in os.listdir(folder):
            if name not in NODE_TOOLS:
                os.symlink(os.path.join(folder, name), os.path.join(shadow, name))
        _shadows[folder, shadows] = shadow
    return _shadows[folder, shadows]
