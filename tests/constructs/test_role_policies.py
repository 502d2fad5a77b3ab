"""A function's role policies read from its synthesized dev-mode template and resolved for the
local cloud (pylive.emulator.role_policies), then evaluated as the local WebSocket API does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from pylive.constructs import Function
from pylive.emulator.iam_policy import evaluate
from pylive.emulator.role_policies import resolve, role_policies

RELAY = {
    "app": "shop",
    "stage": "ada",
    "api_id": "a1b2c3d4e5",
    "relay_url": "wss://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/ada",
    "callback_url": "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/ada",
}
API = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/ada"


def test_the_dev_mode_roles_policies_resolve_to_what_the_stub_may_do(
    make_stack: Callable[..., cdk.Stack], tmp_path: Path
) -> None:
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "orders.py").write_text("def handler(e, c):\n    return 1\n")
    stack = make_stack("dev", **{"pylive:relay": RELAY})
    fn = Function(stack, "orders", handler="functions/orders.handler")
    table = dynamodb.Table(
        stack,
        "Orders",
        partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
    )
    fn.grant(table.grant_read_data)
    fn.function.add_to_role_policy(
        iam.PolicyStatement(
            effect=iam.Effect.DENY,
            actions=["execute-api:ManageConnections"],
            resources=[f"arn:{cdk.Aws.PARTITION}:execute-api:*:*:*/*/DELETE/@connections/*"],
        )
    )
    template = Template.from_stack(stack).to_json()
    logical_id = stack.get_logical_id(fn.function.node.default_child)  # type: ignore[arg-type]
    policies = resolve(
        role_policies(template, logical_id), region="eu-west-1", account="123456789012"
    )

    def decide(action: str, resource: str) -> tuple[bool, bool]:
        decision = evaluate(policies, action, resource)
        return decision.allowed, decision.explicit_deny

    assert decide("execute-api:Invoke", f"{API}/$connect") == (True, False)
    for method in ("POST", "GET"):
        resource = f"{API}/{method}/@connections/{{connectionId}}"
        assert decide("execute-api:ManageConnections", resource) == (True, False)
    delete = f"{API}/DELETE/@connections/{{connectionId}}"
    assert decide("execute-api:ManageConnections", delete) == (False, True)
    other_stage = f"{API.replace('/ada', '/bob')}/POST/@connections/{{connectionId}}"
    assert decide("execute-api:ManageConnections", other_stage) == (False, False)
    # The table's ARN is only known once deployed: that grant fails closed, and says so.
    read = evaluate(policies, "dynamodb:GetItem", "arn:aws:dynamodb:eu-west-1:1:table/x")
    assert not read.allowed and "known once deployed" in read.reason


def test_intrinsics_resolve() -> None:
    def local(value: object) -> object:
        return resolve(value, region="eu-west-1", account="123456789012")

    join = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::", {"Ref": "Bucket"}]]}
    assert local(join) == "arn:aws:s3:::${Ref Bucket (known once deployed)}"
    sub = {"Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:q"}
    assert local(sub) == "arn:aws:sqs:eu-west-1:123456789012:q"
    assert local({"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]}) == "b"
    get_att = {"Fn::GetAtt": ["Table", "Arn"]}
    assert local(get_att) == "${Fn::GetAtt Table.Arn (known once deployed)}"
    assert local({"Resource": [join, "*"]}) == {
        "Resource": ["arn:aws:s3:::${Ref Bucket (known once deployed)}", "*"]
    }
