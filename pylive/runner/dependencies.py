"""A running session's side of the app's environment: when a dependency file is saved, sync
``.venv`` and replace the workers, which may have imported the old packages."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

from pylive import appenv
from pylive.console import Console
from pylive.errors import PyliveError
from pylive.runner.pool import WorkerPool


class DependencySync:
    def __init__(
        self,
        root: Path,
        python: Path,
        code_dirs: Callable[[], list[str]],
        pool: WorkerPool,
        console: Console,
    ) -> None:
        self._root = root
        self._python = python
        self._code_dirs = code_dirs  # of the functions served now
        self._pool = pool
        self._console = console

    def files(self) -> set[str]:
        """The files to watch; none when pylive does not manage the app's environment."""
        if not appenv.managed(self._root, self._python):
            return set()
        plan = appenv.plan(self._root, self._code_dirs())
        return {os.path.realpath(p) for p in plan.inputs()}

    async def changed(self, paths: set[str]) -> None:
        """Install what changed, then replace the worker host and every worker, and say so.
        A failed install is a warning: the workers keep running on the environment as it is."""
        await self._sync(", ".join(sorted(os.path.relpath(p, self._root) for p in paths)))

    async def functions_changed(self) -> None:
        """After a re-synthesis: a function with a code directory of its own may have brought
        a requirements.txt (nothing happens, and no process runs, when none did)."""
        await self._sync("a function's code directory")

    async def _sync(self, names: str) -> None:
        started = time.perf_counter()
        try:
            installed = await asyncio.to_thread(
                appenv.sync, self._root, self._code_dirs(), on_status=self._console.event
            )
        except PyliveError as exc:
            self._console.warn(f"{names} changed, but {exc} (the workers keep running)")
            return
        if not installed:
            return  # the dependencies are as they were (another part of pyproject.toml changed)
        restarted = await self._pool.restart_host()
        self._console.event(
            f"dependencies changed ({names}): synced {appenv.ENV_DIR} in "
            f"{time.perf_counter() - started:.1f} s; restarted {len(restarted)} function(s)"
        )
