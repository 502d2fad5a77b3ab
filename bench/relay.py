"""The relay path of `pylive dev --local` (HTTP API → stub → local WebSocket API + router →
runner → worker → back) against the direct path (`--direct`: HTTP API → worker).

- added latency: one client, sequential `GET /` on one keep-alive connection, relay p50/p99
  minus direct p50/p99, per round, median of rounds;
- throughput through the relay: `wrk -t2 -c16`;
- a 6 MB request + 6 MB response round trip (`POST /echo`), median;
- idle RSS/PSS of every process `pylive dev --local` starts, with one function warm;
- @connections calls per warm invocation, from the gateway's counters (in-process harness);
- CPU per request by process group during the wrk runs, and the reported ready time;
- a 6 MB invoke through the stub when every @connections call costs 20 ms more (a proxy
  holds each request), as over a real network, against posting its chunks one by one;
- the machine's HTTP floor in the same rounds: a bare uvicorn raw ASGI app (pylive's
  uvicorn settings) under the same wrk load, so that a result can be read against the
  machine it ran on (a machine that is slow at switching between processes slows the relay
  far more than it slows the floor, so the throughput target is a share of --direct's);
- the ceiling that CPU sets: the relay's requests per second if its CPU per request were
  spread perfectly over every core.

    .venv/bin/python bench/relay.py [--rounds 3] [--seconds 5] [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import common

# The performance issue's goals: one client's p50 within 0.5 ms of --direct, p99 within
# 1.5 ms, and at least half of --direct's throughput (a ratio, so it holds on any machine).
TARGET_ADDED_P50_US = 500.0
TARGET_ADDED_P99_US = 1500.0
TARGET_SHARE_OF_DIRECT = 0.5
TARGET_BIG_MS = 300.0
TARGET_IDLE_RSS_MB = 200.0
BIG = 6 * 1000 * 1000

ECHO = '''"""Echo the request body (benchmark)."""


def handler(event, context):
    return {"statusCode": 200, "headers": {"content-type": "text/plain"}, "body": event["body"]}
'''
ROUTES = {"GET /": "functions/hello.handler", "POST /echo": "functions/echo.handler"}


def big_round_trip(url: str, rounds: int = 5) -> list[float]:
    host, port = url.removeprefix("http://").split(":")
    body = b"z" * BIG
    samples = []
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        for index in range(rounds + 1):
            t0 = time.perf_counter()
            conn.request("POST", "/echo", body=body, headers={"content-type": "text/plain"})
            response = conn.getresponse()
            data = response.read()
            took = (time.perf_counter() - t0) * 1000
            assert response.status == 200 and len(data) == BIG, (response.status, len(data))
            if index:  # the first one warms the worker and the stub's container
                samples.append(took)
    finally:
        conn.close()
    return samples


@contextlib.asynccontextmanager
async def _relay_with_runner(answer: Callable[[bytes], bytes]) -> AsyncIterator[Any]:
    """The real local relay API (gateway, router; yielded) with a connected runner whose
    pool answers every invocation at once with ``answer(event)``."""
    from pylive.emulator.relay_api import LocalRelayApi
    from pylive.runner.invocation import InvokeResult
    from pylive.runner.relay import RelayClient

    class Pool:
        async def invoke(self, function_id: str, event: bytes, **_: Any) -> InvokeResult:
            return InvokeResult(True, answer(event))

    async with LocalRelayApi(app="bench", stage="dev") as api:
        stop = asyncio.Event()
        client = RelayClient(api.site, Pool(), stop=stop, log=common.log)
        task = asyncio.create_task(client.run())
        await client.connected.wait()
        try:
            yield api
        finally:
            stop.set()
            await task


def connections_calls_per_invocation(invocations: int = 200) -> dict[str, Any]:
    """The real gateway, router and stub, a runner whose pool answers at once."""
    from pylive.emulator.lambda_host import stub_function

    async def scenario() -> dict[str, Any]:
        async with _relay_with_runner(lambda event: event) as api:
            gw, host = api.gateway, api.host
            host.add(stub_function("hello", api.stub_site("hello"), timeout=3.0, lambda_env={}))
            await host.invoke("hello", b"{}")  # cold: connect + whoami
            before = dict(gw.stats.connections_calls_by_operation)
            routed = gw.stats.messages_in
            for n in range(invocations):
                result = await host.invoke("hello", json.dumps({"n": n}).encode())
                assert result.ok
            after = gw.stats.connections_calls_by_operation
        per_op = {op: (after[op] - before.get(op, 0)) / invocations for op in after}
        return {
            "per_invocation": round(sum(per_op.values()), 3),
            "by_operation": per_op,
            "router_messages_per_invocation": (gw.stats.messages_in - routed) / invocations,
        }

    return asyncio.run(scenario())


async def _delaying_proxy(target_port: int, delay_s: float) -> tuple[asyncio.Server, int]:
    """A TCP proxy that holds each HTTP request's head for ``delay_s`` (a network's round
    trip); answers pass straight back."""

    async def pipe(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, delay: bool
    ) -> None:
        try:
            while data := await reader.read(1 << 20):
                if delay and b" HTTP/1.1\r\n" in data[:300]:
                    await asyncio.sleep(delay_s)
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(common.HOST, target_port)
        await asyncio.gather(
            pipe(reader, upstream_writer, delay=True),
            pipe(upstream_reader, writer, delay=False),
            return_exceptions=True,
        )

    server = await asyncio.start_server(handle, common.HOST, 0)
    return server, server.sockets[0].getsockname()[1]


def big_invoke_over_slow_calls(delay_ms: float = 20.0, runs: int = 3) -> dict[str, Any]:
    """A 6 MB invoke through the real stub, gateway and router, each of the stub's
    @connections calls held ``delay_ms`` by a proxy; the runner answers at once."""
    import dataclasses

    from pylive.emulator.lambda_host import stub_function
    from pylive.in_lambda import protocol
    from pylive.runner.answer_posts import POST_CHUNK_BYTES

    event = {"body": "z" * (BIG - 200)}
    chunks = len(protocol.split(json.dumps(event), max_frame_bytes=POST_CHUNK_BYTES, raw=True))

    async def scenario(delay_s: float) -> list[float]:
        async with _relay_with_runner(lambda event: b'"ok"') as api:
            site = api.stub_site("hello")
            port = int(site.connections_url.rsplit(":", 1)[1].split("/", 1)[0])
            proxy, proxy_port = await _delaying_proxy(port, delay_s)
            slow = dataclasses.replace(
                site, connections_url=site.connections_url.replace(f":{port}/", f":{proxy_port}/")
            )
            api.host.add(stub_function("hello", slow, timeout=60.0, lambda_env={}))
            await api.host.invoke("hello", {"warm": True})
            samples = []
            for _ in range(runs):
                started = time.perf_counter()
                result = await api.host.invoke("hello", event)
                samples.append((time.perf_counter() - started) * 1000)
                assert result.ok, result.body[:300]
            proxy.close()
        return samples

    delayed = common.median(asyncio.run(scenario(delay_ms / 1000)), 1)
    direct = common.median(asyncio.run(scenario(0.0)), 1)
    return {
        "delay_ms_per_call": delay_ms,
        "chunks": chunks,
        "p50_ms": delayed,
        "p50_ms_without_delay": direct,
        "chunk_by_chunk_estimate_ms": round(direct + chunks * delay_ms, 1),
    }


def cpu_per_request(
    before: dict[str, float], after: dict[str, float], requests: int
) -> dict[str, float]:
    """µs of CPU per request, by process group, over a wrk run."""
    per = {k: round((after[k] - before.get(k, 0.0)) / max(requests, 1) * 1e6, 1) for k in after}
    per["total"] = round(sum(per.values()), 1)
    return per


def run() -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per run")
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    common.require_wrk()
    machine = common.machine_info()
    rounds: list[dict[str, Any]] = []
    with common.temp_dir("pylive-bench-relay-") as directory:
        common.log("creating the app")
        app = common.create_app(directory, ROUTES, synthesize=False)
        (app / "functions" / "echo.py").write_text(ECHO)
        with common.DevServer(app, extra_args=["--direct"]) as warm:
            warm.wait_ready()
        raw_port = common.free_port()
        with common.start_raw_asgi(raw_port):
            common.wait_http_ok(common.HOST, raw_port)
            for index in range(args.rounds):
                result: dict[str, Any] = {}
                common.log(f"round {index + 1}: uvicorn raw ASGI wrk -c16 (the floor)")
                result["floor_wrk"] = common.run_wrk(
                    f"http://{common.HOST}:{raw_port}/", connections=16, seconds=args.seconds
                )
                for name, extra in (("direct", ["--direct"]), ("relay", ["--relay"])):
                    with common.DevServer(app, extra_args=extra) as server:
                        server.wait_ready()
                        result[f"{name}_ready_s"] = server.reported_ready_s
                        host, port = server.url.removeprefix("http://").split(":")
                        common.sequential_latency(host, int(port), "/", requests=200, warmup=50)
                        if name == "relay":
                            common.log(f"round {index + 1}: idle memory")
                            time.sleep(2)  # let the process tree settle before measuring it
                            result["idle"] = common.tree_memory(
                                server.proc.pid, common.pylive_roles(server.proc.pid)
                            )
                        common.log(f"round {index + 1}: {name} latency")
                        result[name] = common.sequential_latency(
                            host, int(port), "/", requests=args.requests, warmup=100
                        )
                        common.log(f"round {index + 1}: {name} wrk -c16")
                        cpu_before = common.cpu_groups(server.proc.pid)
                        result[f"{name}_wrk"] = common.run_wrk(
                            server.url + "/", connections=16, seconds=args.seconds
                        )
                        result[f"{name}_cpu"] = cpu_per_request(
                            cpu_before,
                            common.cpu_groups(server.proc.pid),
                            result[f"{name}_wrk"]["requests"],
                        )
                        common.log(f"  {result[f'{name}_wrk']['requests_per_s']:.0f} req/s")
                        common.log(f"round {index + 1}: {name} 6 MB round trip")
                        result[f"{name}_big_ms"] = common.median(big_round_trip(server.url), 1)
                rounds.append(result)
    calls = connections_calls_per_invocation()
    common.log("6 MB invoke with 20 ms per @connections call")
    slow_calls = big_invoke_over_slow_calls()

    def med(key: str, field: str) -> float:
        return common.median(r[key][field] for r in rounds)

    added_p50 = common.median(r["relay"]["p50"] - r["direct"]["p50"] for r in rounds)
    added_p99 = common.median(r["relay"]["p99"] - r["direct"]["p99"] for r in rounds)
    rps = med("relay_wrk", "requests_per_s")
    big = common.median(r["relay_big_ms"] for r in rounds)
    floor = med("floor_wrk", "requests_per_s")
    direct_rps = med("direct_wrk", "requests_per_s")
    idle_rss = med("idle", "rss_mb")
    cpu = {
        name: {
            group: common.median(r[f"{name}_cpu"][group] for r in rounds)
            for group in rounds[0][f"{name}_cpu"]
        }
        for name in ("direct", "relay")
    }
    # What the relay could carry if its CPU per request were spread perfectly over every core:
    # splitting its work over more processes cannot go past this.
    cores = machine["nproc"]
    ceiling = cores * 1e6 / cpu["relay"]["total"] if cpu["relay"]["total"] else 0.0
    return {
        "benchmark": "relay",
        "machine": machine,
        "rounds": args.rounds,
        "latency_us": {
            "direct_p50": med("direct", "p50"),
            "direct_p99": med("direct", "p99"),
            "relay_p50": med("relay", "p50"),
            "relay_p99": med("relay", "p99"),
            "added_p50": added_p50,
            "added_p99": added_p99,
        },
        "wrk_c16_requests_per_s": {
            "relay": rps,
            "direct": direct_rps,
            "uvicorn_raw_asgi_floor": floor,
            "relay_share_of_direct": round(rps / direct_rps, 3),
        },
        "ready_s_infra_unchanged": {
            name: common.median(r[f"{name}_ready_s"] for r in rounds)
            for name in ("direct", "relay")
        },
        "cpu_us_per_request": cpu,
        "relay_cpu_ceiling": {
            "cores": cores,
            "requests_per_s_if_every_core_were_busy": round(ceiling, 1),
            "share_of_direct": round(ceiling / direct_rps, 3),
        },
        "round_trip_6mb_ms": {
            "relay": big,
            "direct": common.median(r["direct_big_ms"] for r in rounds),
        },
        "idle_memory_mb": {
            "rss": idle_rss,
            "pss": med("idle", "pss_mb"),
            "by_process": rounds[-1]["idle"]["by_process"],
        },
        "connections_calls": calls,
        "invoke_6mb_with_slow_calls": slow_calls,
        "verdicts": {
            "added_p50_us": common.verdict(added_p50, TARGET_ADDED_P50_US),
            "added_p99_us": common.verdict(added_p99, TARGET_ADDED_P99_US),
            "relay_share_of_direct": common.verdict(
                rps / direct_rps, TARGET_SHARE_OF_DIRECT, higher_is_better=True
            ),
            "round_trip_6mb_ms": common.verdict(big, TARGET_BIG_MS),
            "idle_rss_mb": common.verdict(idle_rss, TARGET_IDLE_RSS_MB),
        },
        "raw_rounds": [{k: v for k, v in r.items() if k != "idle"} for r in rounds],
    }


if __name__ == "__main__":
    common.main(run)
