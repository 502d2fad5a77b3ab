"""``Function``: a Python Lambda function whose settings pylive can also run locally.

It wraps a real ``aws_lambda.Function`` and keeps its settings as plain attributes, so the
synth process can describe it to the local runner without reading CloudFormation back.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import aws_cdk as cdk
import jsii
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import triggers
from constructs import Construct, IConstruct

from pylive.in_lambda import protocol
from pylive.in_lambda.relay_settings import Relay
from pylive.relay_policy import stub_grants

if TYPE_CHECKING:
    from pylive.constructs.network import Network

MODE_CONTEXT: Final = "pylive:mode"
ROOT_CONTEXT: Final = "pylive:root"
STAGE_CONTEXT: Final = "pylive:stage"
APP_CONTEXT: Final = "pylive:app"
# Dev mode: the debug stack's relay, as `pylive dev` passes it (see relay_settings()).
RELAY_CONTEXT: Final = "pylive:relay"
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
MODES: Final = ("local", "dev", "deploy")
DEFAULT_MODE: Final = "local"

ARCHITECTURES: Final = ("x86_64", "arm64")
# The oldest Python runtime the dev-mode stub (and pylive's runtime modules) support; older
# ones are past Lambda's deprecation (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html).
OLDEST_RUNTIME: Final = "python3.9"

MIN_MEMORY, MAX_MEMORY = 128, 10240
MAX_TIMEOUT = 900
# What SQS uses when a queue sets none (CreateQueue's VisibilityTimeout default).
SQS_DEFAULT_VISIBILITY_TIMEOUT = 30
# The synth process's warning channel (pylive.cdk.synth reads these lines from stderr).
_WARNING_PREFIX = "pylive:warning: "

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
# "dir/sub/module.func" or "package.module.func" (both forms Lambda's Python runtime accepts)
_HANDLER_RE = re.compile(rf"^(?:[A-Za-z0-9_-]+/)*{_IDENT}(?:\.{_IDENT})*\.{_IDENT}$")
_RUNTIME_RE = re.compile(r"^python3\.\d+$")

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


def relay_settings(scope: Construct) -> Relay:
    """The debug stack's relay, from CDK context ``pylive:relay`` (set by ``pylive dev``)."""
    try:
        return Relay.from_context(scope.node.try_get_context(RELAY_CONTEXT))
    except ValueError:
        names = ", ".join(f.name for f in fields(Relay))
        raise ValueError(
            f"dev mode needs the debug stack's relay settings in CDK context {RELAY_CONTEXT} "
            f"({names}); `pylive dev` provides them"
        ) from None


def synth_mode(scope: Construct) -> str:
    """The pylive synth mode of the app ``scope`` belongs to (CDK context ``pylive:mode``)."""
    mode = scope.node.try_get_context(MODE_CONTEXT) or DEFAULT_MODE
    if mode not in MODES:
        raise ValueError(
            f"CDK context {MODE_CONTEXT}={mode!r} is not a pylive mode "
            f"(expected one of: {', '.join(MODES)})"
        )
    return str(mode)


def app_root(scope: Construct) -> Path:
    """The app root (CDK context ``pylive:root``; the working directory when unset)."""
    root = scope.node.try_get_context(ROOT_CONTEXT)
    return Path(root) if root else Path.cwd()


def split_handler(handler: str) -> tuple[str, str]:
    """``"functions/hello.handler"`` -> ``("functions/hello", "handler")``, after validation."""
    if not isinstance(handler, str) or not _HANDLER_RE.fullmatch(handler):
        raise ValueError(
            f"handler {handler!r} must look like 'path/module.func' "
            "(for example 'functions/hello.handler': function `handler` in functions/hello.py)"
        )
    module, _, func = handler.rpartition(".")
    return module, func


