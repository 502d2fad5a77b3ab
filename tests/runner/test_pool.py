"""WorkerPool with real forked workers: reuse, concurrency, timeouts, crashes, reload."""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from pathlib import Path

import pytest
from asynchelpers import run
from conftest import Recorder, make_pool, spec, write
from proctree import alive

APP = {
    "functions/__init__.py": "",
    "functions/util.py": "VERSION = 'v1'\n",
    "functions/api.py": (
        "import os, sys, time\n"
        "def context_of(event, context):\n"
        "    return {'id': context.aws_request_id, 'custom': context.client_context.custom,\n"
        "            'identity': context.identity.cognito_identity_id,\n"
        "            'trace': os.environ.get('_X_AMZN_TRACE_ID')}\n"
        "from functions import util\n"
        "def handler(event, context):\n"
        "    return {'pid': os.getpid(), 'version': util.VERSION, 'event': event}\n"
        "def printer(event, context):\n"
        "    print('to stdout', event['n'])\n"
        "    print('to stderr', event['n'], file=sys.stderr)\n"
        "    return 'printed'\n"
        "def slow(event, context):\n"
        "    time.sleep(event.get('seconds', 60))\n"
        "    return 'slept'\n"
        "def exits(event, context):\n"
        "    os._exit(event['code'])\n"
        "def killed(event, context):\n"
        "    os.kill(os.getpid(), signal_number(event))\n"
        "def signal_number(event):\n"
        "    import signal\n"
        "    return getattr(signal, event['signal'])\n"
        "def sys_exit(event, context):\n"
        "    raise SystemExit(4)\n"
        "def hungry(event, context):\n"
        "    held = []\n"
        "    while len(held) * 8 < event['mb']:\n"
        "        held.append(b'x' * (8 << 20))  # written, so resident\n"
        "        time.sleep(0.005)\n"
        "    time.sleep(event.get('hold', 0))\n"
        "    return len(held) * 8\n"
        "def barrier(event, context):\n"
        "    # Wait (bounded) until every concurrent invocation has arrived.\n"
        "    open(os.path.join(event['dir'], str(os.getpid())), 'w').close()\n"
        "    deadline = time.monotonic() + 20\n"
        "    while len(os.listdir(event['dir'])) < event['n'] and time.monotonic() < deadline:\n"
        "        time.sleep(0.005)\n"
        "    return os.getpid()\n"
        "def scheduling(event, context):\n"
        "    return os.sched_getscheduler(0)\n"
        "def sized(event, context):\n"
        "    if event.get('raw'):\n"
        "        return b'x' * event['size']\n"
        "    return 'x' * (event['size'] - 2)  # marshalled as JSON: two quotes more\n"
    ),
}


def _app(tmp_path: Path) -> Path:
    write(tmp_path, APP)
    return tmp_path


def _event(value: object) -> bytes:
    return json.dumps(value).encode()


def test_workers_are_reused_and_import_once(tmp_path: Path, recorder: Recorder) -> None:
    root = _app(tmp_path)

    async def go() -> list[int]:
        pool = make_pool(root, recorder)
        await pool.start([spec(root, "functions/api.handler", id="api")])
        try:
            pids = []
            for n in range(5):
                result = await pool.invoke("api", _event({"n": n}))
                assert result.ok, result.body
                body = json.loads(result.body)
                assert body["event"] == {"n": n}
                pids.append(body["pid"])
            return pids
        finally:
            await pool.close()

    pids = run(go())
    assert len(set(pids)) == 1


def test_workers_run_as_batch_processes_and_pylive_does_not(
    tmp_path: Path, recorder: Recorder
) -> None:
    """A woken batch process does not preempt pylive's event loop (sandbox/fork_server.py)."""
    root = _app(tmp_path)

    async def go() -> int:
        pool = make_pool(root, recorder)
        await pool.start([spec(root, "functions/api.scheduling", id="api")])
        try:
            result = await pool.invoke("api", b"{}")
            assert result.ok, result.body
            return int(json.loads(result.body))
        finally:
            await pool.close()

    assert run(go()) == os.SCHED_BATCH
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


