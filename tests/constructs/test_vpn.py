from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Match, Template

from pylive.constructs import ClientVpn, Network
from pylive.constructs.vpn import check_client_cidr

SERVER_CERT = "arn:aws:acm:us-east-1:123456789012:certificate/server-1"
CLIENT_CERT = "arn:aws:acm:us-east-1:123456789012:certificate/client-1"
CERTS = {"server_certificate_arn": SERVER_CERT, "client_certificate_arn": CLIENT_CERT}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[ClientVpn, Template]]:
    root = tmp_path_factory.mktemp("vpn")
    app = cdk.App(outdir=str(root / "cdk.out"), context={"pylive:root": str(root)})
    default = cdk.Stack(app, "Default")
    vpn = ClientVpn(default, "Vpn", network=Network(default, "Network"), **CERTS)
    knobs = cdk.Stack(app, "Knobs")
    knob_vpn = ClientVpn(
        knobs,
        "Vpn",
        network=Network(knobs, "Network", cidr="172.20.0.0/16"),
        **CERTS,
        client_cidr="10.100.0.0/20",
        port=1194,
        transport="tcp",
        split_tunnel=False,
        log_retention=logs.RetentionDays.ONE_YEAR,
        session_timeout_hours=12,
        description="team VPN",
    )
    dns = cdk.Stack(app, "Dns")
    dns_vpn = ClientVpn(
        dns, "Vpn", network=Network(dns, "Network"), **CERTS, dns_servers=["10.0.0.2", "1.1.1.1"]
    )
    return {
        "Default": (vpn, Template.from_stack(default)),
        "Knobs": (knob_vpn, Template.from_stack(knobs)),
        "Dns": (dns_vpn, Template.from_stack(dns)),
    }


def only(template: Template, type_: str) -> tuple[str, dict[str, Any]]:
    resources = template.find_resources(type_)
    assert len(resources) == 1, f"{len(resources)} {type_}"
    [(logical_id, resource)] = resources.items()
    return logical_id, resource


def endpoint_props(template: Template) -> dict[str, Any]:
    props: dict[str, Any] = only(template, "AWS::EC2::ClientVpnEndpoint")[1]["Properties"]
    return props


def test_mutual_certificate_authentication(
    built: dict[str, tuple[ClientVpn, Template]],
) -> None:
    props = endpoint_props(built["Default"][1])
    assert props["ServerCertificateArn"] == SERVER_CERT
    assert props["AuthenticationOptions"] == [
        {
            "Type": "certificate-authentication",
            "MutualAuthentication": {"ClientRootCertificateChainArn": CLIENT_CERT},
        }
    ]


def test_udp_443_split_tunnel_client_cidr(built: dict[str, tuple[ClientVpn, Template]]) -> None:
    vpn, template = built["Default"]
    props = endpoint_props(template)
    assert props["TransportProtocol"] == "udp"
    assert props["VpnPort"] == 443
    assert props["SplitTunnel"] is True
    assert props["ClientCidrBlock"] == "10.250.0.0/22"
    assert props["SessionTimeoutHours"] == 24
    assert vpn.client_cidr == "10.250.0.0/22"


def test_dns_is_the_vpc_resolver(built: dict[str, tuple[ClientVpn, Template]]) -> None:
    assert endpoint_props(built["Default"][1])["DnsServers"] == ["10.0.0.2"]
    assert endpoint_props(built["Knobs"][1])["DnsServers"] == ["172.20.0.2"]
    assert endpoint_props(built["Dns"][1])["DnsServers"] == ["10.0.0.2", "1.1.1.1"]


def test_connection_logging_to_a_log_group_with_retention(
    built: dict[str, tuple[ClientVpn, Template]],
) -> None:
    template = built["Default"][1]
    group_id, group = only(template, "AWS::Logs::LogGroup")
    assert group["Properties"]["RetentionInDays"] == 30
    assert endpoint_props(template)["ConnectionLogOptions"] == {
        "Enabled": True,
        "CloudwatchLogGroup": {"Ref": group_id},
    }
    knob_template = built["Knobs"][1]
    knob_template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 365})


def test_authorization_rule_for_the_vpc_cidr(built: dict[str, tuple[ClientVpn, Template]]) -> None:
    template = built["Default"][1]
    endpoint_id, _ = only(template, "AWS::EC2::ClientVpnEndpoint")
    vpc_id, _ = only(template, "AWS::EC2::VPC")
    _, rule = only(template, "AWS::EC2::ClientVpnAuthorizationRule")
    assert rule["Properties"] == {
        "ClientVpnEndpointId": {"Ref": endpoint_id},
        "TargetNetworkCidr": {"Fn::GetAtt": [vpc_id, "CidrBlock"]},
        "AuthorizeAllGroups": True,
    }


