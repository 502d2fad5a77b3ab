"""Bundling a function with five dependencies for Lambda: cold (no pylive bundle cache) and
from the cache. Prints one JSON object; progress goes to stderr.

    .venv/bin/python bench/bundle.py [--runs 5] [--installer uv|pip]

Cold runs delete the app's `.pylive/bundles` first; the installer's own download cache (uv's,
pip's) stays warm after the first run, as on a developer's machine. The very first install
(installer cache empty too) is reported separately as `first_install_s`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import common

from pylive.cdk.bundle import bundle_function
from pylive.cdk.install import find_uv

# Five direct dependencies (nine packages once resolved), pure Python and binary wheels.
REQUIREMENTS = ["requests", "pyjwt", "python-dateutil", "attrs", "orjson"]
TARGET_COLD_S = 3.0
TARGET_CACHED_S = 0.5


def make_app(directory: Path) -> Path:
    app = directory / "app"
    (app / "functions").mkdir(parents=True)
    (app / "pyproject.toml").write_text('[project]\nname = "b"\n\n[tool.pylive]\nname = "b"\n')
    (app / "requirements.txt").write_text("\n".join(REQUIREMENTS) + "\n")
    (app / "functions" / "hello.py").write_text(
        "import requests\n\ndef handler(event, context):\n    return requests.__version__\n"
    )
    return app


def timed(app: Path) -> tuple[float, bool]:
    started = time.perf_counter()
    result = bundle_function(app, app)
    return time.perf_counter() - started, result.cached


def run(runs: int, installer: str) -> dict[str, object]:
    os.environ["PYLIVE_INSTALLER"] = installer
    with tempfile.TemporaryDirectory(prefix="pylive-bench-bundle-") as tmp:
        app = make_app(Path(tmp))
        cache_env = "UV_CACHE_DIR" if installer == "uv" else "PIP_CACHE_DIR"
        previous = os.environ.get(cache_env)
        os.environ[cache_env] = str(Path(tmp) / "installer-cache")
        common.log(f"first install ({installer}, empty installer cache)")
        first, _ = timed(app)
        if previous is None:
            os.environ.pop(cache_env)
        else:
            os.environ[cache_env] = previous
        cold, cached = [], []
        for i in range(runs):
            shutil.rmtree(app / ".pylive" / "bundles", ignore_errors=True)
            seconds, hit = timed(app)
            assert not hit
            cold.append(seconds)
            seconds, hit = timed(app)
            assert hit
            cached.append(seconds)
            common.log(f"run {i + 1}: cold {cold[-1]:.3f} s, cached {cached[-1] * 1000:.1f} ms")
        bundle_dir = next((app / ".pylive" / "bundles").iterdir())
        size_mb = sum(p.stat().st_size for p in bundle_dir.rglob("*") if p.is_file()) / 2**20
    cold_median = common.median(cold)
    cached_median = common.median(cached, 4)
    return {
        "benchmark": "bundle",
        "installer": installer,
        "uv": find_uv(),
        "requirements": REQUIREMENTS,
        "bundle_mb": round(size_mb, 1),
        "first_install_s": round(first, 3),
        "cold_s": common.summary(cold),
        "cached_s": common.summary(cached, 4),
        "target": {
            "cold_s": common.verdict(cold_median, TARGET_COLD_S),
            "cached_s": common.verdict(cached_median, TARGET_CACHED_S),
        },
        "machine": common.machine_info(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--installer", choices=["uv", "pip"], default="uv")
    args = parser.parse_args()
    common.main(lambda: run(args.runs, args.installer))
