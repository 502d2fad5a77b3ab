"""Watches the app's source and turns saves into reloads (code) or re-synthesis (infra)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from watchfiles import Change, DefaultFilter, awatch

# A small step is what makes a save visible in a few milliseconds (see bench/reload.py).
WATCH_STEP_MS = 5


class SourceFilter(DefaultFilter):
    """watchfiles' defaults, plus the folders pylive and CDK write to."""

    ignore_dirs = (
        *DefaultFilter.ignore_dirs,
        ".pylive",
        "venv",
        "cdk.out",
        ".ruff_cache",
        "site-packages",
    )


class ReloadWatcher:
    """Calls ``on_code(paths)`` for every batch of source changes, ``on_infra()`` too when
    a file in ``infra_files`` changed, and before them ``on_deps(paths)`` when one in
    ``deps_files`` did. Runs until ``stop`` is set."""

    def __init__(
        self,
        root: Path,
        *,
        infra_files: Callable[[], set[str]],
        on_code: Callable[[set[str]], None],
        on_infra: Callable[[], Awaitable[None]],
        stop: asyncio.Event,
        deps_files: Callable[[], set[str]] = set,
        on_deps: Callable[[set[str]], Awaitable[None]] | None = None,
    ) -> None:
        self._root = root
        self._infra_files = infra_files
        self._on_code = on_code
        self._on_infra = on_infra
        self._stop = stop
        self._deps_files = deps_files
        self._on_deps = on_deps

    async def run(self) -> None:
        async for changes in awatch(
            self._root,
            watch_filter=SourceFilter(),
            step=WATCH_STEP_MS,
            stop_event=self._stop,
            rust_timeout=1000,
        ):
            paths = {os.path.realpath(path) for change, path in changes if change in Change}
            # A helper module may serve both the infra code and the functions: reload the
            # functions that imported a changed file (none did for the stacks module) and
            # re-synthesize when the infra code depends on it.
            # A changed dependency file (requirements.txt...) first syncs the environment
            # the workers run on, so that reloaded workers and a new synth see it.
            changed_deps = paths & self._deps_files()
            if changed_deps and self._on_deps is not None:
                await self._on_deps(changed_deps)
            self._on_code(paths)
            if paths & self._infra_files():
                await self._on_infra()
