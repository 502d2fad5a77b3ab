"""The third-party modules the worker host pre-imports before it forks, so that a worker
(and a reload) does not pay for them: learned from what workers import, remembered across
sessions in ``.pylive/preload.json``, and forgotten once the app no longer uses them."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

_IGNORED_DIRS = (".venv", "venv", ".pylive", "site-packages", "__pycache__", ".git")


class Preloads:
    def __init__(self, path: Path | None, root: Path) -> None:
        self.path = path
        self._root = root
        self.modules: set[str] = set(_read(path))
        self._remembered = frozenset(self.modules)  # what preload.json held at start
        self._learned: set[str] = set()  # pre-imports learned in this session
        self._packages_used: set[str] = set()  # what this session's workers referred to

    def is_app_file(self, path: str) -> bool:
        """Whether ``path`` (real) is the app's own code, which is never pre-imported."""
        if not path.startswith(str(self._root) + os.sep):
            return False
        parts = Path(path).relative_to(self._root).parts
        return not any(part in _IGNORED_DIRS for part in parts)

    def learn(self, modules: list[str], files: list[str], uses: Iterable[str]) -> list[str]:
        """A worker imported ``modules`` (from ``files``) and refers to the packages ``uses``;
        returns the modules to pre-import from now on."""
        self._packages_used.update(uses)
        fresh = [
            name
            for name, path in zip(modules, files, strict=True)
            if name not in self.modules
            and not self.is_app_file(os.path.realpath(path))
            and name != "__main__"
        ]
        self.modules.update(fresh)
        self._learned.update(fresh)
        return fresh

    def to_remember(self, *, complete: bool) -> set[str]:
        """The pre-imports for the next session: those learned now, and the remembered ones
        whose package some function still refers to. Only a ``complete`` session (every
        function imported its handler) knows what the app uses; any other keeps them all."""
        if not complete:
            return self.modules
        kept = {n for n in self._remembered if n.partition(".")[0] in self._packages_used}
        return kept | self._learned

    def save(self, *, complete: bool) -> None:
        if self.path is None:
            return
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(sorted(self.to_remember(complete=complete))))


def _read(path: Path | None) -> list[str]:
    if path is None or not path.exists():
        return []
    try:
        names = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []
