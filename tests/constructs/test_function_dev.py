"""Function in dev mode: the relay stub with the function's own role, network, environment,
and a timeout raised so a breakpoint does not end the invocation."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from pylive.cdk.shipped import SHIPPED_DIR
from pylive.constructs import Function

STUB_SOURCE = "\n".join(p.read_text() for p in sorted((SHIPPED_DIR / "stub").glob("*.py")))

RELAY = {
    "app": "shop",
    "stage": "ada",
    "api_id": "a1b2c3d4e5",
    "relay_url": "wss://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/ada",
    "callback_url": "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/ada",
}


@pytest.fixture
def dev_stack(make_stack: Callable[..., cdk.Stack], tmp_path: Path) -> cdk.Stack:
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "orders.py").write_text("def handler(e, c):\n    return 1\n")
    return make_stack("dev", **{"pylive:relay": RELAY})


def test_dev_mode_deploys_the_stub(dev_stack: cdk.Stack, tmp_path: Path) -> None:
    fn = Function(
        dev_stack,
        "orders",
        handler="functions/orders.handler",
        timeout=10,
        environment={"TABLE": "orders"},
    )
    template = Template.from_stack(dev_stack)
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "stub.handler",
            "Timeout": 900,
            "Environment": {
                "Variables": {
                    "TABLE": "orders",
                    "PYLIVE_RELAY_URL": RELAY["relay_url"],
                    "PYLIVE_CALLBACK_URL": RELAY["callback_url"],
                    "PYLIVE_APP": "shop",
                    "PYLIVE_STAGE": "ada",
                    "PYLIVE_FUNCTION_ID": "Test/orders",
                    "PYLIVE_HANDLER": "functions/orders.handler",
                }
            },
        },
    )
    # The local runner still sees the function's real settings.
    assert (fn.handler, fn.timeout, fn.environment) == (
        "functions/orders.handler",
        10,
        {"TABLE": "orders"},
    )
    bundle = next((tmp_path / ".pylive" / "bundles").iterdir())
    assert (bundle / "stub.py").is_file()
    assert (bundle / "pylive" / "in_lambda" / "protocol" / "__init__.py").is_file()
    assert (bundle / "websockets").is_dir()


def test_dev_timeout_is_configurable_and_never_below_the_timeout(dev_stack: cdk.Stack) -> None:
    Function(dev_stack, "a", handler="functions/orders.handler", timeout=5, dev_timeout=60)
    Function(dev_stack, "b", handler="functions/orders.handler", timeout=120, dev_timeout=60)
    timeouts = sorted(
        r["Properties"]["Timeout"]
        for r in Template.from_stack(dev_stack).find_resources("AWS::Lambda::Function").values()
    )
    assert timeouts == [60, 120]


def test_the_stub_may_only_reach_its_relay(dev_stack: cdk.Stack) -> None:
    Function(dev_stack, "orders", handler="functions/orders.handler")
    template = Template.from_stack(dev_stack)

    def arn(resource: str) -> dict[str, object]:
        return {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    {"Ref": "AWS::Partition"},
                    ":execute-api:",
                    {"Ref": "AWS::Region"},
                    ":",
                    {"Ref": "AWS::AccountId"},
                    f":a1b2c3d4e5/ada/{resource}",
                ],
            ]
        }

    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Action": "execute-api:Invoke",
                            "Effect": "Allow",
                            "Resource": arn("$connect"),
                        },
                    ]
                )
            }
        },
    )


def test_the_stub_may_make_every_connections_call_it_makes_and_no_other(
    dev_stack: cdk.Stack,
) -> None:
    """The stub (pylive/in_lambda/stub) POSTs the invoke and GETs the runner's connection while
    a slow invocation runs; a role that allows POST only (CDK's grantManagementApiAccess,
    aws/aws-cdk#18410) fails every invocation longer than the liveness interval in AWS."""
    Function(dev_stack, "orders", handler="functions/orders.handler")
    template = Template.from_stack(dev_stack)
    granted: dict[str, set[str]] = {}
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            for action in [actions] if isinstance(actions, str) else actions:
                if action.startswith("execute-api:"):
                    resources = statement["Resource"]
                    for resource in resources if isinstance(resources, list) else [resources]:
                        tail = resource["Fn::Join"][1][-1]
                        granted.setdefault(action, set()).add(tail.split(":a1b2c3d4e5/")[1])
    assert granted == {
        "execute-api:Invoke": {"ada/$connect"},
        "execute-api:ManageConnections": {"ada/POST/@connections/*", "ada/GET/@connections/*"},
    }
    called = set(re.findall(r'\b(?:send|_send)\(\s*(?:\w+,\s*)?"([A-Z]+)"', STUB_SOURCE))
    assert called == {"POST", "GET"}  # what pylive/in_lambda/stub calls @connections with


def test_dev_mode_without_relay_settings_says_what_provides_them(
    make_stack: Callable[..., cdk.Stack], tmp_path: Path
) -> None:
    (tmp_path / "functions").mkdir()
    stack = make_stack("dev")
    with pytest.raises(ValueError, match="`pylive dev` provides them"):
        Function(stack, "orders", handler="functions/orders.handler")


def test_dev_mode_lets_the_account_assume_the_role(dev_stack: cdk.Stack) -> None:
    """For `pylive dev --assume-role`: the runner runs the function with its own role."""
    Function(dev_stack, "orders", handler="functions/orders.handler")
    template = Template.from_stack(dev_stack)
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "sts:AssumeRole",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                            }
                        ),
                        Match.object_like(
                            {
                                "Action": "sts:AssumeRole",
                                "Principal": {"AWS": Match.any_value()},
                            }
                        ),
                    ]
                )
            }
        },
    )
    variables = next(iter(template.find_resources("AWS::Lambda::Function").values()))["Properties"][
        "Environment"
    ]["Variables"]
    assert variables["PYLIVE_ROLE_ARN"]["Fn::GetAtt"][1] == "Arn"


