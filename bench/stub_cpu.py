"""The stub's CPU time per warm invocation, and what it becomes in Lambda.

Lambda gives a function CPU in proportion to its memory, one full vCPU at 1,769 MB
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html), so CPU the stub
spends on an invocation is latency in the cloud: ``cpu_ms * 1769 / memory_mb`` below that.

This process runs the real local relay (WebSocket gateway, router) with a connected runner
whose pool answers every invocation at once with the event itself (an answer of the same
size), plus a loopback HTTP sink. A child process loads the stub module as Lambda does,
points it at the relay with the stub's own role credentials, and calls its ``handler``
directly; the child measures its own process CPU (``time.process_time``: every thread, so
the threads that post a large invoke's chunks count) around N warm invocations. In the same
child and run, two baselines on the same event: ``json.dumps`` + ``json.loads`` (the least
any relay must do to the event and to its answer) and a plain HTTP POST of the encoded
event on a kept-alive loopback connection (``http.client``, answered 200 with no body).

    .venv/bin/python bench/stub_cpu.py [--runs 5] [--sizes 1024,1048576,6000000]
    .venv/bin/python bench/stub_cpu.py --profile 1048576     # cProfile of the stub's warm path
    .venv/bin/python bench/stub_cpu.py --compare /tmp/old    # against another checkout, in turns
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import http.client
import io
import json
import os
import pstats
import resource
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import common

# https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html: "at 1,769 MB, a
# function has the equivalent of one vCPU (one vCPU-second of credits per second)".
ONE_VCPU_MB = 1769
MEMORY_SIZES_MB = (128, 256, 512, 1024, 1769)
DEFAULT_SIZES = (1024, 1024 * 1024, 6_000_000)
TARGET_CPU_MS_1MB = 2.0  # the dev-mode stub's memory is chosen so a 1 MB event costs this


def invocations_for(size: int) -> int:
    """Enough invocations per run that one run takes a measurable, bounded time."""
    if size <= 64 * 1024:
        return 300
    if size <= 2 * 1024 * 1024:
        return 20
    return 6


def make_event(size: int) -> dict[str, Any]:
    """An HTTP API event whose JSON is about ``size`` bytes; its body is JSON text, whose
    quotes JSON escapes, as a POSTed document's are."""
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "POST /items",
        "rawPath": "/items",
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "host": "example.com"},
        "requestContext": {
            "http": {"method": "POST", "path": "/items", "sourceIp": "203.0.113.9"},
            "requestId": "JKJaXmPLvHcESHA=",
            "stage": "$default",
            "timeEpoch": 1764547200000,
        },
        "isBase64Encoded": False,
        "body": "",
    }
    record = '{"id":%06d,"name":"item %06d","tags":["a","b"],"price":12.5},'
    body: list[str] = []
    length = len(json.dumps(event))
    n = 0
    while length < size:
        part = record % (n, n)
        body.append(part)
        length += len(json.dumps(part)) - 2
        n += 1
    text = "[" + "".join(body).rstrip(",") + "]"
    event["body"] = text[: max(0, len(text) - (length - size))]
    return event


# -- the child: the stub in its own process ---------------------------------------------------


class _Context:
    """What the Lambda Python runtime passes the stub, with a fresh request id per call."""

    def __init__(self, timeout_s: float) -> None:
        self.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
        self.aws_request_id = ""
        self.client_context = None
        self.identity = None
        self._deadline = 0.0
        self.timeout_s = timeout_s

    def next(self) -> _Context:
        self.aws_request_id = os.urandom(16).hex()
        self._deadline = time.time() + self.timeout_s
        return self

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def _cpu(fn: Callable[[], object], n: int) -> tuple[float, float, float]:
    """CPU, of which the kernel's (system time), and wall ms per call of ``fn`` over ``n``
    calls."""
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        fn()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    system = resource.getrusage(resource.RUSAGE_SELF).ru_stime - usage0.ru_stime
    return cpu / n * 1000, system / n * 1000, wall / n * 1000


def child(config: dict[str, Any]) -> dict[str, Any]:
    sys.path.insert(0, config["code"])
    try:
        from pylive.in_lambda.handlers import stub
    except ImportError:  # a checkout from before pylive.in_lambda
        from stub import stub  # type: ignore[no-redef]

    stub.environ = config["env"]
    context = _Context(timeout_s=60.0)
    sink = http.client.HTTPConnection(common.HOST, config["sink_port"], timeout=60)
    results: dict[str, Any] = {}
    for size in config["sizes"]:
        event = make_event(size)
        encoded = json.dumps(event).encode()
        n = invocations_for(size)

        def invoke(event: dict[str, Any] = event) -> None:
            answer = stub.handler(event, context.next())
            assert answer == event, "the runner's answer is not the event"

        def codec(event: dict[str, Any] = event) -> None:
            json.loads(json.dumps(event))

        def post(body: bytes = encoded) -> None:
            sink.request("POST", "/", body=body, headers={"content-type": "application/json"})
            response = sink.getresponse()
            response.read()
            assert response.status == 200

        for warm in (invoke, invoke, codec, post):  # the first opens the relay connection
            warm()
        if config.get("profile") == size:
            profiler = cProfile.Profile(time.thread_time)  # CPU time, not waits
            profiler.enable()
            for _ in range(n):
                invoke()
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
            print(out.getvalue(), file=sys.stderr)
        keys = ("stub", "stub_system", "stub_wall", "json", "http")
        runs: dict[str, list[float]] = {k: [] for k in keys}
        for _ in range(config["runs"]):
            cpu, system, wall = _cpu(invoke, n)
            runs["stub"].append(cpu)
            runs["stub_system"].append(system)
            runs["stub_wall"].append(wall)
            runs["json"].append(_cpu(codec, n)[0])
            runs["http"].append(_cpu(post, n)[0])
        results[str(size)] = {
            "event_bytes": len(encoded),
            "invocations_per_run": n,
            "runs_ms": {k: [round(v, 4) for v in values] for k, values in runs.items()},
        }
    sink.close()
    return results


