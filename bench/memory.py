"""Memory of `pylive dev --local`: the runner and all its descendants (the worker host and the
workers), summed from /proc after warm-up.

- idle: one stdlib function, warmed by a few requests, one idle worker;
- busy: 16 concurrent requests to a stdlib handler that sleeps, measured while 16 workers
  are busy (and once more after they finish, with 16 idle workers);
- reclaimed: once the idle workers beyond the warmest one have been stopped (about 30 s
  after the load), with the seconds that took.

RSS counts the pages that forked workers share with the worker host once per process, so its
sum overstates; PSS (from /proc/PID/smaps_rollup) divides shared pages among the processes
sharing them and is the fairer total. The synthesis process has exited by the time pylive is
ready, so it is not included.

    .venv/bin/python bench/memory.py [--runs 3] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import common

TARGET_IDLE_MB = 120.0
TARGET_BUSY_MB = 500.0
SLEEP_S = 2.0
RECLAIM_WAIT_S = 90.0


def by_role(snapshot: dict[str, Any]) -> dict[str, Any]:
    roles: dict[str, dict[str, Any]] = {}
    for process in snapshot["by_process"]:
        entry = roles.setdefault(process["role"] or "other", {"count": 0, "rss_mb": 0.0})
        entry["count"] += 1
        entry["rss_mb"] = round(entry["rss_mb"] + process["rss_mb"], 1)
        if process["pss_mb"] is not None:
            entry["pss_mb"] = round(entry.get("pss_mb", 0.0) + process["pss_mb"], 1)
    workers = [p for p in snapshot["by_process"] if p["role"] == "worker"]
    if workers:
        roles["worker"]["median_rss_mb"] = common.median(p["rss_mb"] for p in workers)
        if all(p["pss_mb"] is not None for p in workers):
            roles["worker"]["median_pss_mb"] = common.median(p["pss_mb"] for p in workers)
    return {"rss_mb": snapshot["rss_mb"], "pss_mb": snapshot["pss_mb"], "by_role": roles}


def snapshot(runner: int) -> dict[str, Any]:
    return by_role(common.tree_memory(runner, common.pylive_roles(runner)))


def one_session(app: Path, concurrency: int) -> dict[str, Any]:
    with common.DevServer(app, extra_args=["--direct"]) as server:
        server.wait_ready()
        host, port = server.host_port
        runner = server.proc.pid
        client = common.Client(host, port)
        try:
            for _ in range(50):
                status, _ = client.get("/")
                assert status == 200, status
        finally:
            client.close()
        time.sleep(1.0)
        idle = snapshot(runner)
        idle["workers"] = common.count_workers(runner)

        done: list[int] = []

        def request() -> None:
            sleeper = common.Client(host, port, timeout=30)
            try:
                status, _ = sleeper.get(f"/?sleep={SLEEP_S}")
                done.append(status)
            finally:
                sleeper.close()

        threads = [threading.Thread(target=request, daemon=True) for _ in range(concurrency)]
        t0 = time.perf_counter()
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while common.count_workers(runner) < concurrency and time.monotonic() < deadline:
            time.sleep(0.01)
        all_there_s = time.perf_counter() - t0
        time.sleep(0.3)  # the last workers finish importing the handler
        busy = snapshot(runner)
        busy["workers"] = common.count_workers(runner)
        busy["finished_requests_when_measured"] = len(done)
        busy["seconds_until_all_workers_existed"] = round(all_there_s, 3)
        server.remember_tree()
        for thread in threads:
            thread.join(30)
        busy["statuses"] = sorted(set(done))
        time.sleep(0.5)
        after = snapshot(runner)
        after["workers"] = common.count_workers(runner)
        # Idle workers beyond the warmest one are reclaimed (pylive.runner.upkeep).
        t0 = time.perf_counter()
        deadline = time.monotonic() + RECLAIM_WAIT_S
        while common.count_workers(runner) > 1 and time.monotonic() < deadline:
            time.sleep(0.25)
        reclaimed = snapshot(runner)
        reclaimed["workers"] = common.count_workers(runner)
        reclaimed["seconds_after_load"] = round(time.perf_counter() - t0 + 0.5, 1)
    return {"idle": idle, "busy": busy, "idle_after_load": after, "reclaimed": reclaimed}


def run() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="dev sessions, each measured once")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    machine = common.machine_info()
    sessions = []
    with common.temp_dir("pylive-bench-memory-") as directory:
        app = common.create_app(directory, common.HELLO_ROUTE)
        for index in range(args.runs):
            sessions.append(one_session(app, args.concurrency))
            s = sessions[-1]
            common.log(
                f"session {index + 1}: idle {s['idle']['rss_mb']} MB RSS / "
                f"{s['idle']['pss_mb']} MB PSS; busy ({s['busy']['workers']} workers) "
                f"{s['busy']['rss_mb']} MB RSS / {s['busy']['pss_mb']} MB PSS"
            )

    def med(phase: str, key: str) -> float | None:
        values = [s[phase][key] for s in sessions if s[phase][key] is not None]
        return round(statistics.median(values), 1) if values else None

    return {
        "benchmark": "memory",
        "what": "RSS/PSS of pylive dev --local and all its descendants, from /proc",
        "machine": machine,
        "target": {
            "idle_one_worker_rss_mb": TARGET_IDLE_MB,
            f"busy_{args.concurrency}_workers_rss_mb": TARGET_BUSY_MB,
        },
        "results": {
            "idle_one_worker": {
                **common.verdict(med("idle", "rss_mb") or 0.0, TARGET_IDLE_MB),
                "pss_mb": med("idle", "pss_mb"),
            },
            f"busy_{args.concurrency}_workers": {
                **common.verdict(med("busy", "rss_mb") or 0.0, TARGET_BUSY_MB),
                "pss_mb": med("busy", "pss_mb"),
            },
            f"idle_after_load_{args.concurrency}_workers": {
                "rss_mb": med("idle_after_load", "rss_mb"),
                "pss_mb": med("idle_after_load", "pss_mb"),
            },
            "after_idle_workers_reclaimed": {
                "rss_mb": med("reclaimed", "rss_mb"),
                "pss_mb": med("reclaimed", "pss_mb"),
                "seconds_after_load": med("reclaimed", "seconds_after_load"),
            },
        },
        "note": "medians over sessions; RSS double counts pages shared by forked workers",
        "sessions": sessions,
    }


if __name__ == "__main__":
    common.main(run)
