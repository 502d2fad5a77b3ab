"""The relay path end to end with real parts on loopback: the local WebSocket gateway and its
router, stubs in the local Lambda host, and the runner as its own process
(`python -m pylive.runner.standalone`) with real worker processes. The gateway enforces IAM: the
runner signs as the developer, each stub as its function's role with the policy dev mode
gives it, the router as its role."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import signal
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pytest
from apphelpers import Running

from pylive.emulator.lambda_host import (
    LambdaHost,
    RelaySite,
    router_function,
    router_integration,
    stub_function,
)
from pylive.emulator.principals import LOCAL_ACCOUNT, AccessKey, new_key
from pylive.emulator.relay_api import LOCAL_API_ID, router_principal, stub_principal
from pylive.emulator.store import MemoryTable
from pylive.emulator.ws_gateway import WebSocketGateway
from pylive.emulator.ws_settings import GatewayLimits
from pylive.in_lambda.stub.limits import StubLimits
from pylive.relay_policy import api_arn
from pylive.runner.invocation import InvokeResult

pytestmark = pytest.mark.slow
T = TypeVar("T")

HANDLERS = {
    "echo.py": "def handler(event, context):\n    return event\n",
    "hang.py": "import time\ndef handler(event, context):\n    time.sleep(3600)\n",
    "die.py": (
        "import os, signal\n"
        "def handler(event, context):\n"
        "    if event.get('how') == 'exit':\n"
        "        os._exit(3)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    ),
    "big.py": "def handler(event, context):\n    return {'data': 'y' * event['size']}\n",
    "slow.py": (
        "import time\n"
        "def handler(event, context):\n"
        "    time.sleep(0.3)  # past the runner's ack window\n"
        "    print('slow started', flush=True)\n"
        "    time.sleep(30)\n"
    ),
    "nap.py": (
        "import time\n"
        "def handler(event, context):\n"
        "    time.sleep(2.5)  # past two of the stub's liveness checks\n"
        "    return 'rested'\n"
    ),
    "wait.py": (
        "import time\n"
        "def handler(event, context):\n"
        "    print('wait started', flush=True)\n"
        "    time.sleep(event['seconds'])\n"
        "    return event\n"
    ),
}
TIMEOUTS = {
    "echo": 10.0, "hang": 1.5, "die": 5.0, "big": 10.0, "slow": 8.0, "nap": 10.0, "wait": 20.0
}  # fmt: skip
DEV_TIMEOUT = 900.0  # Function(dev_timeout=...)'s default


class Cloud:
    """The gateway and the Lambda host on an event loop of their own thread."""

    def __init__(
        self, limits: GatewayLimits | None = None, stub_limits: StubLimits | None = None
    ) -> None:
        self.limits = limits
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.key = "AKIA" + secrets.token_hex(8).upper()
        self.secret = secrets.token_urlsafe(24)
        self.host = LambdaHost(region="us-east-1")
        integration = router_integration(self.host)
        self.routes = {"$connect": integration, "$disconnect": integration, "$default": integration}
        api = api_arn("us-east-1", LOCAL_ACCOUNT, LOCAL_API_ID)
        router_key = new_key(router_principal(stage="dev", api=api), temporary=True)
        stub_keys = {
            name: new_key(stub_principal(name, stage="dev", api=api), temporary=True)
            for name in TIMEOUTS
        }
        self.keys = [router_key, *stub_keys.values()]
        self.gateway = self._gateway(0)
        self.call(self.gateway.start())
        gw = self.gateway
        self.site = RelaySite(
            gw.ws_url, gw.connections_url, "shop", "dev", "us-east-1", self.key, self.secret
        )
        self.table = MemoryTable(stale_reads=1.0)
        self.host.add(
            router_function(
                signed_by(self.site, router_key),
                self.table,
                runner_principals=[self.gateway.developer.arn],
            )
        )

        def patch(module: ModuleType) -> None:  # the stub's limits, scaled like the gateway's
            if stub_limits is not None:
                module.limits = stub_limits  # type: ignore[attr-defined]

        for name, key in stub_keys.items():
            env = {"AWS_LAMBDA_FUNCTION_NAME": name}
            # As dev mode deploys it: the stub runs with the function's dev_timeout and role;
            # the runner's worker enforces the function's own timeout.
            stub = stub_function(
                name, signed_by(self.site, key), timeout=DEV_TIMEOUT, lambda_env=env
            )
            self.host.add(dataclasses.replace(stub, setup=patch))

    def _gateway(self, port: int) -> WebSocketGateway:
        return WebSocketGateway(
            self.routes,
            credentials={self.key: self.secret},
            access_keys=self.keys,
            stage="dev",
            api_id=LOCAL_API_ID,
            port=port,
            limits=self.limits,
        )

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def invoke(self, name: str, event: Any) -> tuple[bool, Any]:
        result: InvokeResult = self.call(self.host.invoke(name, json.dumps(event).encode()))
        return result.ok, json.loads(result.body)

    def connections_of(self, role: str) -> set[str]:
        """The ids of the open connections of ``role`` (runner or stub), as the gateway sees
        them (one whose path died stays open there until the gateway's idle timeout)."""
        found = set()
        for cid in self.gateway.connection_ids:
            item = self.table.get_item(Key={"pk": f"conn#{cid}"}, ConsistentRead=True)
            if item.get("Item", {}).get("role") == role:
                found.add(cid)
        return found

    def connection_of(self, role: str) -> str:
        """The id of the one open connection of ``role``."""
        (found,) = self.connections_of(role)
        return found

    def restart_gateway(self) -> None:
        port = self.gateway.port
        self.call(self.gateway.stop())
        self.gateway = self._gateway(port)
        self.call(self.gateway.start())

    def close(self) -> None:
        self.host.close()
        self.call(self.gateway.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def signed_by(site: RelaySite, key: AccessKey) -> RelaySite:
    return dataclasses.replace(
        site,
        access_key_id=key.access_key_id,
        secret_access_key=key.secret_access_key,
        session_token=key.session_token,
    )


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("relayapp")
    (root / "functions").mkdir()
    for name, text in HANDLERS.items():
        (root / "functions" / name).write_text(text)
    specs = [
        {"id": fid, "handler": f"functions/{fid}.handler", "code_dir": str(root), "timeout": t}
        for fid, t in TIMEOUTS.items()
    ]
    (root / "functions.json").write_text(json.dumps(specs))
    return root


@pytest.fixture
def cloud() -> Iterator[Cloud]:
    c = Cloud()
    yield c
    c.close()


def start_runner(cloud: Cloud, app: Path, *options: str) -> Running:
    gw = cloud.gateway
    args = [
        sys.executable, "-m", "pylive.runner.standalone", "--root", str(app),
        "--functions", str(app / "functions.json"), "--ws-url", gw.ws_url,
        "--connections-url", gw.connections_url, "--app", "shop", "--stage", "dev", *options,
    ]  # fmt: skip
    env = {"AWS_ACCESS_KEY_ID": cloud.key, "AWS_SECRET_ACCESS_KEY": cloud.secret}
    running = Running(args, cwd=app, env=env)
    running.wait_line(r"^runner: connected$", timeout=60)
    return running


@pytest.fixture
def runner(cloud: Cloud, app: Path) -> Iterator[Running]:
    running = start_runner(cloud, app)
    yield running
    running.stop()


def test_a_thousand_concurrent_invocations_none_lost_none_crossed(
    cloud: Cloud, runner: Running
) -> None:
    def one(n: int) -> tuple[int, Any]:
        token = secrets.token_hex(8)
        ok, body = cloud.invoke("echo", {"n": n, "token": token})
        assert ok, body
        return n, (body, token)

    with ThreadPoolExecutor(32) as pool:
        answers = dict(pool.map(one, range(1000)))
    assert len(answers) == 1000
    for n, (body, token) in answers.items():
        assert body == {"n": n, "token": token}
    assert cloud.host.containers("echo") <= 32


def test_six_megabytes_each_way(cloud: Cloud, runner: Running) -> None:
    size = 6 * 1024 * 1024 - 1024
    payload = "x" * size
    ok, body = cloud.invoke("echo", {"data": payload})
    assert ok and body == {"data": payload}
    ok, body = cloud.invoke("big", {"size": size})
    assert ok and len(body["data"]) == size


def test_a_response_over_6_mb_is_lambdas_error_never_a_relay_timeout(
    cloud: Cloud, runner: Running
) -> None:
    # 20 MB is over the relay's own limit for one message (16 MB): the runner's 6 MB check
    # comes first, so that answer too is Lambda's error, at once.
    for size in (7 * 1024 * 1024, 20 * 1024 * 1024):
        ok, body = cloud.invoke("big", {"size": size})
        assert not ok and body["errorType"] == "Function.ResponseSizeTooLarge", body
        assert body["errorMessage"] == (
            "Response payload size exceeded maximum allowed payload size (6291556 bytes)."
        )
    ok, body = cloud.invoke("big", {"size": 3})
    assert ok and body == {"data": "yyy"}


def test_a_hanging_handler_times_out_at_its_deadline(cloud: Cloud, runner: Running) -> None:
    started = time.monotonic()
    ok, body = cloud.invoke("hang", {})
    took = time.monotonic() - started
    assert not ok
    assert body["errorMessage"].endswith("Task timed out after 1.50 seconds"), body
    assert 1.4 <= took <= 2.5
    # The worker was replaced: the function answers again (with its timeout error, promptly).
    ok, body = cloud.invoke("echo", {"after": "hang"})
    assert ok and body == {"after": "hang"}


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_a_worker_dying_mid_invocation_is_an_error_and_the_next_works(
    cloud: Cloud, runner: Running, how: str
) -> None:
    ok, body = cloud.invoke("die", {"how": how})
    assert not ok
    assert body["errorType"] == "Runtime.ExitError", body
    ok, body = cloud.invoke("echo", {"x": 1})
    assert ok and body == {"x": 1}
    ok, body = cloud.invoke("die", {"how": how})
    assert not ok and body["errorType"] == "Runtime.ExitError"


def test_an_invocation_longer_than_the_liveness_interval_succeeds(
    cloud: Cloud, runner: Running
) -> None:
    """The stub checks the runner's connection (@connections GET) every second while it
    waits: its role must allow that call."""
    answer = cloud.invoke("nap", {})
    assert answer == (True, "rested"), answer[1]
    assert cloud.gateway.stats.connections_calls_by_operation["GetConnection"] >= 1


def test_the_runner_killed_mid_invocation_fails_clearly_before_the_deadline(
    cloud: Cloud, app: Path
) -> None:
    running = start_runner(cloud, app)
    try:
        future = asyncio.run_coroutine_threadsafe(cloud.host.invoke("slow", b"{}"), cloud.loop)
        running.wait_line(r"slow started")
        started = time.monotonic()
        running.proc.send_signal(signal.SIGKILL)
        result = future.result(30)
        took = time.monotonic() - started
    finally:
        running.stop()
    body = json.loads(result.body)
    assert not result.ok
    assert body["errorType"] == "PyliveRelayError"
    assert "disconnected while running slow" in body["errorMessage"]
    assert took < TIMEOUTS["slow"] - 2


def test_the_runner_reconnects_after_the_gateway_restarts(cloud: Cloud, runner: Running) -> None:
    assert cloud.invoke("echo", 1) == (True, 1)
    cloud.restart_gateway()
    runner.wait_line(r"relay connection restored", timeout=30)
    second = cloud.invoke("echo", 2)
    assert second == (True, 2), second


def test_a_second_runner_makes_the_first_exit_cleanly(cloud: Cloud, app: Path) -> None:
    first = start_runner(cloud, app)
    second = start_runner(cloud, app)
    try:
        first.wait_line(r"stopping: another `pylive dev` connected for app 'shop' stage 'dev'")
        assert first.proc.wait(20) == 0
        assert cloud.invoke("echo", {"by": "second"}) == (True, {"by": "second"})
    finally:
        first.stop()
        second.stop()


def test_no_runner_is_a_clear_error(cloud: Cloud) -> None:
    ok, body = cloud.invoke("echo", {})
    assert not ok
    assert body["errorType"] == "PyliveDevNotRunning"
    assert "start `pylive dev --stage dev`" in body["errorMessage"]


def test_a_five_second_invocation_completes(cloud: Cloud, runner: Running) -> None:
    assert cloud.invoke("wait", {"seconds": 5}) == (True, {"seconds": 5})


# API Gateway's limits and a NAT gateway's, scaled down about 300 times: idle 10 min -> 2 s,
# NAT flow 350 s -> 1.2 s; the stub and the runner probe and renew at a similar scale.
SCALED_LIMITS = GatewayLimits(idle_timeout=2.0, flow_idle_timeout=1.2)
SCALED_STUB = StubLimits(keepalive_s=0.2, probe_timeout_s=1.5, idle_renew_s=0.8)
SCALED_RUNNER = ("--keepalive", "0.2", "--probe-timeout", "0.5")
# In AWS a side notices a dead path (a ping after 30 s of silence, 10 s to answer) long
# before the gateway's idle timeout (10 min) drops the dead connection and unregisters the
# runner. At the 300x scale the two are a fraction of a second apart on a loaded machine, so
# the tests of silent drops keep the gateway's idle timeout at AWS's proportion instead.
NAT_LIMITS = GatewayLimits(idle_timeout=8.0, flow_idle_timeout=1.2)


@pytest.fixture
def scaled() -> Iterator[Cloud]:
    c = Cloud(SCALED_LIMITS, SCALED_STUB)
    yield c
    c.close()


@pytest.fixture
def nat() -> Iterator[Cloud]:
    c = Cloud(NAT_LIMITS, SCALED_STUB)
    yield c
    c.close()


def test_invocations_across_idle_limits_and_behind_a_nat(scaled: Cloud, app: Path) -> None:
    """A 5 s invocation outlasts two idle limits; a stub idle past the NAT's timeout between
    invocations renews its connection before the next one."""
    running = start_runner(scaled, app, *SCALED_RUNNER)
    try:
        assert scaled.invoke("wait", {"seconds": 5}) == (True, {"seconds": 5})
        before = scaled.connections_of("stub")
        time.sleep(1.5)  # the subject: the stub's container idles past the NAT's timeout
        assert scaled.invoke("echo", {"after": "idle"}) == (True, {"after": "idle"})
        assert scaled.connections_of("stub") - before  # it renewed, not used the dead flow
        running.stop()
        assert not any("relay connection closed" in line for line in running.lines)
    finally:
        running.stop()


def test_silently_dropped_flows_lose_no_invocation(nat: Cloud, app: Path) -> None:
    """The stub's path dies while its invocation runs, then the runner's while it waits for
    one: each side notices by an unanswered ping and recovers; every invocation is answered,
    and runs once."""
    running = start_runner(nat, app, *SCALED_RUNNER)
    try:
        future = asyncio.run_coroutine_threadsafe(
            nat.host.invoke("wait", json.dumps({"seconds": 2}).encode()), nat.loop
        )
        running.wait_line(r"wait started")
        nat.loop.call_soon_threadsafe(nat.gateway.drop_flow, nat.connection_of("stub"))
        result = future.result(30)
        assert result.ok and json.loads(result.body) == {"seconds": 2}, result.body
        nat.loop.call_soon_threadsafe(nat.gateway.drop_flow, nat.connection_of("runner"))
        ok, body = nat.invoke("echo", {"n": 2})
        assert (ok, body) == (True, {"n": 2}), (body, running.lines)
        running.wait_line(r"did not answer a ping")
        running.stop()
        assert sum("wait started" in line for line in running.lines) == 1
    finally:
        running.stop()
