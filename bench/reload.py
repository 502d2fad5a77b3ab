"""Reload: from a file save to the first HTTP response served by the new code.

A client polls `pylive dev --local` every 5 ms on a keep-alive connection while the handler
file is rewritten with a new marker; the time from just before the write to the first
response carrying the marker is one sample. Done for a stdlib handler and for one that
imports boto3. Baselines measured in the same run: watchfiles' own write-to-event latency
with step=5 ms, and a fresh interpreter importing boto3.

    .venv/bin/python bench/reload.py [--runs 15]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import time
import uuid
from pathlib import Path
from typing import Any

import common

TARGET_P50_MS = 50.0
POLL_INTERVAL_S = 0.005
RELOAD_TIMEOUT_S = 10.0
KINDS = {"stdlib": ("functions/hello.py", "/"), "boto3": ("functions/aws.py", "/aws")}


def save(path: Path, text: str) -> None:
    """What an editor does on save: truncate and write in place, in one write."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def one_reload(client: common.Client, file: Path, kind: str, route: str) -> dict[str, Any]:
    marker = f"m-{uuid.uuid4().hex[:12]}"
    text = common.handler_source(kind, marker)
    stale = errors = 0
    t0 = time.perf_counter()
    save(file, text)
    polls = 0
    while True:
        polls += 1
        status, body = client.get(route)
        now = time.perf_counter()
        if status == 200 and marker.encode() in body:
            return {"ms": (now - t0) * 1000, "polls": polls, "stale": stale, "errors": errors}
        if status == 200:
            stale += 1
        else:
            errors += 1
        if now - t0 > RELOAD_TIMEOUT_S:
            return {"ms": None, "polls": polls, "stale": stale, "errors": errors}
        # Next tick of a 5 ms grid that starts at the save.
        next_tick = t0 + POLL_INTERVAL_S * (int((now - t0) / POLL_INTERVAL_S) + 1)
        time.sleep(max(0.0, next_tick - time.perf_counter()))


def measure_reloads(app: Path, runs: int, warmup: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with common.DevServer(app, extra_args=["--direct"]) as server:
        server.wait_ready()
        host, port = server.host_port
        client = common.Client(host, port, timeout=RELOAD_TIMEOUT_S)
        try:
            for _, route in KINDS.values():
                for _ in range(20):
                    status, _ = client.get(route)
                    assert status == 200, (route, status)
            samples: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
            order = [kind for _ in range(warmup + runs) for kind in KINDS]
            for index, kind in enumerate(order):
                file, route = KINDS[kind]
                # A random pause: saves land at any phase of the watcher's step.
                time.sleep(random.uniform(0.15, 0.3))
                sample = one_reload(client, app / file, kind, route)
                if index >= warmup * len(KINDS):
                    samples[kind].append(sample)
                shown = "timeout" if sample["ms"] is None else f"{sample['ms']:.1f} ms"
                common.log(f"reload {kind:<6} #{index // len(KINDS) + 1}: {shown}")
        finally:
            client.close()
        reported = reported_reload_ms(server.output())
    for kind, taken in samples.items():
        values = [s["ms"] for s in taken if s["ms"] is not None]
        function = "hello" if kind == "stdlib" else "aws"
        results[kind] = {
            "unit": "ms",
            **common.summary(values, 1),
            "timeouts": sum(1 for s in taken if s["ms"] is None),
            "stale_responses": sum(s["stale"] for s in taken),
            "error_responses": sum(s["errors"] for s in taken),
            "samples_ms": [None if s["ms"] is None else round(s["ms"], 1) for s in taken],
            "runner_reported_reload_ms": common.summary(reported.get(function, [0.0]), 1),
            "target_p50_ms": common.verdict(common.median(values, 1), TARGET_P50_MS),
        }
    return results


def reported_reload_ms(output: str) -> dict[str, list[float]]:
    """The runner's own "<function>: reloaded in N ms" (from the watcher event to a ready
    worker)."""
    found: dict[str, list[float]] = {}
    for function, ms in re.findall(r"(\w+): reloaded in (\d+) ms", output):
        found.setdefault(function, []).append(float(ms))
    return found


async def _watchfiles_latency(directory: Path, runs: int) -> list[float]:
    from watchfiles import awatch

    stop = asyncio.Event()
    events: asyncio.Queue[float] = asyncio.Queue()

    async def watch() -> None:
        async for _ in awatch(directory, step=5, stop_event=stop, rust_timeout=1000):
            events.put_nowait(time.perf_counter())

    task = asyncio.create_task(watch())
    target = directory / "handler.py"
    target.write_text("x = 0\n")
    samples: list[float] = []
    try:
        await asyncio.sleep(0.3)
        while not events.empty():
            events.get_nowait()
        for index in range(runs + 2):
            await asyncio.sleep(random.uniform(0.15, 0.3))
            t0 = time.perf_counter()
            save(target, f"x = {index + 1}\n")
            t1 = await asyncio.wait_for(events.get(), 5)
            if index >= 2:
                samples.append((t1 - t0) * 1000)
            await asyncio.sleep(0.05)
            while not events.empty():
                events.get_nowait()
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    return samples


def baselines(directory: Path, runs: int) -> dict[str, Any]:
    watched = directory / "watched"
    watched.mkdir()
    common.log("baseline: watchfiles write -> event, step=5 ms")
    latency = asyncio.run(_watchfiles_latency(watched, runs))
    common.log("baseline: fresh interpreters")
    return {
        "watchfiles_write_to_event_step5": {"unit": "ms", **common.summary(latency, 2)},
        "python_c_pass": common.timed_command([common.PYTHON, "-c", "pass"], 5),
        "python_c_import_boto3": common.timed_command([common.PYTHON, "-c", "import boto3"], 5),
    }


def run() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="measured reloads per handler")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured reloads first")
    args = parser.parse_args()
    machine = common.machine_info()
    with common.temp_dir("pylive-bench-reload-") as directory:
        common.log("creating the app")
        app = common.create_app(directory, common.BOTH_ROUTES, with_boto3=True)
        base = baselines(directory, args.runs)
        common.log(f"measuring {args.runs} reloads per handler")
        reloads = measure_reloads(app, args.runs, args.warmup)
    return {
        "benchmark": "reload",
        "what": "file save -> first HTTP response with the new code, client polling every 5 ms",
        "machine": machine,
        "target": {"p50_ms": TARGET_P50_MS, "applies_to": list(KINDS)},
        "runs_per_handler": args.runs,
        "reload": reloads,
        "baseline": base,
    }


if __name__ == "__main__":
    common.main(run)
