from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Match, Template

from pylive.constructs import Function, Network
from pylive.constructs.network import vpc_resolver_address

# One app, one synthesis, several stacks: the default network and its knobs.
VARIANTS: dict[str, dict[str, Any]] = {
    "Default": {},
    "Knobs": {
        "cidr": "172.16.0.0/16",
        "max_azs": 3,
        "nat_gateways": 2,
        "private_cidr_mask": 19,
        "public_cidr_mask": 26,
    },
    "NoNat": {"nat_gateways": 0},
    "FlowLogs": {"flow_logs": True, "flow_logs_retention": logs.RetentionDays.ONE_WEEK},
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Network, Template]]:
    root = tmp_path_factory.mktemp("network")
    app = cdk.App(outdir=str(root / "cdk.out"), context={"pylive:root": str(root)})
    networks = {}
    for name, kwargs in VARIANTS.items():
        # an explicit environment gives max_azs=3 three AZs (agnostic stacks get two)
        env = cdk.Environment(account="123456789012", region="us-east-1")
        stack = cdk.Stack(app, name, env=env if name == "Knobs" else None)
        networks[name] = (stack, Network(stack, "Network", **kwargs))
    return {name: (net, Template.from_stack(stack)) for name, (stack, net) in networks.items()}


def subnets_of(template: Template, kind: str) -> list[dict[str, Any]]:
    """The subnets CDK tagged as ``kind`` ("Public", "Private" or "Isolated")."""
    found = template.find_resources(
        "AWS::EC2::Subnet",
        {"Properties": {"Tags": Match.array_with([{"Key": "aws-cdk:subnet-type", "Value": kind}])}},
    )
    return [resource["Properties"] for resource in found.values()]


def select(network: Network, selection: ec2.SubnetSelection) -> ec2.SelectedSubnets:
    return network.vpc.select_subnets(subnet_group_name=selection.subnet_group_name)


def logical_ids(template: Template, type_: str) -> list[str]:
    return list(template.find_resources(type_))


def route_tables_of(template: Template, subnet_kind: str) -> set[str]:
    """Route table logical ids associated with subnets of ``subnet_kind``."""
    subnet_ids = set(
        template.find_resources(
            "AWS::EC2::Subnet",
            {
                "Properties": {
                    "Tags": Match.array_with([{"Key": "aws-cdk:subnet-type", "Value": subnet_kind}])
                }
            },
        )
    )
    tables = set()
    for assoc in template.find_resources("AWS::EC2::SubnetRouteTableAssociation").values():
        props = assoc["Properties"]
        if props["SubnetId"]["Ref"] in subnet_ids:
            tables.add(props["RouteTableId"]["Ref"])
    return tables


def default_routes(template: Template) -> dict[str, dict[str, Any]]:
    """Route table logical id -> its 0.0.0.0/0 route's properties."""
    routes = template.find_resources(
        "AWS::EC2::Route", {"Properties": {"DestinationCidrBlock": "0.0.0.0/0"}}
    )
    return {r["Properties"]["RouteTableId"]["Ref"]: r["Properties"] for r in routes.values()}


# --- defaults ---------------------------------------------------------------------------


def test_vpc_cidr_and_no_custom_resource(built: dict[str, tuple[Network, Template]]) -> None:
    network, template = built["Default"]
    template.resource_count_is("AWS::EC2::VPC", 1)
    template.has_resource_properties(
        "AWS::EC2::VPC",
        {"CidrBlock": "10.0.0.0/16", "EnableDnsHostnames": True, "EnableDnsSupport": True},
    )
    # restrict_default_security_group=False: no Lambda-backed custom resource
    template.resource_count_is("AWS::Lambda::Function", 0)
    assert not [t for t in template.to_json()["Resources"].values() if "Custom" in t["Type"]]
    assert network.cidr == "10.0.0.0/16"


def test_two_private_subnets_of_20_in_two_azs(built: dict[str, tuple[Network, Template]]) -> None:
    network, template = built["Default"]
    private = subnets_of(template, "Private")
    assert len(private) == 2
    assert all(s["CidrBlock"].endswith("/20") for s in private)
    assert all(s["MapPublicIpOnLaunch"] is False for s in private)
    assert len({str(s["AvailabilityZone"]) for s in private}) == 2
    selected = select(network, network.private_subnets)
    assert len(selected.subnet_ids) == 2
    # PRIVATE_WITH_EGRESS, not isolated
    assert [s.subnet_id for s in network.vpc.private_subnets] == selected.subnet_ids
    assert network.vpc.isolated_subnets == []


