"""ReloadWatcher on a real directory with real file writes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from asynchelpers import run

from pylive.runner.reload import ReloadWatcher


def test_code_and_infra_changes_are_told_apart(tmp_path: Path) -> None:
    """Code changes go to on_code; an infra file goes to on_infra and to on_code as well (a
    helper module may be imported by functions too: those then reload)."""
    root = tmp_path.resolve()
    (root / "functions").mkdir()
    (root / ".venv" / "lib").mkdir(parents=True)
    (root / ".pylive").mkdir()
    stacks = root / "stacks.py"
    stacks.write_text("# stacks\n")

    async def go() -> tuple[list[set[str]], int, bool]:
        stop = asyncio.Event()
        code: list[set[str]] = []
        infra = 0
        seen = asyncio.Event()

        def on_code(paths: set[str]) -> None:
            code.append(paths)
            seen.set()

        async def on_infra() -> None:
            nonlocal infra
            infra += 1
            seen.set()

        watcher = ReloadWatcher(
            root,
            infra_files=lambda: {os.path.realpath(stacks)},
            on_code=on_code,
            on_infra=on_infra,
            stop=stop,
        )
        task = asyncio.create_task(watcher.run())
        try:
            # watchfiles is ready once it reports a change: keep touching until it does.
            probe = root / "functions" / "probe.py"
            async with asyncio.timeout(20):
                while not code:
                    probe.write_text("x = 1\n")
                    try:
                        await asyncio.wait_for(seen.wait(), 0.2)
                    except TimeoutError:
                        continue
            code.clear()
            seen.clear()
            # Ignored places first, then one real change: only the real one may be reported.
            (root / ".venv" / "lib" / "dep.py").write_text("x = 1\n")
            (root / ".pylive" / "dev.json").write_text("{}")
            (root / "functions" / "__pycache__").mkdir()
            (root / "functions" / "__pycache__" / "a.pyc").write_bytes(b"\0")
            handler = root / "functions" / "hello.py"
            handler.write_text("def handler(e, c): return 1\n")
            async with asyncio.timeout(10):
                while not any(str(handler) in batch for batch in code):
                    seen.clear()
                    await seen.wait()
            reported = set().union(*code)
            seen.clear()
            stacks.write_text("# changed\n")
            async with asyncio.timeout(10):
                while infra == 0:
                    seen.clear()
                    await seen.wait()
            return [reported], infra, any(os.path.realpath(stacks) in b for b in code)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)

    batches, infra, infra_also_to_code = run(go())
    assert batches == [{str(root / "functions" / "hello.py")}]
    assert infra == 1
    assert infra_also_to_code