def test_the_context_reaches_the_handler_exactly(tmp_path: Path, recorder: Recorder) -> None:
    """The invocation's header crosses to the worker unchanged: an integer beyond 64 bits
    and non-ASCII text in the client context, the identity; a request id pylive makes is
    a version 4 UUID, as Lambda's are, and its trace header has X-Ray's form."""
    root = _app(tmp_path)
    custom = {"big": 2**64 + 1, "name": "Zoë ✓", "nested": [{"n": -(2**70)}]}

    async def go() -> list[dict[str, object]]:
        pool = make_pool(root, recorder)
        await pool.start([spec(root, "functions/api.context_of", id="c")])
        try:
            answers = []
            for request_id in (None, "given-id"):
                result = await pool.invoke(
                    "c",
                    b"{}",
                    request_id=request_id,
                    client_context={"custom": custom, "env": {}, "client": {}},
                    identity={"cognitoIdentityId": "eu-west-1:ü"},
                )
                assert result.ok, result.body
                answers.append(json.loads(result.body))
            return answers
        finally:
            await pool.close()

    made, given = run(go())
    assert made["custom"] == custom and given["custom"] == custom
    assert made["identity"] == "eu-west-1:ü"
    assert str(uuid.UUID(str(made["id"]))) == made["id"]
    assert uuid.UUID(str(made["id"])).version == 4
    assert uuid.UUID(str(made["id"])).variant == uuid.RFC_4122
    assert given["id"] == "given-id"
    trace = r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0"
    assert re.fullmatch(trace, str(made["trace"])) and made["trace"] != given["trace"]


def test_one_worker_per_concurrent_invocation(tmp_path: Path, recorder: Recorder) -> None:
    root = _app(tmp_path)
    concurrency = 6

    async def go() -> tuple[set[int], set[int]]:
        pool = make_pool(root, recorder)
        await pool.start([spec(root, "functions/api.barrier", id="b")])
        try:
            rounds = []
            for round_no in range(2):
                barrier_dir = tmp_path / f"barrier{round_no}"
                barrier_dir.mkdir()
                event = _event({"dir": str(barrier_dir), "n": concurrency})
                results = await asyncio.gather(
                    *(pool.invoke("b", event) for _ in range(concurrency))
                )
                assert all(r.ok for r in results)
                rounds.append({json.loads(r.body) for r in results})
            return rounds[0], rounds[1]
        finally:
            await pool.close()

    first, second = run(go())
    assert len(first) == concurrency  # each concurrent invocation had its own process
    assert second == first  # and the idle workers were reused, not replaced


def test_timeout_kills_and_replaces_the_worker(tmp_path: Path, recorder: Recorder) -> None:
    root = _app(tmp_path)

    async def go() -> None:
        pool = make_pool(root, recorder)
        await pool.start(
            [
                spec(root, "functions/api.slow", id="slow", timeout=0.5),
                spec(root, "functions/api.handler", id="ok"),
            ]
        )
        try:
            first = await pool.invoke("slow", _event({"seconds": 0}))
            assert first.ok
            pid = await _pid_of(pool, "slow")
            result = await pool.invoke("slow", _event({"seconds": 60}), request_id="req-1")
            assert not result.ok
            error = json.loads(result.body)
            assert re.fullmatch(
                r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z req-1 Task timed out after 0\.50 seconds",
                error["errorMessage"],
            )
            # As Lambda writes it to the function's log: on the console too.
            assert ("slow", error["errorMessage"]) in recorder.lines
            await _wait_dead(pid)
            again = await pool.invoke("slow", _event({"seconds": 0}))
            assert again.ok and json.loads(again.body) == "slept"
        finally:
            await pool.close()

    run(go())


def test_a_response_over_lambdas_limit_fails_like_lambda(
    tmp_path: Path, recorder: Recorder
) -> None:
    root = _app(tmp_path)
    limit = 6291556  # Lambda's, as its error message says
    too_large = {
        "errorMessage": "Response payload size exceeded maximum allowed payload size "
        "(6291556 bytes).",
        "errorType": "Function.ResponseSizeTooLarge",
    }

    async def go() -> None:
        pool = make_pool(root, recorder)
        await pool.start([spec(root, "functions/api.sized", id="sized")])
        try:
            at_limit = await pool.invoke("sized", _event({"size": limit}))
            assert at_limit.ok and len(at_limit.body) == limit
            pid = await _pid_of(pool, "sized")
            over = await pool.invoke("sized", _event({"size": limit + 1}))
            assert not over.ok and json.loads(over.body) == too_large
            assert over.content_type == "application/json"
            assert (
                "sized",
                "Function.ResponseSizeTooLarge: the response is 6291557 bytes, over Lambda's "
                "limit of 6291556 bytes (return a reference, such as an S3 URL, instead)",
            ) in recorder.lines
            await _wait_dead(pid)  # its answer refused, Lambda's runtime exits
            raw = await pool.invoke("sized", _event({"size": limit + 1, "raw": True}))
            assert not raw.ok and json.loads(raw.body) == too_large
            again = await pool.invoke("sized", _event({"size": 12}))
            assert again.ok and again.body == b'"xxxxxxxxxx"'
        finally:
            await pool.close()

    run(go())


