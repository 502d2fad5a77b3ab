"""What the relay's callers may do with its WebSocket API, as plain data (no CDK).

Dev mode grants each function's role exactly what the stub does (:mod:`stub.stub`): open its
connection (``execute-api:Invoke`` on ``$connect``) and make two kinds of @connections call,
``POST`` (the invoke, or its chunks, to the runner) and ``GET`` (whether the runner is still
connected while a slow invocation runs). The DebugStack's router only ``POST``s (it tells a
replaced runner why). ``pylive.constructs`` builds the deployed policies from these lists and
the local cloud gives its stubs and router the same ones, so both stay what the code calls.

Resources are relative to the API's ARN, ``arn:aws:execute-api:{region}:{account}:{api}``
(https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-control-access-iam.html).
"""

from __future__ import annotations

from typing import Any

INVOKE = "execute-api:Invoke"
MANAGE_CONNECTIONS = "execute-api:ManageConnections"

# Every @connections call the stub (pylive/in_lambda/stub) makes; CDK's
# grantManagementApiAccess would give POST only (aws/aws-cdk#18410), and the stub's GET would
# be refused.
STUB_CONNECTIONS_METHODS = ("POST", "GET")
ROUTER_CONNECTIONS_METHODS = ("POST",)

Grant = tuple[str, tuple[str, ...]]  # an action and its resources below the API's ARN


def stub_grants(stage: str) -> list[Grant]:
    return [
        (INVOKE, (f"{stage}/$connect",)),
        (
            MANAGE_CONNECTIONS,
            tuple(f"{stage}/{method}/@connections/*" for method in STUB_CONNECTIONS_METHODS),
        ),
    ]


def router_grants(stage: str) -> list[Grant]:
    return [
        (
            MANAGE_CONNECTIONS,
            tuple(f"{stage}/{method}/@connections/*" for method in ROUTER_CONNECTIONS_METHODS),
        )
    ]


def api_arn(region: str, account: str, api_id: str) -> str:
    return f"arn:aws:execute-api:{region}:{account}:{api_id}"


def policy_document(api: str, grants: list[Grant]) -> dict[str, Any]:
    """An identity-based policy document allowing ``grants`` on the API ``api`` (its ARN)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": action,
                "Resource": [f"{api}/{resource}" for resource in resources],
            }
            for action, resources in grants
        ],
    }
