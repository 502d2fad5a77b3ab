"""Warm invocations through `pylive dev --local` over HTTP.

- throughput: `wrk -t2 -c16 -d5s` (16 keep-alive connections), rounds interleaved, median;
- latency: one client, sequential requests on one keep-alive connection, p50/p99;
- for a stdlib handler and a handler that imports boto3, against the same handler called
  in-process and a bare uvicorn raw ASGI app (same uvicorn settings) as the HTTP floor;
- the floor of a process per invocation: the same uvicorn handing each request to a forked
  worker over a socket pair (``common.serve_pool_asgi``), nothing else;
- CPU per request under wrk, for each server, and for pylive split between its own
  process and the function workers.

pylive prints one line per request: its stdout goes to a file here.

    .venv/bin/python bench/throughput.py [--rounds 3] [--seconds 5] [--requests 2000]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time
from pathlib import Path
from typing import Any

import common

TARGET_RPS = 5000.0
TARGET_ADDED_P50_US = 500.0


class _Context:
    function_name = "hello"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:hello"
    memory_limit_in_mb = 128
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/hello"
    log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 3000


def in_process_latency(file: Path, calls: int = 20000) -> dict[str, Any]:
    """The handler called directly, with the event pylive would build for `GET /`."""
    from pylive.invoke import sample_events

    spec = importlib.util.spec_from_file_location(f"bench_{file.stem}", file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    event = sample_events.http("us-east-1")
    context = _Context()
    handler = module.handler
    for _ in range(1000):
        handler(event, context)
    samples = []
    for _ in range(calls):
        t0 = time.perf_counter_ns()
        handler(event, context)
        samples.append((time.perf_counter_ns() - t0) / 1000)
    return {"unit": "us", **common.summary(samples, 2)}


def collect(rounds: list[dict[str, Any]], key: str) -> float:
    return common.median(r[key] for r in rounds)


def _cpu_per_request(
    before: dict[str, float], after: dict[str, float], wrk: dict[str, Any]
) -> dict[str, float]:
    """CPU microseconds per answered request, per process group (stubs: none on --direct)."""
    requests = wrk["requests"] or 1
    used = {k: (after[k] - before[k]) * 1e6 / requests for k in after if k != "stubs"}
    return {**{k: round(v, 1) for k, v in used.items()}, "total": round(sum(used.values()), 1)}


def _median_cpu(rounds: list[dict[str, Any]]) -> dict[str, float]:
    keys = rounds[0]["cpu_us_per_request"]
    return {k: common.median(r["cpu_us_per_request"][k] for r in rounds) for k in keys}


def run() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--requests", type=int, default=2000, help="sequential latency samples")
    args = parser.parse_args()
    common.require_wrk()
    machine = common.machine_info()
    with common.temp_dir("pylive-bench-throughput-") as directory:
        common.log("creating the app")
        app = common.create_app(directory, common.BOTH_ROUTES, with_boto3=True)
        raw_port, pool_port = common.free_port(), common.free_port()
        direct = common.DevServer(app, extra_args=["--direct"])
        raw, pool = common.start_raw_asgi(raw_port), common.start_pool_asgi(pool_port)
        with raw, pool, direct as server:
            server.wait_ready()
            common.wait_http_ok(common.HOST, raw_port)
            common.wait_http_ok(common.HOST, pool_port)
            host, port = server.host_port
            targets = {
                "uvicorn_raw_asgi": (common.HOST, raw_port, "/"),
                "uvicorn_worker_pool": (common.HOST, pool_port, "/"),
                "pylive_stdlib": (host, port, "/"),
                "pylive_boto3": (host, port, "/aws"),
            }
            cpu_of = {
                "uvicorn_raw_asgi": lambda: {"server": common.tree_cpu(raw.proc.pid)},
                "uvicorn_worker_pool": lambda: {"server": common.tree_cpu(pool.proc.pid)},
                "pylive_stdlib": lambda: common.cpu_groups(server.proc.pid),
                "pylive_boto3": lambda: common.cpu_groups(server.proc.pid),
            }
            wrk: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
            latency: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
            for name, (h, p, path) in targets.items():
                # Warm-up: the first run at -c16 also creates the 15 extra workers.
                common.log(f"warm-up: {name}")
                common.sequential_latency(h, p, path, requests=200, warmup=50)
                common.run_wrk(f"http://{h}:{p}{path}", connections=args.connections, seconds=2)
            for index in range(args.rounds):
                for name, (h, p, path) in targets.items():
                    common.log(f"round {index + 1}: {name} latency ({args.requests} requests)")
                    latency[name].append(
                        common.sequential_latency(h, p, path, requests=args.requests, warmup=100)
                    )
                    common.log(f"round {index + 1}: {name} wrk -c{args.connections}")
                    before = cpu_of[name]()
                    result = common.run_wrk(
                        f"http://{h}:{p}{path}", connections=args.connections, seconds=args.seconds
                    )
                    result["cpu_us_per_request"] = _cpu_per_request(before, cpu_of[name](), result)
                    common.log(f"  {result['requests_per_s']:.0f} req/s")
                    wrk[name].append(result)
                    time.sleep(0.5)
            workers = common.count_workers(server.proc.pid)
    common.log("in-process handler calls")
    with common.temp_dir("pylive-bench-inproc-") as directory:
        functions = directory / "functions"
        functions.mkdir()
        (functions / "hello.py").write_text(common.handler_source("stdlib", "v0"))
        (functions / "aws.py").write_text(common.handler_source("boto3", "v0"))
        in_process = {
            "stdlib": in_process_latency(functions / "hello.py"),
            "boto3": in_process_latency(functions / "aws.py"),
        }

    summary: dict[str, Any] = {}
    for name in targets:
        summary[name] = {
            "wrk_median_requests_per_s": collect(wrk[name], "requests_per_s"),
            "wrk_median_p50_us": collect(wrk[name], "p50_us"),
            "wrk_median_p99_us": collect(wrk[name], "p99_us"),
            "wrk_non_2xx": sum(r["non_2xx"] for r in wrk[name]),
            "wrk_median_cpu_us_per_request": _median_cpu(wrk[name]),
            "sequential_median_p50_us": collect(latency[name], "p50"),
            "sequential_median_p99_us": collect(latency[name], "p99"),
            "sequential_non_200": sum(r["non_200"] for r in latency[name]),
        }
    stdlib, boto3, raw = (
        summary["pylive_stdlib"],
        summary["pylive_boto3"],
        summary["uvicorn_raw_asgi"],
    )
    added = {
        kind: round(
            summary[f"pylive_{kind}"]["sequential_median_p50_us"] - in_process[kind]["p50"], 1
        )
        for kind in ("stdlib", "boto3")
    }
    return {
        "benchmark": "throughput",
        "what": "warm invocations over HTTP through pylive dev --local (stdout to a file)",
        "machine": machine,
        "target": {
            "requests_per_s_c16": TARGET_RPS,
            "added_p50_us_over_in_process": TARGET_ADDED_P50_US,
            "boto3_handler": "no extra cost once warm",
        },
        "settings": {
            "wrk": f"wrk -t2 -c{args.connections} -d{args.seconds}s --latency",
            "rounds": args.rounds,
            "sequential_requests_per_round": args.requests,
            "workers_after_load": workers,
        },
        "results": {
            "throughput_stdlib": common.verdict(
                stdlib["wrk_median_requests_per_s"], TARGET_RPS, higher_is_better=True
            ),
            "throughput_boto3": common.verdict(
                boto3["wrk_median_requests_per_s"], TARGET_RPS, higher_is_better=True
            ),
            "added_p50_us_stdlib": common.verdict(added["stdlib"], TARGET_ADDED_P50_US),
            "added_p50_us_boto3": common.verdict(added["boto3"], TARGET_ADDED_P50_US),
            # What a process per invocation allows here, and pylive's share of it.
            "requests_per_s_share_of_worker_pool_floor": round(
                stdlib["wrk_median_requests_per_s"]
                / summary["uvicorn_worker_pool"]["wrk_median_requests_per_s"],
                3,
            ),
            "cpu_us_per_request": {
                name: summary[name]["wrk_median_cpu_us_per_request"] for name in summary
            },
            "added_p50_us_over_bare_uvicorn": round(
                stdlib["sequential_median_p50_us"] - raw["sequential_median_p50_us"], 1
            ),
            "boto3_vs_stdlib": {
                "requests_per_s_ratio": round(
                    boto3["wrk_median_requests_per_s"] / stdlib["wrk_median_requests_per_s"], 3
                ),
                "p50_us_difference": round(
                    boto3["sequential_median_p50_us"] - stdlib["sequential_median_p50_us"], 1
                ),
            },
        },
        "summary": summary,
        "in_process": in_process,
        "rounds": {
            "wrk": wrk,
            "sequential_latency": {
                name: [{k: r[k] for k in ("p50", "p90", "p99", "max")} for r in rounds]
                for name, rounds in latency.items()
            },
        },
        "note": "medians over rounds; the servers are measured in turn within each round",
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "stdev_requests_per_s": {
            name: round(statistics.pstdev(r["requests_per_s"] for r in rounds), 1)
            for name, rounds in wrk.items()
        },
    }


if __name__ == "__main__":
    common.main(run)