# -- the parent: the relay, the runner and the sink -------------------------------------------


@contextlib.asynccontextmanager
async def _http_sink() -> AsyncIterator[int]:
    """A loopback HTTP server that reads each request and answers 200 with no body."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, common.HOST, 0, limit=1 << 20)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def measure(
    sizes: list[int], runs: int, profile: int | None, codes: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """Each code's results; one child process per code and run, the codes in turn, so that
    whatever else loads the machine weighs on each alike."""
    from relay import _relay_with_runner

    from pylive.emulator.lambda_host import stub_function

    async with _relay_with_runner(lambda event: event) as api, _http_sink() as sink_port:
        stub_env = dict(stub_function("bench", api.stub_site("bench"), timeout=60, lambda_env={})
                        .environment)  # fmt: skip
        results: dict[str, dict[str, Any]] = {name: {} for name in codes}
        for index in range(runs):
            for name, code in codes.items():
                config = {
                    "env": stub_env,
                    "sizes": sizes,
                    "runs": 1,
                    "sink_port": sink_port,
                    "profile": profile if index == 0 else None,
                    "code": code,
                }
                common.log(f"run {index + 1}: {name}")
                proc = await asyncio.create_subprocess_exec(
                    common.PYTHON, __file__, "--child",
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                )  # fmt: skip
                out, _ = await proc.communicate(json.dumps(config).encode())
                if proc.returncode != 0:
                    raise SystemExit(f"the stub's process failed (exit {proc.returncode})")
                for size, data in json.loads(out).items():
                    kept = results[name].setdefault(size, data)
                    if kept is not data:
                        for key, values in data["runs_ms"].items():
                            kept["runs_ms"][key] += values
        return results


def _report(raw: dict[str, Any]) -> dict[str, Any]:
    sizes = {}
    for size, data in raw.items():
        runs = data["runs_ms"]
        stub_ms = statistics.median(runs["stub"])
        json_ms = statistics.median(runs["json"])
        http_ms = statistics.median(runs["http"])
        sizes[size] = {
            "event_bytes": data["event_bytes"],
            "stub_cpu_ms": round(stub_ms, 3),
            "stub_cpu_ms_min_max": [round(min(runs["stub"]), 3), round(max(runs["stub"]), 3)],
            "stub_system_cpu_ms": round(statistics.median(runs["stub_system"]), 3),
            "stub_wall_ms": round(statistics.median(runs["stub_wall"]), 3),
            "baseline_json_dumps_loads_cpu_ms": round(json_ms, 3),
            "baseline_http_post_cpu_ms": round(http_ms, 3),
            "stub_over_json_baseline": round(stub_ms / json_ms, 2) if json_ms else None,
            "implied_cloud_latency_ms": {
                f"{mb}MB": round(stub_ms * ONE_VCPU_MB / min(mb, ONE_VCPU_MB), 2)
                for mb in MEMORY_SIZES_MB
            },
            "memory_for_target_mb": min_memory(stub_ms, TARGET_CPU_MS_1MB),
            "raw_runs_ms": runs,
        }
    return sizes


def min_memory(cpu_ms: float, target_ms: float) -> int:
    """The least memory (MB, Lambda's 1 MB steps from 128) at which ``cpu_ms`` of one vCPU
    takes at most ``target_ms``."""
    needed = cpu_ms * ONE_VCPU_MB / target_ms
    return int(min(max(128, -(-needed // 1)), 10240))


def run() -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--sizes", default=",".join(str(s) for s in DEFAULT_SIZES), help="event sizes in bytes"
    )
    parser.add_argument("--profile", type=int, help="print a cProfile of this size's path")
    parser.add_argument(
        "--compare",
        metavar="DIR",
        help="also measure the stub and pylive of another checkout (e.g. `git archive` of "
        "an older commit), in turns with this one",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    machine = common.machine_info()
    codes = {"this": str(common.REPO)}
    if args.compare:
        codes["compared"] = str(Path(args.compare).resolve())
    common.log(f"measuring the stub's CPU per warm invocation, {args.runs} runs per size")
    raw = asyncio.run(measure(sizes, args.runs, args.profile, codes))
    result = {
        "benchmark": "stub_cpu",
        "machine": machine,
        "runs": args.runs,
        "cpu_per_memory": {
            "one_vcpu_at_mb": ONE_VCPU_MB,
            "source": "https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html",
        },
        "target_cpu_ms_at_1mb_event": TARGET_CPU_MS_1MB,
        "sizes": _report(raw["this"]),
    }
    if args.compare:
        result["compared"] = {"code": codes["compared"], "sizes": _report(raw["compared"])}
    return result


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        print(json.dumps(child(json.load(sys.stdin))))
    else:
        common.main(run)
