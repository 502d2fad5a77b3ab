"""Instructions per request in the serving process, counted by callgrind (valgrind).

Wall-clock and CPU-time figures move by tens of percent from one run to the next on a
shared machine; the count of instructions a process executes for the same requests moves by
well under one percent, so it shows a change of a few percent in pylive's own work.

Each server runs under ``valgrind --tool=callgrind`` (its forked or spawned processes are not
counted: pylive's worker host is a process of its own); after a warm-up its counters are
zeroed, ``--requests`` keep-alive GETs are sent over ``--connections`` connections, and the
count is read. Servers, as in ``bench/throughput.py``:

- ``uvicorn_raw_asgi``: a bare uvicorn ASGI app with pylive's uvicorn settings (the floor);
- ``uvicorn_worker_pool``: the same uvicorn handing each request to a forked worker;
- ``pylive_direct``: ``pylive dev --local --direct`` with a stdlib handler.

User-space instructions only (no kernel work), so it ranks pylive's Python against the
floors; it does not give time. Needs valgrind (Debian: ``apt-get install valgrind``).

    .venv/bin/python bench/instructions.py [--requests 3200] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import common

WARMUP_REQUESTS = 400


def _server_commands(app: Path, port: int) -> dict[str, tuple[list[str], Path | None]]:
    bench = str(Path(__file__).parent)
    floor = f"import sys; sys.path.insert(0, {bench!r}); import common; common.serve_"
    return {
        "uvicorn_raw_asgi": ([common.PYTHON, "-c", f"{floor}raw_asgi({port})"], None),
        "uvicorn_worker_pool": ([common.PYTHON, "-c", f"{floor}pool_asgi({port})"], None),
        "pylive_direct": (
            [common.PYTHON, "-m", "pylive", "dev", "--local", "--direct", "--port", str(port)],
            app,
        ),
    }


async def _load(port: int, requests: int, connections: int) -> None:
    """``requests`` GETs of ``/`` over ``connections`` keep-alive connections; each must be 200."""

    async def one_connection(count: int) -> None:
        reader, writer = await asyncio.open_connection(common.HOST, port)
        request = f"GET / HTTP/1.1\r\nHost: {common.HOST}:{port}\r\n\r\n".encode()
        try:
            for _ in range(count):
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"not 200: {head[:80]!r}")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
        finally:
            writer.close()

    await asyncio.gather(*(one_connection(requests // connections) for _ in range(connections)))


def _count(
    cmd: list[str], cwd: Path | None, port: int, out: Path, requests: int, connections: int
) -> int:
    """Instructions the server's own process executed for ``requests`` requests."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "server.log", "wb") as log:
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/callgrind.%p", *cmd],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        common.wait_http_ok(common.HOST, port, timeout=600)
        asyncio.run(_load(port, WARMUP_REQUESTS, connections))
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
        asyncio.run(_load(port, requests, connections))
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
        dump = out / f"callgrind.{proc.pid}.1"
        deadline = time.monotonic() + 60
        while not _totals(dump) and time.monotonic() < deadline:
            time.sleep(0.1)  # polling a file the dump command writes
        total = _totals(dump)
        if total is None:
            raise RuntimeError(f"no callgrind dump in {dump}")
        return total // (requests - requests % connections)
    finally:
        tree = common.descendants(proc.pid)  # the worker host has a session of its own
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        common.kill_all(tree)


def _totals(dump: Path) -> int | None:
    try:
        text = dump.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    return None


def run() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3200)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("bench/instructions.py needs valgrind: apt-get install valgrind")
    machine = common.machine_info()
    per_request: dict[str, int] = {}
    with common.temp_dir("pylive-bench-instructions-") as directory:
        common.log("creating the app")
        app = common.create_app(directory, common.HELLO_ROUTE)
        port = common.free_port()
        for name, (cmd, cwd) in _server_commands(app, port).items():
            common.log(f"{name}: {args.requests} requests under callgrind")
            per_request[name] = _count(
                cmd, cwd, port, directory / name, args.requests, args.connections
            )
    floor = per_request["uvicorn_worker_pool"]
    return {
        "benchmark": "instructions",
        "machine": machine,
        "requests": args.requests,
        "connections": args.connections,
        "instructions_per_request": per_request,
        "pylive_over_worker_pool_floor": round(per_request["pylive_direct"] / floor, 2),
        "pylive_over_bare_uvicorn": round(
            per_request["pylive_direct"] / per_request["uvicorn_raw_asgi"], 2
        ),
    }


if __name__ == "__main__":
    common.main(run)
