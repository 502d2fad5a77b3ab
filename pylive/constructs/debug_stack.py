"""``DebugStack``: what live development (`pylive dev`) needs in the account, once per app and
stage: the WebSocket API that relays invocations, its router and the connection table.
Payloads larger than a WebSocket message travel in chunks (``pylive.in_lambda.protocol.split``).

Only ``runner_principals`` (IAM ARNs; `pylive dev` passes the identity that deploys the stack)
may connect as the stage's runner: every function's role may open a connection, and the
router refuses a runner connection signed by anyone else (see
pylive/in_lambda/handlers/router.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from pylive.cdk.bundle import bundle_router
from pylive.constructs.synth_context import app_root
from pylive.relay_policy import router_grants


class DebugStack(cdk.Stack):
    """One per app and stage. Outputs: ``WebSocketUrl``, ``CallbackUrl``, ``TableName``,
    ``ApiId`` (the runner reads them to connect)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        app_name: str,
        stage: str,
        runner_principals: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.table = dynamodb.Table(
            self,
            "Connections",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute="expires_at",
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        runtime = lambda_.Runtime.PYTHON_3_12
        router = bundle_router(app_root(self), runtime=runtime.name)
        self.router = lambda_.Function(
            self,
            "Router",
            runtime=runtime,
            handler="router.handler",
            code=lambda_.Code.from_asset(
                str(router.path),
                asset_hash=router.digest,
                asset_hash_type=cdk.AssetHashType.CUSTOM,
            ),
            timeout=cdk.Duration.seconds(10),
            memory_size=256,
            environment={
                "PYLIVE_TABLE": self.table.table_name,
                "PYLIVE_RUNNER_PRINCIPALS": ",".join(runner_principals),
            },
            log_group=logs.LogGroup(
                self,
                "RouterLogs",
                retention=logs.RetentionDays.ONE_WEEK,
                removal_policy=cdk.RemovalPolicy.DESTROY,
            ),
            description=f"pylive router for {app_name} ({stage})",
        )
        self.table.grant_read_write_data(self.router)

        def route(name: str, *, two_way: bool = False) -> apigwv2.WebSocketRouteOptions:
            return apigwv2.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration(
                    f"{name}Integration", self.router
                ),
                return_response=two_way,
            )

        self.api = apigwv2.WebSocketApi(
            self,
            "Relay",
            api_name=f"pylive-{app_name}-{stage}",
            connect_route_options=apigwv2.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration(
                    "ConnectIntegration", self.router
                ),
                authorizer=authorizers.WebSocketIamAuthorizer(),
            ),
            disconnect_route_options=route("Disconnect"),
            default_route_options=route("Default", two_way=True),  # answers `whoami`
            route_selection_expression="$request.body.action",
        )
        self.ws_stage = apigwv2.WebSocketStage(
            self, "Stage", web_socket_api=self.api, stage_name=stage, auto_deploy=True
        )
        # The router tells a runner that a newer one replaced it: POST, and no other
        # @connections call (grant_management_api_access would allow every method). The local
        # cloud gives its router the same grants.
        for action, resources in router_grants(stage):
            arns = [
                self.format_arn(
                    service="execute-api",
                    resource=self.api.api_id,
                    resource_name=resource,
                    arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
                )
                for resource in resources
            ]
            self.router.add_to_role_policy(iam.PolicyStatement(actions=[action], resources=arns))

        cdk.CfnOutput(self, "WebSocketUrl", value=self.ws_stage.url)
        cdk.CfnOutput(self, "CallbackUrl", value=self.ws_stage.callback_url)
        cdk.CfnOutput(self, "ApiId", value=self.api.api_id)
        cdk.CfnOutput(self, "TableName", value=self.table.table_name)
