"""Memory comes back: idle workers are reclaimed, and the worker host forgets pre-imports
the app no longer uses."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from asynchelpers import run
from proctree import alive
from runner.conftest import Recorder, make_pool, spec, write

BARRIER = """
import os, time

def handler(event, context):
    # Hold every invocation until `n` of them run at once: one worker each.
    open(os.path.join(event["dir"], str(os.getpid())), "w").close()
    deadline = time.time() + 10
    while len(os.listdir(event["dir"])) < event["n"] and time.time() < deadline:
        time.sleep(0.005)
    return os.getpid()
"""


def test_idle_workers_beyond_the_warmest_are_reclaimed(tmp_path: Path, recorder: Recorder) -> None:
    root = tmp_path / "app"
    write(root, {"functions/api.py": BARRIER})
    concurrency = 4

    async def go() -> tuple[set[int], set[int], int]:
        pool = make_pool(root, recorder, idle_reclaim_s=0.2)
        await pool.start([spec(root, "functions/api.handler", id="api")])
        try:
            barrier = tmp_path / "barrier"
            barrier.mkdir()
            event = json.dumps({"dir": str(barrier), "n": concurrency}).encode()
            results = await asyncio.gather(*(pool.invoke("api", event) for _ in range(concurrency)))
            assert all(r.ok for r in results), [r.body for r in results]
            pids = {json.loads(r.body) for r in results}
            async with asyncio.timeout(10):
                while sum(alive(pid) for pid in pids) > 1:
                    await asyncio.sleep(0.05)
            survivors = {pid for pid in pids if alive(pid)}
            again = await pool.invoke("api", json.dumps({"dir": str(barrier), "n": 0}).encode())
            assert again.ok, again.body
            return pids, survivors, json.loads(again.body)
        finally:
            await pool.close()

    pids, survivors, served_by = run(go())
    assert len(pids) == concurrency
    assert len(survivors) == 1  # the warmest worker stays
    assert served_by in survivors  # and serves the next invocation without a cold start


def _session(root: Path, lib: Path, recorder: Recorder, preload: Path) -> None:
    async def go() -> None:
        pool = make_pool(
            root,
            recorder,
            preload_file=preload,
            base_env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(lib)},
        )
        await pool.start([spec(root, "functions/api.handler", id="api")])
        await pool.close()

    run(go())


def _remembered(preload: Path) -> list[str]:
    names = json.loads(preload.read_text())
    assert isinstance(names, list)
    return names


def test_pre_imports_the_app_stopped_using_are_forgotten(
    tmp_path: Path, recorder: Recorder
) -> None:
    root, lib, preload = tmp_path / "app", tmp_path / "lib", tmp_path / "preload.json"
    write(lib, {"heavylib/__init__.py": "def thing():\n    return 1\n", "otherlib.py": "X = 1\n"})
    write(root, {"functions/api.py": "import heavylib\n\ndef handler(e, c):\n    return 1\n"})
    _session(root, lib, recorder, preload)
    assert "heavylib" in _remembered(preload)

    # Still used through a name imported from it: remembered.
    handler = "from heavylib import thing\n\ndef handler(e, c):\n    return thing()\n"
    write(root, {"functions/api.py": handler})
    _session(root, lib, recorder, preload)
    assert "heavylib" in _remembered(preload)

    # No longer imported: forgotten; what it imports now is learned.
    write(root, {"functions/api.py": "import otherlib\n\ndef handler(e, c):\n    return 1\n"})
    _session(root, lib, recorder, preload)
    assert "heavylib" not in _remembered(preload)
    assert "otherlib" in _remembered(preload)


def test_a_session_whose_handler_failed_to_import_forgets_nothing(
    tmp_path: Path, recorder: Recorder
) -> None:
    root, lib, preload = tmp_path / "app", tmp_path / "lib", tmp_path / "preload.json"
    write(lib, {"heavylib.py": "X = 1\n"})
    write(root, {"functions/api.py": "import heavylib\n\ndef handler(e, c):\n    return 1\n"})
    _session(root, lib, recorder, preload)
    write(root, {"functions/api.py": "import heavylib\nraise RuntimeError('broken')\n"})
    _session(root, lib, recorder, preload)
    assert "heavylib" in _remembered(preload)


COLLECTOR = """
import gc


def _private_kb():
    with open("/proc/self/smaps_rollup") as rollup:
        return sum(
            int(line.split()[1]) for line in rollup if line.startswith(("Private_Dirty:",))
        )


def handler(event, context):
    before = _private_kb()
    gc.collect()
    return {"frozen": gc.get_freeze_count(), "copied_kb": _private_kb() - before}
"""


def test_a_workers_collections_leave_the_hosts_memory_shared(
    tmp_path: Path, recorder: Recorder
) -> None:
    """Each worker is forked from the host: the host's objects are out of the worker's
    collector's reach, so a full collection copies none of the pages they share."""
    root = tmp_path / "app"
    write(root, {"functions/api.py": COLLECTOR})

    async def go() -> dict[str, int]:
        pool = make_pool(root, recorder, preload_file=tmp_path / "preload.json")
        await pool.start([spec(root, "functions/api.handler", id="api")])
        try:
            result = await pool.invoke("api", b"{}")
            assert result.ok, result.body
            answer: dict[str, int] = json.loads(result.body)
            return answer
        finally:
            await pool.close()

    answer = run(go())
    assert answer["frozen"] > 1000  # the host's modules, pylive's own among them
    assert answer["copied_kb"] < 768, answer  # without: 2 MB and more, per worker