def test_run_on_deploy_adds_a_trigger_after_its_dependencies_in_deploy_mode_only(
    make_stack: Callable[..., cdk.Stack], tmp_path: Path
) -> None:
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "schema.py").write_text("def migrate(e, c):\n    return 1\n")
    for mode in ("local", "dev", "deploy"):
        context = {"pylive:relay": RELAY} if mode == "dev" else {}
        stack = make_stack(mode, **context)
        table = cdk.CfnResource(stack, "Table", type="AWS::SQS::Queue")
        fn = Function(stack, "migrate", handler="functions/schema.migrate", timeout=60)
        trigger = fn.run_on_deploy(after=[table])
        triggers = Template.from_stack(stack).find_resources("Custom::Trigger")
        if mode != "deploy":
            assert trigger is None and triggers == {}
            continue
        assert trigger is not None
        ((_, resource),) = triggers.items()
        assert "Table" in resource["DependsOn"]
        assert resource["Properties"]["ExecuteOnHandlerChange"] is True
        assert resource["Properties"]["InvocationType"] == "RequestResponse"
        assert resource["Properties"]["Timeout"] == "60000"
        version = resource["Properties"]["HandlerArn"]["Ref"]
        assert version.startswith("migrateFunctionCurrentVersion")


def test_dev_mode_refuses_a_function_with_no_route_to_the_internet(dev_stack: cdk.Stack) -> None:
    """The stub must reach the relay's public WebSocket API. From isolated subnets there is no
    way: an execute-api VPC endpoint serves private REST APIs only (and its private DNS turns
    calls to public APIs from the VPC into 403s), so this fails at synth, saying why."""
    from pylive.constructs import Network

    network = Network(dev_stack, "Network", nat_gateways=0)
    with pytest.raises(ValueError, match="no route to the internet") as raised:
        Function(dev_stack, "orders", handler="functions/orders.handler", network=network)
    message = str(raised.value)
    assert "nat_gateways" in message and "VPC endpoint" in message


def test_deploy_mode_accepts_a_function_in_isolated_subnets(
    make_stack: Callable[..., cdk.Stack],
) -> None:
    from pylive.constructs import Network

    stack = make_stack("local")
    network = Network(stack, "Network", nat_gateways=0)
    Function(stack, "orders", handler="functions/orders.handler", network=network)