def handler_module_file(handler: str) -> str:
    """The handler's module as a relative file path: ``"functions/hello.py"``."""
    module, _ = split_handler(handler)
    directory, _, dotted = module.rpartition("/")
    relative = dotted.replace(".", "/") + ".py"
    return f"{directory}/{relative}" if directory else relative


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
        if not isinstance(runtime, str) or not _RUNTIME_RE.fullmatch(runtime):
            raise ValueError(f"runtime {runtime!r} must be a Python runtime such as 'python3.12'")
        if _python_version(runtime) < _python_version(OLDEST_RUNTIME):
            raise ValueError(
                f"runtime {runtime!r} is older than {OLDEST_RUNTIME}, the oldest Python "
                "runtime pylive supports (Lambda no longer supports older ones); use "
                "'python3.12' or newer"
            )
        if architecture not in ARCHITECTURES:
            raise ValueError(
                f"architecture {architecture!r} must be one of: {', '.join(ARCHITECTURES)}"
            )
        _check_memory("memory_size", memory_size)
        if dev_memory_size is not None:
            _check_memory("dev_memory_size", dev_memory_size)
        if security_groups is not None and network is None:
            raise ValueError("security_groups need a network: pass network=... as well")

        self.mode: str = synth_mode(self)
        self.handler: str = handler
        self.code: str = code
        self.code_dir: Path = (app_root(self) / code).resolve()
        self.runtime: str = runtime
        self.architecture: str = architecture
        self.memory_size: int = memory_size
        self.timeout: float = _timeout_seconds(timeout)
        self.environment: dict[str, str] = dict(environment or {})
        self.network: Network | None = network
        self.dev_timeout: float = max(_timeout_seconds(dev_timeout), self.timeout)
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
            cdk.Aspects.of(self).add(_FitDevTimeout(self))

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
        """What the stub needs to reach the runner (see stub/stub.py)."""
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

        # Exactly the calls stub/stub.py makes (see pylive.relay_policy): the local cloud
        # enforces the same list on its stubs.
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
            for queue, visibility in _consumed_queues(self.function)
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


@jsii.implements(cdk.IAspect)
class _FitDevTimeout:
    def __init__(self, function: Function) -> None:
        self.function = function

    def visit(self, node: IConstruct) -> None:
        if node.node.path == self.function.node.path:
            self.function.fit_dev_timeout()


def _consumed_queues(function: lambda_.Function) -> list[tuple[sqs.Queue, float]]:
    """The SQS queues of the app that ``function`` has event sources for, with their
    visibility timeouts (in seconds; queues whose timeout is only known at deploy time are
    left out)."""
    mappings = [
        child for child in function.node.children if isinstance(child, lambda_.EventSourceMapping)
    ]
    if not mappings:
        return []
    sources = set()
    for mapping in mappings:
        cfn = mapping.node.default_child
        if isinstance(cfn, lambda_.CfnEventSourceMapping) and cfn.event_source_arn:
            sources.add(cfn.event_source_arn)
    found: list[tuple[sqs.Queue, float]] = []
    for node in function.node.root.node.find_all():
        if isinstance(node, sqs.Queue) and node.queue_arn in sources:
            queue = node.node.default_child
            value = queue.visibility_timeout if isinstance(queue, sqs.CfnQueue) else None
            if value is None:
                found.append((node, float(SQS_DEFAULT_VISIBILITY_TIMEOUT)))
            elif isinstance(value, int | float) and not cdk.Token.is_unresolved(value):
                found.append((node, float(value)))
    return found


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


def _check_memory(name: str, value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not MIN_MEMORY <= value <= MAX_MEMORY
    ):
        raise ValueError(
            f"{name} {value!r} must be a whole number of MB from {MIN_MEMORY} to {MAX_MEMORY}"
        )


def _python_version(runtime: str) -> tuple[int, ...]:
    """``"python3.12"`` -> ``(3, 12)``."""
    return tuple(int(part) for part in runtime.removeprefix("python").split("."))


def _timeout_seconds(timeout: int | float | cdk.Duration) -> float:
    if isinstance(timeout, cdk.Duration):
        try:
            seconds: float = timeout.to_seconds()
        except RuntimeError as exc:
            raise ValueError(f"timeout: {str(exc).splitlines()[0]}") from None
    elif isinstance(timeout, int | float) and not isinstance(timeout, bool):
        seconds = timeout
    else:
        raise ValueError(f"timeout {timeout!r} must be a number of seconds or a Duration")
    if not 1 <= seconds <= MAX_TIMEOUT or seconds != int(seconds):
        raise ValueError(
            f"timeout {seconds!r} s must be a whole number of seconds from 1 to {MAX_TIMEOUT}"
        )
    return float(seconds)
