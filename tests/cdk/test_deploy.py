"""`pylive synth`, `pylive deploy` and `pylive remove` as a user runs them, with the real CDK
toolkit (installed on first use) against moto's server mode on loopback.

The fixture app uses only resource types moto's CloudFormation creates: a Lambda function
from an S3 asset with its IAM role, a DynamoDB table and stack outputs.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from apphelpers import pylive_cmd

from pylive.cdk.toolkit_output import failure_line, parse_event

APP = Path(__file__).parents[1] / "fixtures" / "apps" / "deployable"
REGION = "us-east-1"
_AWS_VARIABLES = (
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL", "AWS_REGION",
    "AWS_DEFAULT_REGION", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
)  # fmt: skip

BAD_STACKS = """
import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigwv2
from constructs import Construct

from pylive.constructs import Function


class ShopStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)
        api = apigwv2.HttpApi(self, "Api")  # moto's CloudFormation skips this resource type
        Function(self, "orders", handler="functions/orders.handler",
                 environment={"API_URL": api.api_endpoint})


def stacks(app: Construct) -> None:
    ShopStack(app, "Shop")
"""


def no_aws_env(tmp: Path) -> dict[str, str]:
    """The environment without any AWS credentials or configuration."""
    env = {k: v for k, v in os.environ.items() if k not in _AWS_VARIABLES}
    env.update(
        AWS_SHARED_CREDENTIALS_FILE=str(tmp / "no-credentials"),
        AWS_CONFIG_FILE=str(tmp / "no-config"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """moto's server on a free loopback port; the environment that points pylive at it."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    server = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [server, "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    # with 127.0.0.1 in the URL, moto would read "127" as a bucket name
    endpoint = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto did not start:\n{log.read_text()}") from None
                time.sleep(0.1)
        env = no_aws_env(log.parent)
        env.update(
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
            AWS_REGION=REGION,
            AWS_ENDPOINT_URL=endpoint,
        )
        yield env
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def client(moto: dict[str, str], service: str) -> Any:
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=moto["AWS_ENDPOINT_URL"],
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def pylive(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        pylive_cmd(*args),
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, f"{result.stdout}\n{result.stderr}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


@pytest.fixture()
def app(tmp_path: Path) -> Path:
    return Path(shutil.copytree(APP, tmp_path / "shop", ignore=shutil.ignore_patterns(".pylive")))


def stack(moto: dict[str, str], name: str) -> dict[str, Any] | None:
    try:
        found = client(moto, "cloudformation").describe_stacks(StackName=name)["Stacks"]
    except client(moto, "cloudformation").exceptions.ClientError:
        return None
    return found[0] if found else None


@pytest.mark.slow
def test_synth_writes_the_stage_templates_without_credentials(app: Path, tmp_path: Path) -> None:
    out = tmp_path / "assembly"
    stdout = ok(pylive("synth", "--stage", "preview", "--out", str(out), cwd=app,
                       env=no_aws_env(tmp_path)))  # fmt: skip
    manifest = json.loads((out / "assembly-shop-preview" / "manifest.json").read_text())
    stacks = {
        a["properties"]["stackName"]: a
        for a in manifest["artifacts"].values()
        if a["type"] == "aws:cloudformation:stack"
    }
    assert list(stacks) == ["shop-preview-Shop"]
    template_file = (
        out / "assembly-shop-preview" / stacks["shop-preview-Shop"]["properties"]["templateFile"]
    )
    assert f"shop-preview-Shop  {template_file}" in stdout or "shop-preview-Shop" in stdout
    template = json.loads(template_file.read_text())
    types = sorted({r["Type"] for r in template["Resources"].values()})
    assert types == ["AWS::DynamoDB::Table", "AWS::IAM::Policy", "AWS::IAM::Role",
                     "AWS::Lambda::Function"]  # fmt: skip
    # the function's code is the bundle: the source, without tests or the venv
    assets = [p for p in out.glob("asset.*") if (p / "functions" / "orders.py").is_file()]
    assert len(assets) == 1 and not (assets[0] / "tests").exists()


@pytest.mark.slow
@pytest.mark.timeout(360)  # five toolkit runs against moto: ~50 s here, minutes when loaded
def test_deploy_two_stages_redeploy_unchanged_and_remove(app: Path, moto: dict[str, str]) -> None:
    first = pylive("deploy", "--stage", "alice", "--method", "direct", cwd=app, env=moto)
    out = ok(first)
    assert "bootstrapping aws://123456789012/us-east-1" in out  # a fresh moto: no CDKToolkit
    assert "CREATE_COMPLETE" in out  # CloudFormation's progress is streamed
    deployed = stack(moto, "shop-alice-Shop")
    assert deployed is not None and deployed["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in deployed["Outputs"]}
    assert outputs["Stage"] == "alice"
    assert f"FunctionName  {outputs['FunctionName']}" in out  # outputs printed at the end
    function = client(moto, "lambda").get_function(FunctionName=outputs["FunctionName"])
    assert function["Configuration"]["Handler"] == "functions/orders.handler"
    env = function["Configuration"]["Environment"]["Variables"]
    assert env["TABLE_NAME"] == outputs["TableName"]
    client(moto, "dynamodb").describe_table(TableName=outputs["TableName"])

    ok(pylive("deploy", "--stage", "bob", "--method", "direct", cwd=app, env=moto))
    assert stack(moto, "shop-bob-Shop") is not None
    assert stack(moto, "shop-alice-Shop") is not None  # side by side

    again = ok(pylive("deploy", "--stage", "alice", "--method", "direct", cwd=app, env=moto))
    assert "(no changes)" in again and "(1 unchanged)" in again
    assert "bootstrapping" not in again

    declined = pylive("remove", "--stage", "alice", cwd=app, env=moto)
    assert "--yes" in one_line_error(declined, 2)
    ok(pylive("remove", "--stage", "alice", "--yes", cwd=app, env=moto))
    assert stack(moto, "shop-alice-Shop") is None
    assert stack(moto, "shop-bob-Shop") is not None
    ok(pylive("remove", "--stage", "bob", "--yes", cwd=app, env=moto))
    assert stack(moto, "shop-bob-Shop") is None


@pytest.mark.slow
def test_remove_also_removes_the_debug_stack_pylive_dev_deployed(
    app: Path, moto: dict[str, str]
) -> None:
    """`pylive dev` leaves a `<app>-<stage>-Debug` stack (the relay). moto cannot deploy its
    API Gateway v2 resources, so a stand-in stack of that name plays it: removal is by name."""
    ok(pylive("deploy", "--stage", "carol", "--method", "direct", cwd=app, env=moto))
    stand_in = {"Resources": {"Relay": {"Type": "AWS::SQS::Queue"}}}
    cloudformation = client(moto, "cloudformation")
    cloudformation.create_stack(StackName="shop-carol-Debug", TemplateBody=json.dumps(stand_in))
    assert stack(moto, "shop-carol-Debug") is not None
    out = ok(pylive("remove", "--stage", "carol", "--yes", cwd=app, env=moto))
    assert stack(moto, "shop-carol-Shop") is None
    assert stack(moto, "shop-carol-Debug") is None, out


@pytest.mark.slow
def test_a_failing_deploy_names_the_resource(app: Path, moto: dict[str, str]) -> None:
    (app / "stacks.py").write_text(BAD_STACKS)
    result = pylive("deploy", "--stage", "broken", "--method", "direct", cwd=app, env=moto)
    line = one_line_error(result, 5)
    assert line.startswith("Error: deploy failed: shop-broken-Shop: ")
    assert "references undefined resource Api" in line  # the logical id of the HTTP API
    assert "is shop-broken/Shop/Api" in line  # and which construct that is
    assert "toolkit.log" in line


def test_no_credentials_is_one_line(app: Path, tmp_path: Path) -> None:
    for command in (["deploy"], ["remove", "--yes"]):
        line = one_line_error(pylive(*command, cwd=app, env=no_aws_env(tmp_path)), 6)
        assert "no AWS credentials found" in line


def test_a_bad_stage_name_is_rejected(app: Path, tmp_path: Path) -> None:
    line = one_line_error(pylive("synth", "--stage", "my_stage", cwd=app, env=dict(os.environ)), 2)
    assert "stage 'my_stage'" in line


# -- the toolkit's output, as CDK CLI 2.1148 prints it -----------------------------------------

REAL_FAILURE = [
    "app-dev-Api: creating CloudFormation changeset...",
    "app-dev-Api | 0/4 | 10:00:00 AM | CREATE_IN_PROGRESS      | AWS::CloudFormation::Stack "
    "| app-dev-Api User Initiated",
    "app-dev-Api | 1/4 | 10:00:03 AM | CREATE_FAILED           | AWS::Lambda::Function      "
    "| app-dev/Api/fn/Function/Resource (fnFunction12AB) Resource handler returned message: "
    '"Memory size 99 is invalid" (RequestToken: abc, HandlerErrorCode: InvalidRequest)',
    "app-dev-Api | 1/4 | 10:00:04 AM | CREATE_FAILED           | AWS::DynamoDB::Table       "
    "| app-dev/Api/Table/Resource (Table1234) Resource creation cancelled",
    "",
    "Failed resources:",
    "app-dev-Api | 10:00:03 AM | CREATE_FAILED           | AWS::Lambda::Function      "
    "| app-dev/Api/fn/Function/Resource (fnFunction12AB) Resource handler returned message",
    "❌  app-dev/Api (app-dev-Api) failed: ToolkitError: The stack named app-dev-Api failed "
    "creation: ROLLBACK_COMPLETE",
]


def test_failure_line_names_the_first_real_resource_failure() -> None:
    assert failure_line(REAL_FAILURE) == (
        "app-dev-Api: app-dev/Api/fn/Function/Resource (fnFunction12AB) [AWS::Lambda::Function]"
        ' CREATE_FAILED: Resource handler returned message: "Memory size 99 is invalid" '
        "(RequestToken: abc, HandlerErrorCode: InvalidRequest)"
    )
    event = parse_event(REAL_FAILURE[6])
    assert event is not None and event.logical_id == "fnFunction12AB"


def test_failure_line_without_resource_events() -> None:
    lines = ["x: creating stack...", "❌  x failed to deploy", "‣ ValidationError: bad thing"]
    assert failure_line(lines) == "x: bad thing"
    assert failure_line(REAL_FAILURE[-1:]) == (
        "app-dev/Api (app-dev-Api): The stack named app-dev-Api failed creation: ROLLBACK_COMPLETE"
    )


@pytest.mark.slow
def test_a_custom_bootstrap_qualifier_gets_its_own_bootstrap_stack(
    app: Path, moto: dict[str, str]
) -> None:
    pyproject = app / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "[tool.pylive]", '[tool.pylive]\nbootstrap_qualifier = "team42"'
        )
    )
    out = ok(pylive("deploy", "--stage", "dana", "--method", "direct", cwd=app, env=moto))
    assert "bootstrapping aws://123456789012/us-east-1" in out
    ssm = client(moto, "ssm")
    assert ssm.get_parameter(Name="/cdk-bootstrap/team42/version")["Parameter"]["Value"]
    assert stack(moto, "CDKToolkit-team42") is not None
    default = stack(moto, "CDKToolkit")  # other tests' apps bootstrapped it: left alone
    if default is not None:
        parameters = {p["ParameterKey"]: p["ParameterValue"] for p in default["Parameters"]}
        assert parameters["Qualifier"] == "hnb659fds"
    deployed = stack(moto, "shop-dana-Shop")
    assert deployed is not None and deployed["StackStatus"] == "CREATE_COMPLETE"
    template = client(moto, "cloudformation").get_template(StackName="shop-dana-Shop")
    body = template["TemplateBody"]
    text = body if isinstance(body, str) else json.dumps(body)
    assert "/cdk-bootstrap/team42/version" in text


