"""What recording invocations (the console's source) costs.

- per invocation: warm invocations of a trivial handler on a real worker pool, with the
  record on (ring, file, one listener as the terminal and the live stream have) and off
  alternating invocation by invocation on the same pool and workers; each round's median
  of each, then the median over rounds of on against off, beside the spread of the off
  rounds (the noise);
- the record's own calls (begin + end) timed in-process, without a worker;
- memory of the ring at its bound: MAX_RECORDS invocations of a typical HTTP API request
  (a ~1 KB event) and of the worst case (event, result and output each at their 32 KB cap),
  measured with tracemalloc.

    .venv/bin/python bench/console.py [--rounds 9] [--invocations 400]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import common

from pylive.cdk.manifest import FunctionSpec
from pylive.invoke.sample_events import sample_event
from pylive.runner import record as record_module
from pylive.runner.pool import PoolOptions, WorkerPool
from pylive.runner.record import InvocationLog

HANDLER = "def handler(event, context):\n    return {'statusCode': 200, 'body': 'ok'}\n"


async def _rounds(root: Path, rounds: int, invocations: int) -> dict[str, list[float]]:
    (root / "functions").mkdir()
    (root / "functions" / "hello.py").write_text(HANDLER)
    log = InvocationLog(root / ".pylive")
    seen = [0]
    log.subscribe(lambda record, kind: seen.__setitem__(0, seen[0] + 1))
    options = PoolOptions(base_env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    pool = WorkerPool(Path(sys.executable), root, options)
    spec = FunctionSpec(id="hello", handler="functions/hello.handler", code_dir=str(root))
    event = json.dumps(sample_event("http")).encode()
    await pool.start([spec])
    results: dict[str, list[float]] = {"off": [], "on": []}
    try:
        for _ in range(50):  # warm up both ways
            await pool.invoke("hello", event)
        for n in range(rounds):
            # On and off alternate invocation by invocation (in pairs whose order flips each
            # round), so whatever else loads the machine weighs on both alike.
            samples: dict[str, list[float]] = {"off": [], "on": []}
            pair = ("off", "on") if n % 2 == 0 else ("on", "off")
            for _ in range(invocations):
                for mode in pair:
                    options.record = log if mode == "on" else None
                    started = time.perf_counter()
                    await pool.invoke("hello", event)
                    samples[mode].append((time.perf_counter() - started) * 1e6)
            for mode, values in samples.items():
                results[mode].append(statistics.median(values))
            common.log(
                f"round {n + 1}/{rounds}: off {results['off'][-1]:.1f} us, "
                f"on {results['on'][-1]:.1f} us"
            )
    finally:
        await pool.close()
        log.close()
    assert seen[0] >= rounds * invocations, "the record did not see every invocation"
    return results


def _calls_ns(count: int = 200_000) -> float:
    """begin + end of one invocation, in-process (no worker), nanoseconds."""

    async def run() -> float:
        log = InvocationLog(None)
        log.subscribe(lambda record, kind: None)
        event, result = b'{"n": 1}', b'{"ok": true}'
        started = time.perf_counter()
        for n in range(count):
            record = log.begin("f", str(n), event)
            log.end(record, True, result, 1.0)
        took = time.perf_counter() - started
        log.close()
        return took / count * 1e9

    return asyncio.run(run())


def _ring_mb(event: bytes, result: bytes, lines: list[str]) -> float:
    async def fill() -> InvocationLog:
        log = InvocationLog(None)
        for n in range(record_module.MAX_RECORDS * 2):  # past the bound: the ring drops
            # Fresh objects each time, as invocations bring (no sharing flatters the size).
            record = log.begin("hello", f"{n:036d}", bytes(bytearray(event)))
            for line in lines:
                record.add_output(f"{n} {line}")
            log.end(record, True, bytes(bytearray(result)), 1.0)
        return log

    gc.collect()
    tracemalloc.start()
    log = asyncio.run(fill())
    gc.collect()
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(log) == record_module.MAX_RECORDS
    return round(size / 1e6, 2)


def run(args: argparse.Namespace) -> dict[str, Any]:
    with common.temp_dir("pylive-bench-console-") as root:
        rounds = asyncio.run(_rounds(root, args.rounds, args.invocations))
    off, on = common.median(rounds["off"], 1), common.median(rounds["on"], 1)
    noise = round(max(rounds["off"]) - min(rounds["off"]), 1)
    added = round(on - off, 1)
    typical_event = json.dumps(sample_event("http")).encode()
    cap = record_module.MAX_PAYLOAD_BYTES
    return {
        "benchmark": "console",
        "machine": common.machine_info(),
        "target": {"added_per_invocation": "within the noise of recording off"},
        "invocation_us": {
            "off": off,
            "on": on,
            "added": added,
            "noise_off_rounds": noise,
            "rounds": {k: [round(v, 1) for v in vs] for k, vs in rounds.items()},
            "added_per_round": [
                round(a - b, 1) for a, b in zip(rounds["on"], rounds["off"], strict=True)
            ],
            "invocations_per_round": args.invocations,
            "within_noise": {"value": added, "target": noise, "met": added <= noise},
        },
        "record_calls_ns": round(_calls_ns()),
        "ring_memory_mb": {
            "records": record_module.MAX_RECORDS,
            "typical_http": _ring_mb(
                typical_event, b'{"statusCode": 200, "body": "ok"}', ["a line of output"] * 3
            ),
            "worst_case": _ring_mb(b"e" * cap, b"r" * cap, ["o" * 1000] * 40),
            "typical_event_bytes": len(typical_event),
        },
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--invocations", type=int, default=400)
    arguments = parser.parse_args()
    common.main(lambda: run(arguments))