def test_public_subnets_of_24(built: dict[str, tuple[Network, Template]]) -> None:
    network, template = built["Default"]
    public = subnets_of(template, "Public")
    assert len(public) == 2  # the L2 makes one per AZ
    assert all(s["CidrBlock"].endswith("/24") for s in public)
    assert all(s["MapPublicIpOnLaunch"] is True for s in public)
    template.resource_count_is("AWS::EC2::Subnet", 4)
    assert len(select(network, network.public_subnets).subnet_ids) == 2


def test_exactly_one_nat_gateway_in_a_public_subnet(
    built: dict[str, tuple[Network, Template]],
) -> None:
    _, template = built["Default"]
    template.resource_count_is("AWS::EC2::NatGateway", 1)
    template.resource_count_is("AWS::EC2::EIP", 1)
    nat = next(iter(template.find_resources("AWS::EC2::NatGateway").values()))
    public_ids = set(
        template.find_resources(
            "AWS::EC2::Subnet",
            {
                "Properties": {
                    "Tags": Match.array_with([{"Key": "aws-cdk:subnet-type", "Value": "Public"}])
                }
            },
        )
    )
    assert nat["Properties"]["SubnetId"]["Ref"] in public_ids


def test_internet_gateway_attached(built: dict[str, tuple[Network, Template]]) -> None:
    _, template = built["Default"]
    template.resource_count_is("AWS::EC2::InternetGateway", 1)
    [igw] = logical_ids(template, "AWS::EC2::InternetGateway")
    [vpc] = logical_ids(template, "AWS::EC2::VPC")
    template.has_resource_properties(
        "AWS::EC2::VPCGatewayAttachment",
        {"InternetGatewayId": {"Ref": igw}, "VpcId": {"Ref": vpc}},
    )


def test_private_routes_via_nat_public_via_igw(
    built: dict[str, tuple[Network, Template]],
) -> None:
    _, template = built["Default"]
    [nat] = logical_ids(template, "AWS::EC2::NatGateway")
    [igw] = logical_ids(template, "AWS::EC2::InternetGateway")
    routes = default_routes(template)
    private_tables = route_tables_of(template, "Private")
    public_tables = route_tables_of(template, "Public")
    assert len(private_tables) == 2 and len(public_tables) == 2
    for table in private_tables:
        assert routes[table]["NatGatewayId"] == {"Ref": nat}
        assert "GatewayId" not in routes[table]
    for table in public_tables:
        assert routes[table]["GatewayId"] == {"Ref": igw}
        assert "NatGatewayId" not in routes[table]
    assert set(routes) == private_tables | public_tables


def test_flow_logs_off_by_default(built: dict[str, tuple[Network, Template]]) -> None:
    network, template = built["Default"]
    template.resource_count_is("AWS::EC2::FlowLog", 0)
    template.resource_count_is("AWS::Logs::LogGroup", 0)
    assert network.flow_log is None


def test_resolver_address(built: dict[str, tuple[Network, Template]]) -> None:
    assert built["Default"][0].resolver_address == "10.0.0.2"
    assert built["Knobs"][0].resolver_address == "172.16.0.2"


# --- knobs ------------------------------------------------------------------------------


def test_cidr_azs_nat_and_masks(built: dict[str, tuple[Network, Template]]) -> None:
    _, template = built["Knobs"]
    template.has_resource_properties("AWS::EC2::VPC", {"CidrBlock": "172.16.0.0/16"})
    private = subnets_of(template, "Private")
    public = subnets_of(template, "Public")
    assert len(private) == 3 and len(public) == 3
    assert all(s["CidrBlock"].endswith("/19") for s in private)
    assert all(s["CidrBlock"].endswith("/26") for s in public)
    assert all(s["CidrBlock"].startswith("172.16.") for s in private + public)
    template.resource_count_is("AWS::EC2::NatGateway", 2)
    routes = default_routes(template)
    nat_ids = set(logical_ids(template, "AWS::EC2::NatGateway"))
    for table in route_tables_of(template, "Private"):
        assert routes[table]["NatGatewayId"]["Ref"] in nat_ids


def test_no_nat_makes_private_subnets_isolated(
    built: dict[str, tuple[Network, Template]],
) -> None:
    network, template = built["NoNat"]
    template.resource_count_is("AWS::EC2::NatGateway", 0)
    template.resource_count_is("AWS::EC2::EIP", 0)
    isolated = subnets_of(template, "Isolated")
    assert len(isolated) == 2
    assert all(s["CidrBlock"].endswith("/20") for s in isolated)
    routes = default_routes(template)
    assert not route_tables_of(template, "Isolated") & set(routes)
    assert len(select(network, network.private_subnets).subnet_ids) == 2


