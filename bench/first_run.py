"""The first minutes of a new app on a machine with Python only: `pylive init --template
aurora` including the app's environment (.venv), with uv's cache cold and warm, and the first
`pylive dev --local` (the CDK app synthesized) with no Node.js on PATH.

    .venv/bin/python bench/first_run.py [--runs 3]

Baselines in the same run: `pylive init --no-env` (copying the template), `uv venv` and
`python -m venv` (an empty environment), `uv venv` + `uv pip install` of the same packages
with the warm cache (the floor for the environment), and the first `pylive dev --local` with
the machine's Node.js (when it has one; named in JSII_NODE, as pylive passes over a node
older than 22 on PATH).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import common
from nodeless import path_without_node  # bench/common.py puts tests/ on sys.path

from pylive import appenv

TARGET_INIT_WARM_S = 5.0
TARGET_READY_NO_NODE_S = 15.0


@contextlib.contextmanager
def environment(**changes: str | None) -> Iterator[None]:
    """``os.environ`` with ``changes`` (None removes) while the block runs: every process
    the benchmark starts inherits it."""
    saved = {name: os.environ.get(name) for name in changes}
    try:
        for name, value in changes.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def timed(args: list[str], *, cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(args, cwd=cwd, check=True, capture_output=True, timeout=900)
    return round(time.perf_counter() - started, 3)


def init_app(directory: Path, name: str, *extra: str) -> float:
    return timed(
        [common.PYTHON, "-m", "pylive", "init", name, "--template", "aurora", *extra],
        cwd=directory,
    )


def first_dev(app: Path) -> dict[str, Any]:
    shutil.rmtree(app / ".pylive", ignore_errors=True)  # synthesize, as a first start does
    with common.DevServer(app) as server:
        ready = server.wait_ready(timeout=300)
        return {"ready_line_s": round(ready, 3), "self_reported_s": server.reported_ready_s}


def run() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    machine = common.machine_info()
    uv = appenv.find_uv()
    results: dict[str, list[float]] = {
        "init_cold_cache_s": [],
        "init_warm_cache_s": [],
        "init_no_env_s": [],
        "uv_venv_s": [],
        "python_m_venv_s": [],
        "uv_venv_and_install_warm_s": [],
    }
    dev_no_node: list[dict[str, Any]] = []
    dev_node_on_path: list[dict[str, Any]] = []
    with common.temp_dir("pylive-bench-first-run-") as tmp:
        no_node = path_without_node(shadows=tmp)
        warm_cache = tmp / "uv-cache-warm"
        with environment(PATH=no_node, JSII_NODE=None, UV_CACHE_DIR=str(warm_cache)):
            init_app(tmp, "warmup")  # fills the warm cache
            for n in range(args.runs):
                with environment(UV_CACHE_DIR=str(tmp / f"uv-cache-cold-{n}")):
                    results["init_cold_cache_s"].append(init_app(tmp, f"cold{n}"))
                shutil.rmtree(tmp / f"uv-cache-cold-{n}", ignore_errors=True)
                results["init_warm_cache_s"].append(init_app(tmp, f"warm{n}"))
                results["init_no_env_s"].append(init_app(tmp, f"bare{n}", "--no-env"))
                results["uv_venv_s"].append(
                    timed([uv, "venv", "--quiet", "--python", common.PYTHON, f"uv{n}"], cwd=tmp)
                )
                results["python_m_venv_s"].append(
                    timed([common.PYTHON, "-m", "venv", "--without-pip", f"venv{n}"], cwd=tmp)
                )
                floor = tmp / f"floor{n}"
                plan = appenv.plan(tmp / "warmup")
                started = time.perf_counter()
                subprocess.run(
                    [uv, "venv", "--quiet", "--python", common.PYTHON, str(floor)],
                    check=True,
                    capture_output=True,
                )
                subprocess.run(
                    [uv, "pip", "install", "--quiet", "--python", str(floor / "bin" / "python"),
                     "-r", str(plan.requirements_file), *plan.packages],
                    check=True,
                    capture_output=True,
                    timeout=900,
                )  # fmt: skip
                results["uv_venv_and_install_warm_s"].append(
                    round(time.perf_counter() - started, 3)
                )
                common.log(f"init #{n + 1}: { {k: v[-1] for k, v in results.items()} }")
            app = tmp / "warmup"
            for n in range(args.runs):
                dev_no_node.append(first_dev(app))
                common.log(f"first dev, no node on PATH #{n + 1}: {dev_no_node[-1]}")
        machine_node = shutil.which("node")
        if machine_node:
            for n in range(args.runs):
                # JSII_NODE: pylive passes over a node older than 22 on PATH
                with environment(JSII_NODE=machine_node):
                    dev_node_on_path.append(first_dev(tmp / "warmup"))
                common.log(f"first dev, node on PATH #{n + 1}: {dev_node_on_path[-1]}")
    medians = {name: common.median(values) for name, values in results.items()}
    ready_no_node = common.median(s["ready_line_s"] for s in dev_no_node)
    return {
        "benchmark": "first_run",
        "what": "pylive init --template aurora with its .venv (uv cache cold / warm), and the "
        "first pylive dev --local (synthesis included) with no Node.js on PATH",
        "machine": machine,
        "target": {"init_warm_s": TARGET_INIT_WARM_S, "ready_no_node_s": TARGET_READY_NO_NODE_S},
        "init": {
            "median_cold_cache_s": medians["init_cold_cache_s"],
            "median_warm_cache_s": medians["init_warm_cache_s"],
            "warm_target_s": common.verdict(medians["init_warm_cache_s"], TARGET_INIT_WARM_S),
            "runs": results,
        },
        "first_dev_local": {
            "median_ready_no_node_s": ready_no_node,
            "target_s": common.verdict(ready_no_node, TARGET_READY_NO_NODE_S),
            "runs_no_node": dev_no_node,
            "median_ready_node_on_path_s": (
                common.median(s["ready_line_s"] for s in dev_node_on_path)
                if dev_node_on_path
                else None
            ),
            "runs_node_on_path": dev_node_on_path,
        },
        "baseline": {
            "median_init_no_env_s": medians["init_no_env_s"],
            "median_uv_venv_s": medians["uv_venv_s"],
            "median_python_m_venv_s": medians["python_m_venv_s"],
            "median_uv_venv_and_install_warm_s": medians["uv_venv_and_install_warm_s"],
        },
    }


if __name__ == "__main__":
    common.main(run)
