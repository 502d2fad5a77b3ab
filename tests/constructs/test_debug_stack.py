"""DebugStack: the relay's WebSocket API, router and connection table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from pylive.constructs.debug_stack import DebugStack
from pylive.relay_policy import router_grants


def _app(root: Path) -> cdk.App:
    """An app whose root (CDK context ``pylive:root``, where bundles are cached) is ``root``."""
    return cdk.App(outdir=str(root / "cdk.out"), context={"pylive:root": str(root)})


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    app = _app(tmp_path_factory.mktemp("app"))
    return Template.from_stack(DebugStack(app, "Debug", app_name="shop", stage="ada"))


def test_connect_is_iam_authorized_and_messages_route_on_action(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Api",
        {"ProtocolType": "WEBSOCKET", "RouteSelectionExpression": "$request.body.action"},
    )
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Route", {"RouteKey": "$connect", "AuthorizationType": "AWS_IAM"}
    )
    template.has_resource_properties("AWS::ApiGatewayV2::Route", {"RouteKey": "$disconnect"})
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Route",
        {"RouteKey": "$default", "RouteResponseSelectionExpression": "$default"},
    )
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Stage", {"StageName": "ada", "AutoDeploy": True}
    )


def test_connection_table(template: Template) -> None:
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            "SSESpecification": {"SSEEnabled": True},
        },
    )


def test_no_bucket_payloads_travel_in_chunks(template: Template) -> None:
    template.resource_count_is("AWS::S3::Bucket", 0)


def test_router_policy_is_least_privilege(template: Template) -> None:
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            assert "*" not in actions and not any(a.endswith(":*") for a in actions), statement
            resources = statement["Resource"]
            resources = resources if isinstance(resources, list) else [resources]
            assert "*" not in resources, statement
    template.has_resource_properties(
        "AWS::Lambda::Function", {"Handler": "router.handler", "Runtime": "python3.12"}
    )


def test_outputs_the_runner_needs(template: Template) -> None:
    outputs = template.to_json()["Outputs"]
    for name in ("WebSocketUrl", "CallbackUrl", "ApiId", "TableName"):
        assert name in outputs


@pytest.mark.slow
def test_cfn_lint_finds_no_errors(template: Template, tmp_path: Path) -> None:
    path = tmp_path / "debug.json"
    path.write_text(json.dumps(template.to_json()))
    result = subprocess.run(
        [sys.executable, "-m", "cfnlint", "--format", "parseable", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    errors = [line for line in result.stdout.splitlines() if ":E" in line]
    assert errors == [], result.stdout


def test_the_router_knows_who_may_be_the_runner(tmp_path: Path) -> None:
    developer = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev_0a1b/ada@example.com"
    stack = DebugStack(
        _app(tmp_path), "Debug", app_name="shop", stage="ada", runner_principals=[developer]
    )
    functions = Template.from_stack(stack).find_resources("AWS::Lambda::Function")
    router = next(f for f in functions.values() if f["Properties"]["Handler"] == "router.handler")
    assert router["Properties"]["Environment"]["Variables"]["PYLIVE_RUNNER_PRINCIPALS"] == developer


def test_the_router_may_post_to_connections_and_nothing_else(template: Template) -> None:
    """What the local cloud gives its router (pylive.relay_policy.router_grants)."""
    granted = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if str(statement["Action"]).startswith("execute-api:"):
                resource = statement["Resource"]["Fn::Join"][1][-1]
                granted.append((statement["Action"], resource.rsplit("/ada/", 1)[1]))
    assert granted == [
        (action, resource.removeprefix("ada/"))
        for action, resources in router_grants("ada")
        for resource in resources
    ]
    assert granted == [("execute-api:ManageConnections", "POST/@connections/*")]