@pytest.mark.slow
def test_remove_works_when_the_app_no_longer_synthesizes(app: Path, moto: dict[str, str]) -> None:
    """Infra code broken or deleted: the stage's stacks are found by pylive's tags and
    deleted through CloudFormation; a stack without them is left alone, whatever its name."""
    ok(pylive("deploy", "--stage", "erin", "--method", "direct", cwd=app, env=moto))
    cloudformation = client(moto, "cloudformation")
    stand_in = json.dumps({"Resources": {"Relay": {"Type": "AWS::SQS::Queue"}}})
    tags = [{"Key": "pylive:app", "Value": "shop"}, {"Key": "pylive:stage", "Value": "erin"}]
    cloudformation.create_stack(StackName="shop-erin-Debug", TemplateBody=stand_in, Tags=tags)
    cloudformation.create_stack(StackName="shop-erin-NotOurs", TemplateBody=stand_in)
    (app / "stacks.py").write_text("raise RuntimeError('work in progress')\n")

    result = pylive("remove", "--stage", "erin", "--yes", cwd=app, env=moto)
    out = ok(result)
    assert "finding the stage's stacks by their tags instead" in result.stderr + out
    assert "Removed stage 'erin': shop-erin-Debug, shop-erin-Shop" in out  # newest first
    assert stack(moto, "shop-erin-Shop") is None
    assert stack(moto, "shop-erin-Debug") is None
    assert stack(moto, "shop-erin-NotOurs") is not None
    again = ok(pylive("remove", "--stage", "erin", "--yes", cwd=app, env=moto))
    assert "has no stacks" in again


def test_the_debug_stack_lets_the_deploying_identity_be_the_runner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pylive.cdk.deploy import runner_principals

    me = "arn:aws:sts::123456789012:assumed-role/Dev/ada"
    monkeypatch.delenv("PYLIVE_RUNNER_PRINCIPALS", raising=False)
    assert runner_principals(me) == me
    bob = "arn:aws:iam::123456789012:user/bob"
    monkeypatch.setenv("PYLIVE_RUNNER_PRINCIPALS", f" {bob}, {me},")
    assert runner_principals(me) == f"{me},{bob}"
