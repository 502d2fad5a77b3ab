"""A runner on its own, without a dev session: ``python -m pylive.runner.standalone``
serves one stage's invocations from a relay with the functions given as JSON (the relay's
end-to-end tests run it as a process of its own)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os

from pylive.runner.relay import KEEPALIVE_S, PROBE_TIMEOUT_S, TICK_S, RelayClient
from pylive.runner.relay_endpoint import RelayEndpoint


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve one stage's invocations from a relay.")
    parser.add_argument("--root", required=True, help="the app directory")
    parser.add_argument("--functions", required=True, help="JSON file: a list of FunctionSpec")
    parser.add_argument("--ws-url", required=True)
    parser.add_argument("--connections-url", required=True)
    parser.add_argument("--app", required=True)
    parser.add_argument("--stage", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument(
        "--keepalive",
        type=float,
        default=KEEPALIVE_S,
        help="ping the relay when nothing was received for this many seconds",
    )
    parser.add_argument(
        "--probe-timeout",
        type=float,
        default=PROBE_TIMEOUT_S,
        help="reconnect when a ping is not answered within this many seconds",
    )
    return parser.parse_args(argv)


async def _main(args: argparse.Namespace) -> int:
    import signal
    import sys
    from pathlib import Path

    from pylive.cdk.manifest import FunctionSpec
    from pylive.runner.pool import PoolOptions, WorkerPool

    def say(message: str) -> None:
        print(f"runner: {message}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    specs = [FunctionSpec(**item) for item in json.loads(Path(args.functions).read_text())]
    pool = WorkerPool(
        Path(sys.executable),
        Path(args.root),
        PoolOptions(region=args.region, output=lambda f, line: say(f"{f} | {line}"), events=say),
    )
    endpoint = RelayEndpoint(
        args.ws_url,
        args.connections_url,
        args.app,
        args.stage,
        args.region,
        os.environ["AWS_ACCESS_KEY_ID"],
        os.environ["AWS_SECRET_ACCESS_KEY"],
        os.environ.get("AWS_SESSION_TOKEN"),
    )
    try:
        await pool.start(specs)
        client = RelayClient(
            endpoint,
            pool,
            stop=stop,
            log=say,
            keepalive=args.keepalive,
            probe_timeout=args.probe_timeout,
            tick=min(TICK_S, args.keepalive / 4),
        )
        waiter = asyncio.ensure_future(client.connected.wait())
        waiter.add_done_callback(lambda _: say("connected"))
        outcome = await client.run()
        waiter.cancel()
        say(outcome)
    finally:
        await pool.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(_main(_parse(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
