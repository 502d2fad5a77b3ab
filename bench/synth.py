"""Synthesis of the aurora template app for `pylive deploy` (bundling included), cold: the
app's .pylive/ (bundle cache) is deleted before every run. Target: <= 10 s.

    .venv/bin/python bench/synth.py [--runs 3]

Baseline in the same run: `python -c "import aws_cdk"` (what every synthesis pays first).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import time
from typing import Any

import common

TARGET_COLD_S = 10.0


def run(runs: int) -> dict[str, Any]:
    with common.temp_dir("pylive-bench-synth-") as tmp:
        app = tmp / "aurora"
        subprocess.run(
            [common.PYTHON, "-m", "pylive", "init", str(app), "-t", "aurora", "--no-env"],
            check=True,
            capture_output=True,
        )
        samples = []
        for n in range(runs):
            shutil.rmtree(app / ".pylive", ignore_errors=True)
            t0 = time.perf_counter()
            subprocess.run(
                [common.PYTHON, "-m", "pylive", "synth", "--out", str(tmp / f"out{n}")],
                cwd=app,
                check=True,
                capture_output=True,
                timeout=300,
            )
            samples.append(time.perf_counter() - t0)
            common.log(f"synth run {n}: {samples[-1]:.2f} s")
        baseline = common.timed_command([common.PYTHON, "-c", "import aws_cdk"], 3)
    cold = common.median(samples)
    return {
        "benchmark": "synth",
        "what": "pylive synth of the aurora template app, bundle cache emptied before each run",
        "machine": common.machine_info(),
        "target": {"cold_s": TARGET_COLD_S},
        "results": {"cold_s": common.verdict(cold, TARGET_COLD_S)},
        "runs_s": {"unit": "s", **common.summary(samples)},
        "baseline": {"import_aws_cdk_ms": baseline},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    common.main(lambda: run(args.runs))