def test_flow_logs_knob(built: dict[str, tuple[Network, Template]]) -> None:
    network, template = built["FlowLogs"]
    assert network.flow_log is not None
    template.resource_count_is("AWS::EC2::FlowLog", 1)
    [vpc] = logical_ids(template, "AWS::EC2::VPC")
    template.has_resource_properties(
        "AWS::EC2::FlowLog",
        {"ResourceId": {"Ref": vpc}, "ResourceType": "VPC", "TrafficType": "ALL",
         "LogDestinationType": "cloud-watch-logs"},
    )  # fmt: skip
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 7})


# --- the resolver address ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("cidr", "address"),
    [("10.0.0.0/16", "10.0.0.2"), ("192.168.4.0/22", "192.168.4.2"), ("10.1.2.16/28", "10.1.2.18")],
)
def test_resolver_of_a_literal_cidr(cidr: str, address: str) -> None:
    assert vpc_resolver_address(cidr) == address


def test_resolver_of_a_token_cidr_is_a_cloudformation_expression(
    make_stack: Callable[..., cdk.Stack],
) -> None:
    stack = make_stack()
    vpc = ec2.Vpc(stack, "Vpc", nat_gateways=0, restrict_default_security_group=False)
    expression = vpc_resolver_address(vpc.vpc_cidr_block)
    assert cdk.Token.is_unresolved(expression)
    resolved = stack.resolve(expression)
    assert resolved["Fn::Join"][0] == "."
    parts = resolved["Fn::Join"][1]
    assert len(parts) == 4 and parts[3] == "2"
    assert [p["Fn::Select"][0] for p in parts[:3]] == [0, 1, 2]


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cidr": "10.0.0.0"}, "/16 to /28"),  # a host (/32): too small for a VPC
        ({"cidr": "10.0.0.1/16"}, "not an IPv4 network"),
        ({"cidr": "banana"}, "not an IPv4 network"),
        ({"cidr": "fd00::/56"}, "IPv4"),
        ({"cidr": "10.0.0.0/8"}, "/16 to /28"),
        ({"cidr": "10.0.0.0/20"}, "need 8704 addresses, more than the 4096"),
        ({"cidr": "10.0.0.0/22", "private_cidr_mask": 20}, "larger than the VPC range"),
        ({"max_azs": 0}, "max_azs"),
        ({"nat_gateways": 3}, "nat_gateways 3 must be a whole number from 0 to 2"),
        ({"nat_gateways": True}, "nat_gateways"),
        ({"private_cidr_mask": 30}, "private_cidr_mask"),
        ({"public_cidr_mask": "24"}, "public_cidr_mask"),
    ],
)
def test_invalid_settings_are_clear_errors(
    make_stack: Callable[..., cdk.Stack], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Network(make_stack(), "Network", **kwargs)


# --- functions in a network -------------------------------------------------------------


def test_function_placement_security_groups_and_grant(
    make_stack: Callable[..., cdk.Stack],
) -> None:
    stack = make_stack()
    network = Network(stack, "Network")
    group = ec2.SecurityGroup(stack, "Shared", vpc=network.vpc)
    fn = Function(
        stack, "worker", handler="functions/worker.handler", network=network,
        security_groups=[group],
    )  # fmt: skip
    plain = Function(stack, "plain", handler="functions/plain.handler")
    topic = "arn:aws:sns:us-east-1:123456789012:topic"
    topic_grant = fn.grant(
        lambda grantee: iam.Grant.add_to_principal(
            grantee=grantee, actions=["sns:Publish"], resource_arns=[topic]
        )
    )
    assert topic_grant.success
    assert fn.network is network and plain.network is None
    assert [stack.resolve(g.security_group_id) for g in fn.connections.security_groups] == [
        stack.resolve(group.security_group_id)
    ]
    with pytest.raises(ValueError, match="is not in a network"):
        _ = plain.connections
    with pytest.raises(ValueError, match="security_groups need a network"):
        Function(stack, "bad", handler="functions/bad.handler", security_groups=[group])

    template = Template.from_stack(stack)
    functions = template.find_resources("AWS::Lambda::Function")
    worker = next(r for i, r in functions.items() if i.startswith("worker"))["Properties"]
    assert worker["VpcConfig"]["SecurityGroupIds"] == [stack.resolve(group.security_group_id)]
    private_ids = set(
        template.find_resources(
            "AWS::EC2::Subnet",
            {
                "Properties": {
                    "Tags": Match.array_with([{"Key": "aws-cdk:subnet-type", "Value": "Private"}])
                }
            },
        )
    )
    assert {s["Ref"] for s in worker["VpcConfig"]["SubnetIds"]} == private_ids
    other = next(r for i, r in functions.items() if i.startswith("plain"))["Properties"]
    assert "VpcConfig" not in other
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {"PolicyDocument": {"Statement": [Match.object_like({"Action": "sns:Publish"})]}},
    )