def test_associated_with_the_private_subnets(built: dict[str, tuple[ClientVpn, Template]]) -> None:
    template = built["Default"][1]
    endpoint_id, _ = only(template, "AWS::EC2::ClientVpnEndpoint")
    private = {
        i
        for i in template.find_resources(
            "AWS::EC2::Subnet",
            {
                "Properties": {
                    "Tags": Match.array_with([{"Key": "aws-cdk:subnet-type", "Value": "Private"}])
                }
            },
        )
    }
    associations = template.find_resources("AWS::EC2::ClientVpnTargetNetworkAssociation")
    assert len(associations) == 2
    assert {a["Properties"]["SubnetId"]["Ref"] for a in associations.values()} == private
    assert all(
        a["Properties"]["ClientVpnEndpointId"] == {"Ref": endpoint_id}
        for a in associations.values()
    )


def test_own_security_group(built: dict[str, tuple[ClientVpn, Template]]) -> None:
    vpn, template = built["Default"]
    sg_ids = [i for i in template.find_resources("AWS::EC2::SecurityGroup") if "Vpn" in i]
    assert len(sg_ids) == 1
    assert endpoint_props(template)["SecurityGroupIds"] == [{"Fn::GetAtt": [sg_ids[0], "GroupId"]}]
    stack = cdk.Stack.of(vpn)
    groups = vpn.connections.security_groups
    assert [stack.resolve(g.security_group_id) for g in groups] == [
        {"Fn::GetAtt": [sg_ids[0], "GroupId"]}
    ]


def test_output_endpoint_id(built: dict[str, tuple[ClientVpn, Template]]) -> None:
    template = built["Default"][1]
    endpoint_id, _ = only(template, "AWS::EC2::ClientVpnEndpoint")
    outputs = template.find_outputs("*")
    assert [o["Value"] for name, o in outputs.items() if name.startswith("VpnEndpointId")] == [
        {"Ref": endpoint_id}
    ]


def test_knobs_reach_the_template(built: dict[str, tuple[ClientVpn, Template]]) -> None:
    props = endpoint_props(built["Knobs"][1])
    assert props["ClientCidrBlock"] == "10.100.0.0/20"
    assert props["VpnPort"] == 1194
    assert props["TransportProtocol"] == "tcp"
    assert props["SplitTunnel"] is False
    assert props["SessionTimeoutHours"] == 12
    assert props["Description"] == "team VPN"


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"client_cidr": "10.250.0.0/23"}, "must be /22 or larger"),
        ({"client_cidr": "10.250.0.0/24"}, "must be /22 or larger"),
        ({"client_cidr": "10.0.0.0/8"}, "is too large: AWS Client VPN takes /12 to /22"),
        ({"client_cidr": "10.0.0.0/22"}, "overlaps the VPC CIDR '10.0.0.0/16'"),
        ({"client_cidr": "10.0.0.0/12"}, "overlaps the VPC CIDR"),
        ({"client_cidr": "10.250.0.1/22"}, "not an IPv4 network"),
        ({"client_cidr": "fd00::/22"}, "IPv4"),
        ({"server_certificate_arn": "not-an-arn"}, "server_certificate_arn 'not-an-arn'"),
        ({"client_certificate_arn": ""}, "client_certificate_arn must be"),
        ({"port": 80}, "port 80 must be 443 or 1194"),
        ({"transport": "quic"}, "transport 'quic'"),
        ({"session_timeout_hours": 48}, "session_timeout_hours 48"),
    ],
)
def test_invalid_settings_are_clear_errors(
    make_stack: Callable[..., cdk.Stack], kwargs: dict[str, Any], message: str
) -> None:
    stack = make_stack()
    network = Network(stack, "Network")
    with pytest.raises(ValueError, match=re.escape(message)):
        ClientVpn(stack, "Vpn", network=network, **{**CERTS, **kwargs})


def test_client_cidr_checks_without_a_literal_vpc_cidr() -> None:
    check_client_cidr("10.250.0.0/22", cdk.Token.as_string({"Ref": "Cidr"}))
    with pytest.raises(ValueError, match="/22 or larger"):
        check_client_cidr("10.250.0.0/23", cdk.Token.as_string({"Ref": "Cidr"}))
    check_client_cidr("192.168.0.0/22", "10.0.0.0/16")