def test_dev_timeout_stays_within_an_sqs_event_sources_visibility_timeout(
    dev_stack: cdk.Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """Lambda refuses an SQS event source whose queue's visibility timeout is shorter than the
    function's timeout: dev mode must still deploy the function, with a timeout that fits,
    and say so."""
    from aws_cdk import aws_lambda_event_sources as sources
    from aws_cdk import aws_sqs as sqs

    queue = sqs.Queue(dev_stack, "Jobs", visibility_timeout=cdk.Duration.seconds(60))
    fn = Function(dev_stack, "orders", handler="functions/orders.handler", timeout=10)
    fn.function.add_event_source(sources.SqsEventSource(queue))
    template = Template.from_stack(dev_stack)
    template.has_resource_properties(
        "AWS::Lambda::Function", {"Handler": "stub.handler", "Timeout": 60}
    )
    assert fn.dev_timeout == 60
    notice = capsys.readouterr().err
    assert "pylive:warning:" in notice and "60" in notice and "visibility timeout" in notice


def test_dev_timeout_with_a_queue_of_the_default_visibility_timeout(dev_stack: cdk.Stack) -> None:
    from aws_cdk import aws_lambda_event_sources as sources
    from aws_cdk import aws_sqs as sqs

    queue = sqs.Queue(dev_stack, "Jobs")  # SQS's default visibility timeout: 30 s
    fn = Function(dev_stack, "orders", handler="functions/orders.handler")
    fn.function.add_event_source(sources.SqsEventSource(queue))
    Template.from_stack(dev_stack).has_resource_properties(
        "AWS::Lambda::Function", {"Handler": "stub.handler", "Timeout": 30}
    )


def test_local_mode_fits_the_dev_timeout_the_runner_uses(
    make_stack: Callable[..., cdk.Stack], capsys: pytest.CaptureFixture[str]
) -> None:
    """`pylive dev` gives the workers the manifest's dev_timeout (synthesized in local mode):
    the same value the deployed stub has."""
    from aws_cdk import aws_lambda_event_sources as sources
    from aws_cdk import aws_sqs as sqs

    stack = make_stack("local")
    queue = sqs.Queue(stack, "Jobs", visibility_timeout=cdk.Duration.seconds(120))
    fn = Function(stack, "orders", handler="functions/orders.handler", timeout=10)
    fn.function.add_event_source(sources.SqsEventSource(queue))
    Template.from_stack(stack)
    assert fn.dev_timeout == 120
    assert "pylive:warning:" not in capsys.readouterr().err


def _memory_sizes(stack: cdk.Stack) -> dict[str, int]:
    resources = Template.from_stack(stack).find_resources("AWS::Lambda::Function")
    return {name: r["Properties"]["MemorySize"] for name, r in resources.items()}


def test_the_stub_gets_a_vcpu_of_memory_and_the_function_keeps_its_own(
    dev_stack: cdk.Stack,
) -> None:
    """Lambda's CPU follows memory: the stub is deployed with at least 1,769 MB (one vCPU),
    while the function's own memory size is what the runner's workers get."""
    small = Function(dev_stack, "small", handler="functions/orders.handler", memory_size=256)
    big = Function(dev_stack, "big", handler="functions/orders.handler", memory_size=3008)
    chosen = Function(
        dev_stack, "chosen", handler="functions/orders.handler", memory_size=512,
        dev_memory_size=256,
    )  # fmt: skip
    sizes = sorted(_memory_sizes(dev_stack).values())
    assert sizes == [256, 1769, 3008]
    assert (small.memory_size, small.dev_memory_size) == (256, 1769)
    assert (big.memory_size, big.dev_memory_size) == (3008, 3008)
    assert (chosen.memory_size, chosen.dev_memory_size) == (512, 256)


@pytest.mark.parametrize("mode", ["deploy", "local"])
def test_only_dev_mode_deploys_the_dev_memory_size(
    make_stack: Callable[..., cdk.Stack], tmp_path: Path, mode: str
) -> None:
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "orders.py").write_text("def handler(e, c):\n    return 1\n")
    stack = make_stack(mode)
    Function(stack, "a", handler="functions/orders.handler", memory_size=512)
    Function(stack, "b", handler="functions/orders.handler", dev_memory_size=2048)
    assert sorted(_memory_sizes(stack).values()) == [128, 512]


@pytest.mark.parametrize(
    ("value", "message"),
    [(64, "from 128 to 10240"), (1769.0, "whole number of MB"), (True, "whole number")],
)
def test_an_invalid_dev_memory_size_is_a_clear_error(
    dev_stack: cdk.Stack, value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=f"dev_memory_size .*{message}"):
        Function(dev_stack, "a", handler="functions/orders.handler", dev_memory_size=value)  # type: ignore[arg-type]
