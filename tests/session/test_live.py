"""`pylive dev` against AWS: the same session code, with the AWS side (CloudFormation) stood in
for by the local WebSocket API and router; the stub is the one deployed in dev mode."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from apphelpers import create_app, pylive_cmd

from pylive.cdk.synth import synthesize
from pylive.config import load_config
from pylive.console import Console
from pylive.emulator.lambda_host import stub_function
from pylive.emulator.relay_api import LocalRelayApi
from pylive.in_lambda.relay_settings import Relay
from pylive.runner.relay_endpoint import SigningCredentials
from pylive.session.dev import DevSession
from pylive.session.options import DevOptions

pytestmark = pytest.mark.slow


class LocalAccount:
    """Plays the AWS account: the relay is the local WebSocket API with the real router."""

    def __init__(self, app: str, stage: str) -> None:
        self.api = LocalRelayApi(app=app, stage=stage)
        self.deployed: list[Relay] = []

    # -- the Deployer protocol -----------------------------------------------------------

    def credentials(self) -> SigningCredentials:
        return SigningCredentials(self.api.access_key_id, self.api.secret_access_key)

    def deploy_relay(self) -> Relay:
        site = self.api.site
        return Relay(site.app, site.stage, "local", site.ws_url, site.connections_url)

    def deploy_stubs(self, relay: Relay) -> None:
        self.deployed.append(relay)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_app(tmp_path_factory.mktemp("live") / "shop")


def test_invocations_of_deployed_stubs_run_in_local_workers(app: Path) -> None:
    config = load_config(app)
    hello = synthesize(config).manifest.functions["hello"]
    assert hello.path.endswith("/hello")

    async def scenario() -> dict[str, Any]:
        account = LocalAccount(config.name, config.stage)
        await account.api.start()
        session = DevSession(
            config, DevOptions(target="aws", watch=False), Console(), deployer=account
        )
        running = asyncio.create_task(session.run())
        try:
            await asyncio.wait_for(session.ready.wait(), 60)
            assert account.deployed[0].relay_url == account.api.gateway.ws_url
            # The stub as dev mode deploys it: it names the function by its construct path.
            stub = stub_function(
                hello.path, account.api.stub_site(hello.path), timeout=10, lambda_env={}
            )
            account.api.host.add(stub)
            event = {"queryStringParameters": {"name": "Live"}}
            value: dict[str, Any] = await account.api.host.invoke_value(hello.path, event)
            return value
        finally:
            session.stop.set()
            await asyncio.wait_for(running, 30)
            await account.api.stop()

    response = asyncio.run(scenario())
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["message"] == "Hello, Live!"


def test_without_credentials_it_says_so_and_points_at_local(app: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    result = subprocess.run(
        pylive_cmd("dev"), cwd=app, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 6, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no AWS credentials found" in lines[0], result.stderr
    assert "pylive dev --local" in lines[0]


def test_assume_role_runs_the_function_with_its_execution_role(
    tmp_path: Path, moto_env: dict[str, str]
) -> None:
    """The credentials come from STS (moto): the function sees the role, not the developer."""
    import boto3

    from pylive.cdk.manifest import AppManifest, FunctionSpec
    from pylive.in_lambda import protocol
    from pylive.runner.pool import PoolOptions, WorkerPool
    from pylive.session.aws import ByPath, RoleAssumer

    role = boto3.client("iam").create_role(
        RoleName="orders-dev", AssumeRolePolicyDocument=json.dumps({"Statement": []})
    )["Role"]["Arn"]
    (tmp_path / "whoami.py").write_text(
        "import boto3\n"
        "def handler(event, context):\n"
        "    return boto3.client('sts').get_caller_identity()['Arn']\n"
    )
    spec = FunctionSpec(id="orders", handler="whoami.handler", code_dir=str(tmp_path), timeout=30,
                        path="App/orders")  # fmt: skip
    manifest = AppManifest(app="shop", functions={"orders": spec}, routes=[])

    async def scenario() -> tuple[str, str]:
        pool = WorkerPool(Path(sys.executable), tmp_path, PoolOptions(base_env=moto_env))
        await pool.start([spec])
        try:
            invoker = ByPath(pool, manifest)
            before = json.loads((await invoker.invoke("App/orders", b"{}")).body)
            invoke = protocol.Invoke(
                request_id="r1",
                function_id="App/orders",
                deadline_ms=0,
                event={},
                context=protocol.InvokeContext(invoked_function_arn="arn"),
                environment={protocol.ROLE_ARN_VARIABLE: role},
            )
            await RoleAssumer("us-east-1", pool, invoker).prepare(invoke)
            after = json.loads((await invoker.invoke("App/orders", b"{}")).body)
            return before, after
        finally:
            await pool.close()

    before, after = asyncio.run(scenario())
    assert ":assumed-role/" not in before
    assert after.endswith(":assumed-role/orders-dev/pylive-dev")


ROTATING_PROCESS = """
import datetime, json, pathlib, sys
counter = pathlib.Path(sys.argv[1])
n = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(n))
soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=5)
print(json.dumps({"Version": 1, "AccessKeyId": f"ASIAROTATING{n:08d}",
                  "SecretAccessKey": f"secret-{n}", "SessionToken": f"token-{n}",
                  "Expiration": soon.isoformat()}))
"""


def test_the_developers_temporary_credentials_are_renewed(
    app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Credentials that expire in 5 minutes (as SSO or assumed-role ones do near their end):
    each time the session asks, botocore renews them, and the session gets the new ones."""
    from pylive.session.aws import AwsDeployer

    script = tmp_path / "creds.py"
    script.write_text(ROTATING_PROCESS)
    config_file = tmp_path / "aws-config"
    config_file.write_text(
        f"[profile rotating]\ncredential_process = {sys.executable} {script} "
        f"{tmp_path / 'counter'}\n"
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config_file))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_PROFILE", "rotating")
    deployer = AwsDeployer(load_config(app), Console())
    first = deployer.credentials()
    second = deployer.credentials()
    assert first.access_key_id.startswith("ASIAROTATING")
    assert second.access_key_id != first.access_key_id
    assert second.session_token == f"token-{int(second.access_key_id[-8:])}"
