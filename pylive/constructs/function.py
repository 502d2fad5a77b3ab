"""``Function``: a Python Lambda function whose settings pylive can also run locally.

It wraps a real ``aws_lambda.Function`` and keeps its settings as plain attributes, so the
synth process can describe it to the local runner without reading CloudFormation back.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import triggers
from constructs import Construct

from pylive.constructs.function_settings import (
    check_architecture,
    check_memory,
    check_runtime,
    split_handler,
    timeout_seconds,
)
from pylive.constructs.sqs_visibility import FitDevTimeout, consumed_queues
from pylive.constructs.synth_context import app_root, relay_settings, synth_mode
from pylive.in_lambda import protocol
from pylive.in_lambda.relay_settings import Relay
from pylive.relay_policy import stub_grants

if TYPE_CHECKING:
    from pylive.constructs.network import Network

DEFAULT_DEV_TIMEOUT: Final = 900
# The least memory the dev-mode stub is deployed with: Lambda gives a function CPU in
# proportion to its memory, one vCPU at 1,769 MB
# (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html), so the stub's CPU
# per invocation (encoding, signing and posting the event, reading the answer: bench/stub_cpu.py)
# is latency in the cloud, about 14 times its CPU time at 128 MB. The stub is single-threaded
# but for posting a large event's chunks: more than one vCPU buys it little. The trade-off
# (GB-seconds billed while the stub waits on the network) is in docs/live-relay.md.
DEV_MEMORY_FLOOR: Final = 1769
STUB_HANDLER: Final = "stub.handler"
# The synth process's warning channel (pylive.cdk.synth reads these lines from stderr).
_WARNING_PREFIX = "pylive:warning: "

_PLACEHOLDER_CODE = (
    "def handler(event, context):\n"
    "    raise RuntimeError('this function was synthesized for local runs only; "
    "deploy it with `pylive deploy`')\n"
)


def no_route_to_relay(function: str, network: str) -> str:
    """Why dev mode cannot deploy a function in isolated subnets."""
    # An execute-api VPC endpoint serves private REST APIs only, and with its private DNS on,
    # calls from the VPC to public APIs (the relay is a public WebSocket API) fail with 403:
    # https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-private-apis.html
    # https://repost.aws/knowledge-center/api-gateway-vpc-connections
    return (
        f"function {function} runs in the isolated subnets of {network} (nat_gateways=0), "
        "which have no route to the internet, so in dev mode its stub cannot reach the relay's "
        "WebSocket API; a VPC endpoint cannot help (an execute-api endpoint serves private "
        "REST APIs only, and WebSocket APIs are public); give the network a NAT gateway "
        "(Network(..., nat_gateways=1)) for the stage you develop in"
    )


class Function(Construct):
    """A Python Lambda function.

    ``handler`` is Lambda's ``"path/module.func"``; ``code`` is the directory (relative to the
    app root) that the handler path starts from. In ``local`` synth mode the deployed code is
    a tiny inline placeholder, so synthesis copies nothing; in ``deploy`` mode it is an asset
    of the code directory.

    ``network`` (default ``None``: no VPC) places the function in the private subnets of a
    :class:`~pylive.constructs.network.Network`, with a security group of its own (open
    outbound); ``security_groups`` replaces that group with the given ones. A function in a
    network is what ``Database.grant_connect`` and ``Database.allow_from`` accept.

    Under `pylive dev` the deployed function is the relay stub, with ``dev_timeout`` and
    ``dev_memory_size`` (default: ``memory_size``, at least 1,769 MB, one vCPU, so that the
    stub's CPU adds little latency); the function itself still runs with ``memory_size``.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        handler: str,
        code: str = ".",
        runtime: str = "python3.12",
        architecture: str = "x86_64",
        memory_size: int = 128,
        timeout: int | float | cdk.Duration = 3,
        environment: dict[str, str] | None = None,
        network: Network | None = None,
        security_groups: list[ec2.ISecurityGroup] | None = None,
        dev_timeout: int | float | cdk.Duration = DEFAULT_DEV_TIMEOUT,
        dev_memory_size: int | None = None,
    ) -> None:
        super().__init__(scope, id)
        split_handler(handler)
        check_runtime(runtime)
        check_architecture(architecture)
        check_memory("memory_size", memory_size)
        if dev_memory_size is not None:
            check_memory("dev_memory_size", dev_memory_size)
        if security_groups is not None and network is None:
            raise ValueError("security_groups need a network: pass network=... as well")

        self.mode: str = synth_mode(self)
        self.handler: str = handler
        self.code: str = code
        self.code_dir: Path = (app_root(self) / code).resolve()
        self.runtime: str = runtime
        self.architecture: str = architecture
        self.memory_size: int = memory_size
        self.timeout: float = timeout_seconds(timeout)
        self.environment: dict[str, str] = dict(environment or {})
        self.network: Network | None = network
        self.dev_timeout: float = max(timeout_seconds(dev_timeout), self.timeout)
        # What the stub is deployed with in dev mode; the function itself (its local workers,
        # `context.memory_limit_in_mb`) keeps ``memory_size``.
        self.dev_memory_size: int = (
            dev_memory_size if dev_memory_size is not None else max(memory_size, DEV_MEMORY_FLOOR)
        )

        relay = relay_settings(self) if self.mode == "dev" else None
        if relay is not None and network is not None and not network.nat_gateways:
            raise ValueError(no_route_to_relay(self.node.path, network.node.path))
        lambda_code, lambda_handler = self._code_and_handler()
        deployed_timeout = self.dev_timeout if self.mode == "dev" else self.timeout
        deployed_memory = self.dev_memory_size if self.mode == "dev" else memory_size
        deployed_environment = dict(self.environment)
        if relay is not None:
            deployed_environment.update(self._stub_environment(relay))
        self.function: lambda_.Function = lambda_.Function(
            self,
            "Function",
            handler=lambda_handler,
            code=lambda_code,
            runtime=lambda_.Runtime(
                runtime, lambda_.RuntimeFamily.PYTHON, supports_inline_code=True
            ),
            architecture=(
                lambda_.Architecture.ARM_64
                if architecture == "arm64"
                else lambda_.Architecture.X86_64
            ),
            memory_size=deployed_memory,
            timeout=cdk.Duration.seconds(deployed_timeout),
            environment=deployed_environment,
            **_placement(network, security_groups),
        )
        if relay is not None:
            self._grant_relay(relay)
        if self.mode != "deploy":
            # Event sources are usually added after the function: check them at synth.
            cdk.Aspects.of(self).add(FitDevTimeout(self))

    def _code_and_handler(self) -> tuple[lambda_.Code, str]:
        """What Lambda runs for the current synth mode: the code and its handler string.

        ``local``: an inline placeholder (nothing is copied; the template is never deployed).
        ``deploy``: the code directory plus its requirements, bundled for the Lambda platform
        (see :mod:`pylive.cdk.bundle`; cached by content, so an unchanged function reuses its
        bundle). ``dev``: the relay stub (with ``websockets`` and pylive's protocol), which
        forwards every invocation to ``pylive dev`` on the developer's machine.
        """
        if self.mode == "local":
            return lambda_.Code.from_inline(_PLACEHOLDER_CODE), self.handler
        if not self.code_dir.is_dir():
            raise ValueError(f"code directory {self.code!r} ({self.code_dir}) does not exist")
        if self.mode == "dev":
            from pylive.cdk.bundle import bundle_stub

            stub = bundle_stub(app_root(self), runtime=self.runtime, architecture=self.architecture)
            code = lambda_.Code.from_asset(
                str(stub.path), asset_hash=stub.digest, asset_hash_type=cdk.AssetHashType.CUSTOM
            )
            return code, STUB_HANDLER
        if self.mode == "deploy":
            from pylive.cdk.bundle import bundle_function

            bundle = bundle_function(
                self.code_dir,
                app_root(self),
                runtime=self.runtime,
                architecture=self.architecture,
            )
            code = lambda_.Code.from_asset(
                str(bundle.path),
                asset_hash=bundle.digest,
                asset_hash_type=cdk.AssetHashType.CUSTOM,
            )
            return code, self.handler
        raise ValueError(f"unknown synth mode {self.mode!r}")

    def _stub_environment(self, relay: Relay) -> dict[str, str]:
        """What the stub needs to reach the runner (see pylive/in_lambda/stub)."""
        return relay.stub(self.path, handler=self.handler).to_env()

    @property
    def path(self) -> str:
        """The construct path below the app's stage, the same in every mode ("App/hello")."""
        stage = cdk.Stage.of(self)
        prefix = f"{stage.node.path}/" if stage is not None and stage.node.path else ""
        return self.node.path.removeprefix(prefix)

    def _grant_relay(self, relay: Relay) -> None:
        """Only what the stub does: connect to the relay, POST and GET connections on its
        stage."""
        stack = cdk.Stack.of(self)

        def api_arn(resource_name: str) -> str:
            return stack.format_arn(
                service="execute-api",
                resource=relay.api_id,
                resource_name=f"{relay.stage}/{resource_name}",
                arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
            )

        # Exactly the calls the stub (pylive/in_lambda/stub) makes (see pylive.relay_policy):
        # the local cloud enforces the same list on its stubs.
        for action, resources in stub_grants(relay.stage):
            arns = [api_arn(r.removeprefix(f"{relay.stage}/")) for r in resources]
            self.function.add_to_role_policy(iam.PolicyStatement(actions=[action], resources=arns))
        # `pylive dev --assume-role` runs the function locally with this role's permissions:
        # principals of this account (with sts:AssumeRole on it) may assume it in dev mode.
        role = self.function.role
        if isinstance(role, iam.Role) and role.assume_role_policy is not None:
            role.assume_role_policy.add_statements(
                iam.PolicyStatement(
                    actions=["sts:AssumeRole"], principals=[iam.AccountRootPrincipal()]
                )
            )
        if role is not None:
            self.function.add_environment(protocol.ROLE_ARN_VARIABLE, role.role_arn)

    def fit_dev_timeout(self) -> None:
        """Dev mode: keep the deployed timeout within the visibility timeout of every SQS
        queue this function consumes, which Lambda requires of an SQS event source
        (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html), so dev
        mode deploys whatever deploy mode deploys; prints a notice when it lowered it. In
        local mode only ``dev_timeout`` changes (what the runner gives the function's
        workers under `pylive dev`)."""
        limits = [
            (queue.node.path, visibility)
            for queue, visibility in consumed_queues(self.function)
            if visibility < self.dev_timeout
        ]
        if not limits:
            return
        queue_path, visibility = min(limits, key=lambda item: item[1])
        fitted = max(visibility, self.timeout)
        if fitted >= self.dev_timeout:
            return
        previous, self.dev_timeout = self.dev_timeout, fitted
        if self.mode != "dev":
            return
        cfn = self.function.node.default_child
        if isinstance(cfn, lambda_.CfnFunction):
            cfn.timeout = int(fitted)
        sys.stderr.write(
            f"{_WARNING_PREFIX}dev mode: function {self.path} gets a timeout of {fitted:.0f} s "
            f"instead of its dev_timeout of {previous:.0f} s: Lambda needs the "
            f"visibility timeout of the SQS queue it consumes ({queue_path}, "
            f"{visibility:.0f} s) to be at least the function's timeout\n"
        )

    def add_environment(self, key: str, value: str) -> Function:
        """Set an environment variable on the deployed function and in local runs."""
        self.environment[key] = value
        self.function.add_environment(key, value)
        return self

    @property
    def role(self) -> iam.IRole | None:
        return self.function.role

    @property
    def function_name(self) -> str:
        return self.function.function_name

    @property
    def function_arn(self) -> str:
        return self.function.function_arn

    @property
    def grant_principal(self) -> iam.IPrincipal:
        return self.function.grant_principal

    @property
    def connections(self) -> ec2.Connections:
        """The function's security groups, to open other resources to it.

        Only a function in a network has them: anything else is a ``ValueError``."""
        if self.network is None:
            raise ValueError(
                f"function {self.node.path!r} is not in a network, so nothing can be opened "
                "to it; create it with Function(..., network=network)"
            )
        return self.function.connections

    def run_on_deploy(self, *, after: Sequence[Construct] = ()) -> triggers.Trigger | None:
        """Invoke this function during `pylive deploy`, once the constructs in ``after`` are
        deployed, and again whenever its code or settings change; a failed invocation fails
        the deploy (and CloudFormation rolls it back). For schema migrations and seed data:
        the function must be safe to run more than once.

        Only in deploy mode: under `pylive dev` the deployed function is the relay stub and
        no runner is connected while the stacks deploy, and locally nothing is deployed; run
        it yourself there (`pylive invoke <id>`). Returns the trigger, or None."""
        if self.mode != "deploy":
            return None
        return triggers.Trigger(
            self,
            "OnDeploy",
            handler=self.function,
            execute_after=list(after),
            execute_on_handler_change=True,
            timeout=cdk.Duration.seconds(self.timeout),
        )

    def grant(self, grantee: Callable[[iam.IGrantable], iam.Grant]) -> iam.Grant:
        """Apply a CDK ``grant_*`` method to this function's role and return the grant.

        ``fn.grant(bucket.grant_read)`` is ``bucket.grant_read(fn.function)``."""
        return grantee(self.function)


def _placement(
    network: Network | None, security_groups: list[ec2.ISecurityGroup] | None
) -> dict[str, Any]:
    """VPC keyword arguments of ``aws_lambda.Function``: none unless in a network."""
    if network is None:
        return {}
    placement: dict[str, Any] = {"vpc": network.vpc, "vpc_subnets": network.private_subnets}
    if security_groups is not None:
        placement["security_groups"] = list(security_groups)
    return placement
