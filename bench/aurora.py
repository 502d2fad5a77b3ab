"""The aurora template: `pylive init` time, and `GET /items` latency under
`pylive dev --local` on the embedded database (SQLite in .pylive/) once warm.

    .venv/bin/python bench/aurora.py [--runs 5] [--requests 2000]

Targets: `pylive init` <= 2 s; GET /items p50 <= 5 ms. Baseline in the same run: the
starter template's trivial `GET /` through the same server.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
import urllib.request
from typing import Any

import common

TARGET_INIT_S = 2.0
TARGET_ITEMS_P50_MS = 5.0


def run(runs: int, requests: int) -> dict[str, Any]:
    with common.temp_dir("pylive-bench-aurora-") as tmp:
        init_samples = []
        for n in range(runs):
            t0 = time.perf_counter()
            subprocess.run(
                [
                    common.PYTHON,
                    "-m",
                    "pylive",
                    "init",
                    str(tmp / f"app{n}"),
                    "-t",
                    "aurora",
                    "--no-env",
                ],
                check=True,
                capture_output=True,
                timeout=60,
            )
            init_samples.append(time.perf_counter() - t0)
        common.log(f"init: {init_samples}")
        app = tmp / "app0"
        starter = tmp / "starter"
        subprocess.run(
            [common.PYTHON, "-m", "pylive", "init", str(starter), "--no-env"],
            check=True,
            capture_output=True,
        )
        latency: dict[str, Any] = {}
        for name, directory, path in (("items", app, "/items"), ("starter", starter, "/")):
            with common.DevServer(directory) as server:
                server.wait_ready()
                host, port = server.host_port
                if name == "items":
                    for index in range(20):  # a few rows to list
                        body = json.dumps({"name": f"item {index}"}).encode()
                        request = urllib.request.Request(
                            server.url + "/items",
                            data=body,
                            headers={"content-type": "application/json"},
                        )
                        with urllib.request.urlopen(request, timeout=30) as response:
                            assert response.status == 201, response.status
                latency[name] = common.sequential_latency(
                    host, port, path, requests=requests, warmup=200
                )
                common.log(f"{name}: {latency[name]}")
    items_p50_ms = latency["items"]["p50"] / 1000
    init_p50 = common.median(init_samples)
    return {
        "benchmark": "aurora",
        "what": "pylive init (aurora template); GET /items under pylive dev --local, embedded DB",
        "machine": common.machine_info(),
        "target": {"init_s": TARGET_INIT_S, "items_p50_ms": TARGET_ITEMS_P50_MS},
        "results": {
            "init_s": common.verdict(init_p50, TARGET_INIT_S),
            "items_p50_ms": common.verdict(round(items_p50_ms, 3), TARGET_ITEMS_P50_MS),
        },
        "init_s": {"unit": "s", **common.summary(init_samples)},
        "latency": latency,
        "baseline": {"starter_get_root_p50_us": latency["starter"]["p50"]},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    common.main(lambda: run(args.runs, args.requests))
