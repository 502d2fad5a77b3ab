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
    """Calls ``on_code(paths)`` for every batch of source changes, and ``on_infra()`` too when
    a file in ``infra_files`` changed. Runs until ``stop`` is set."""

    def __init__(
        self,
        root: Path,
        *,
        infra_files: Callable[[], set[str]],
        on_code: Callable[[set[str]], None],
        on_infra: Callable[[], Awaitable[None]],
        stop: asyncio.Event,
    ) -> None:
        self._root = root
        self._infra_files = infra_files
        self._on_code = on_code
        self._on_infra = on_infra
        self._stop = stop

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
            self._on_code(paths)
            if paths & self._infra_files():
                await self._on_infra()