async def _pid_of(pool: object, function_id: str) -> int:
    from pylive.runner.pool import WorkerPool

    assert isinstance(pool, WorkerPool)
    state = pool._functions[function_id]
    assert state.idle, "expected an idle worker"
    return state.idle[-1].pid


async def _wait_dead(pid: int, timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while alive(pid):
            await asyncio.sleep(0.01)


def test_crashing_worker_gives_exit_error_and_next_request_works(
    tmp_path: Path, recorder: Recorder
) -> None:
    root = _app(tmp_path)

    async def go() -> None:
        pool = make_pool(root, recorder)
        await pool.start(
            [
                spec(root, "functions/api.exits", id="exits"),
                spec(root, "functions/api.killed", id="killed"),
                spec(root, "functions/api.sys_exit", id="sys_exit"),
            ]
        )
        try:
            cases = [
                ("exits", {"code": 3}, "exit status 3"),
                ("killed", {"signal": "SIGKILL"}, "signal: killed"),
                ("killed", {"signal": "SIGSEGV"}, "signal: segv"),
                ("sys_exit", {}, "exit status 4"),
            ]
            for function_id, event, status in cases:
                result = await pool.invoke(function_id, _event(event), request_id="r-9")
                assert not result.ok
                message = f"RequestId: r-9 Error: Runtime exited with error: {status}"
                assert json.loads(result.body) == {
                    "errorType": "Runtime.ExitError",
                    "errorMessage": message,
                }
                assert (function_id, message) in recorder.lines
            # The pool recovers: the next request gets a fresh worker.
            ok = await pool.invoke("exits", _event({"code": 0}))
            assert json.loads(ok.body)["errorMessage"].endswith(
                "Runtime exited without providing a reason"
            )
        finally:
            await pool.close()

    run(go())


def test_a_worker_over_its_memory_size_fails_like_lambda(
    tmp_path: Path, recorder: Recorder
) -> None:
    root = _app(tmp_path)

    async def go() -> None:
        pool = make_pool(root, recorder)
        await pool.start([spec(root, "functions/api.hungry", id="hungry", memory=128)])
        try:
            over = await pool.invoke("hungry", _event({"mb": 400, "hold": 20}), request_id="r-1")
            assert json.loads(over.body) == {
                "errorType": "Runtime.OutOfMemory",
                "errorMessage": "RequestId: r-1 Error: Runtime exited with error: signal: killed",
            }
            assert over.duration_ms < 15_000  # stopped, not left to hold its memory
            report = [line for fid, line in recorder.lines if "memory size of 128 MB" in line]
            assert report and report[0].startswith("hungry used ")
            # Within the limit it runs, on a fresh worker.
            under = await pool.invoke("hungry", _event({"mb": 16}))
            assert under.ok and json.loads(under.body) == 16
        finally:
            await pool.close()

    run(go())


def test_the_memory_limit_can_be_off(tmp_path: Path, recorder: Recorder) -> None:
    root = _app(tmp_path)

    async def go() -> None:
        pool = make_pool(root, recorder, memory_limit=False)
        await pool.start([spec(root, "functions/api.hungry", id="hungry", memory=128)])
        try:
            result = await pool.invoke("hungry", _event({"mb": 200, "hold": 0.3}))
            assert result.ok and json.loads(result.body) == 200
        finally:
            await pool.close()

    run(go())


def test_output_is_relayed_with_the_function_label(tmp_path: Path, recorder: Recorder) -> None:
    root = _app(tmp_path)

    async def go() -> None:
        pool = make_pool(root, recorder)
        await pool.start([spec(root, "functions/api.printer", id="printer")])
        try:
            result = await pool.invoke("printer", _event({"n": 7}))
            assert json.loads(result.body) == "printed"
            await recorder.wait_for(lambda: len(recorder.lines) >= 2)
        finally:
            await pool.close()

    run(go())
    assert ("printer", "to stdout 7") in recorder.lines
    assert ("printer", "to stderr 7") in recorder.lines


def test_reload_of_an_imported_module_retires_workers(tmp_path: Path, recorder: Recorder) -> None:
    root = _app(tmp_path)
    util = root / "functions" / "util.py"

    async def go() -> None:
        pool = make_pool(root, recorder)
        await pool.start(
            [
                spec(root, "functions/api.handler", id="api"),
                spec(root, "functions/api.slow", id="s"),
            ]
        )
        try:
            before = json.loads((await pool.invoke("api", b"{}")).body)
            assert before["version"] == "v1"
            assert pool.affected_by([str(root / "unrelated.py")]) == []
            # Same length, same second: a stale __pycache__ entry would still say v1.
            util.write_text("VERSION = 'v2'\n")
            assert pool.affected_by([str(util)]) == ["api", "s"]
            pool.reload(["api"])
            await recorder.wait_for(lambda: any("api: reloaded" in e for e in recorder.events))
            after = json.loads((await pool.invoke("api", b"{}")).body)
            assert after["version"] == "v2"
            assert after["pid"] != before["pid"]
            assert not alive(before["pid"])
        finally:
            await pool.close()

    run(go())


def test_syntax_error_is_reported_and_the_next_save_recovers(
    tmp_path: Path, recorder: Recorder
) -> None:
    root = _app(tmp_path)
    util = root / "functions" / "util.py"

    async def go() -> None:
        pool = make_pool(root, recorder)
        await pool.start([spec(root, "functions/api.handler", id="api")])
        try:
            assert (await pool.invoke("api", b"{}")).ok
            util.write_text("VERSION = (\n")
            pool.reload(pool.affected_by([str(util)]))
            await recorder.wait_for(lambda: any("SyntaxError" in e for e in recorder.events))
            broken = await pool.invoke("api", b"{}")
            assert not broken.ok
            assert json.loads(broken.body)["errorType"] == "Runtime.UserCodeSyntaxError"
            # A failed init makes any later change a candidate for the fix.
            util.write_text("VERSION = 'fixed'\n")
            assert pool.affected_by([str(root / "anything.py")]) == ["api"]
            pool.reload(["api"])
            fixed = await pool.invoke("api", b"{}")
            assert json.loads(fixed.body)["version"] == "fixed"
        finally:
            await pool.close()

    run(go())


def test_close_leaves_no_process_behind(tmp_path: Path, recorder: Recorder) -> None:
    root = _app(tmp_path)

    async def go() -> list[int]:
        pool = make_pool(root, recorder)
        await pool.start([spec(root, "functions/api.handler", id="api")])
        pids = [json.loads((await pool.invoke("api", b"{}")).body)["pid"]]
        hung = asyncio.create_task(pool.invoke("api", b"{}"))  # a second, concurrent worker
        pids.append(json.loads((await hung).body)["pid"])
        zygote_pid = pool._zygote._process.pid  # type: ignore[union-attr]
        await pool.close()
        return [*pids, zygote_pid]

    for pid in run(go()):
        assert not alive(pid)


def test_a_killed_runner_takes_its_workers_along(tmp_path: Path) -> None:
    """The zygote notices its control socket closing and kills every worker."""
    root = _app(tmp_path)
    recorder = Recorder()

    async def go() -> tuple[int, int]:
        pool = make_pool(root, recorder)
        await pool.start([spec(root, "functions/api.handler", id="api")])
        worker_pid = json.loads((await pool.invoke("api", b"{}")).body)["pid"]
        zygote = pool._zygote
        zygote_pid = zygote._process.pid  # type: ignore[union-attr]
        zygote._sock.close()  # type: ignore[union-attr]  # as if the runner died
        await asyncio.to_thread(zygote._process.wait, 10)  # type: ignore[union-attr]
        await _wait_dead(worker_pid)
        return worker_pid, zygote_pid

    worker_pid, zygote_pid = run(go())
    assert not alive(worker_pid) and not alive(zygote_pid)


def test_an_init_longer_than_the_init_limit_is_an_init_timeout(
    tmp_path: Path, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lambda stops an init phase that outlasts its limit (10 s; made short here)."""
    monkeypatch.setattr("pylive.runner.spawn.INIT_TIMEOUT", 0.5)
    root = tmp_path / "app"
    write(
        root, {"functions/slow.py": "import time\ntime.sleep(30)\n\ndef h(e, c):\n    return 1\n"}
    )

    async def go() -> dict[str, object]:
        pool = make_pool(root, recorder)
        await pool.start([spec(root, "functions/slow.h", id="slow")], warm=False)
        try:
            async with asyncio.timeout(10):
                result = await pool.invoke("slow", b"{}")
            assert not result.ok
            error: dict[str, object] = json.loads(result.body)
            return error
        finally:
            await pool.close()

    error = run(go())
    assert error["errorType"] == "Runtime.InitTimeout"
    assert str(error["errorMessage"]).endswith("Task timed out after 0.50 seconds")
