"""`pylive dev --local` ready time: from the process start to the ready line and to the first
200 response, cold (the app's .pylive/ deleted, so the CDK app is synthesized) and with the
infrastructure code unchanged (synthesis reused).

    .venv/bin/python bench/ready.py [--runs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import common

TARGET_COLD_S = 8.0
TARGET_UNCHANGED_S = 1.0


def one_start(app: Path) -> dict[str, Any]:
    port = common.free_port()
    first_200: list[float] = []

    stop = threading.Event()

    def poll() -> None:
        with contextlib.suppress(TimeoutError):
            first_200.append(common.wait_http_ok(common.HOST, port, timeout=120, stop=stop))

    with common.DevServer(app, port=port, extra_args=["--direct"]) as server:
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        ready_line = server.wait_ready()
        poller.join(30)
        stop.set()
        started = server.started
        synthesized = "synthesized" in server.output()
    return {
        "ready_line_s": round(ready_line, 3),
        "first_200_s": round(first_200[0] - started, 3) if first_200 else None,
        "self_reported_s": server.reported_ready_s,
        "synthesized": synthesized,
    }


def summarize(samples: list[dict[str, Any]], target: float) -> dict[str, Any]:
    first = [s["first_200_s"] for s in samples if s["first_200_s"] is not None]
    lines = [s["ready_line_s"] for s in samples if s["ready_line_s"] is not None]
    value = common.median(first)
    return {
        "median_first_200_s": value,
        "median_ready_line_s": common.median(lines),
        "runs": samples,
        "target_s": common.verdict(value, target),
    }


def run() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    machine = common.machine_info()
    cold: list[dict[str, Any]] = []
    unchanged: list[dict[str, Any]] = []
    with common.temp_dir("pylive-bench-ready-") as directory:
        app = common.create_app(directory, common.HELLO_ROUTE, synthesize=False)
        for index in range(args.runs):
            shutil.rmtree(app / ".pylive", ignore_errors=True)
            cold.append(one_start(app))
            common.log(f"cold #{index + 1}: {cold[-1]}")
        for index in range(args.runs):
            unchanged.append(one_start(app))
            common.log(f"unchanged #{index + 1}: {unchanged[-1]}")
            time.sleep(0.2)
        baseline = {
            "python_c_pass_ms": common.timed_command([common.PYTHON, "-c", "pass"], 3),
            "pylive_help_ms": common.timed_command(
                [common.PYTHON, "-m", "pylive", "--help"], 3, cwd=app
            ),
        }
    return {
        "benchmark": "ready",
        "what": "process start -> first 200 response (and -> the ready line) of pylive dev --local",
        "machine": machine,
        "target": {"cold_s": TARGET_COLD_S, "infra_unchanged_s": TARGET_UNCHANGED_S},
        "app": "pylive init starter app (one function, GET /)",
        "cold": summarize(cold, TARGET_COLD_S),
        "infra_unchanged": summarize(unchanged, TARGET_UNCHANGED_S),
        "baseline": baseline,
    }


if __name__ == "__main__":
    common.main(run)
