"""``Network``: the VPC an app's functions, database and VPN live in.

Two private subnets (one per Availability Zone) that reach the internet through one NAT
gateway, and public subnets that hold the NAT gateway and route through an internet gateway.
"""

from __future__ import annotations

import ipaddress

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

# What a VPC (and a subnet of it) may be: AWS allows /16 to /28.
MIN_VPC_PREFIX, MAX_VPC_PREFIX = 16, 28

PUBLIC_SUBNET_NAME = "Public"
PRIVATE_SUBNET_NAME = "Private"


def parse_cidr(value: str, what: str) -> ipaddress.IPv4Network:
    """``value`` as an IPv4 network, or a ``ValueError`` that names ``what`` it is."""
    try:
        network = ipaddress.ip_network(value, strict=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{what} {value!r} is not an IPv4 network in CIDR notation "
            f"such as '10.0.0.0/16' ({exc})"
        ) from None
    if not isinstance(network, ipaddress.IPv4Network):
        raise ValueError(f"{what} {value!r} must be an IPv4 network, not IPv6")
    return network


def vpc_resolver_address(cidr: str) -> str:
    """The address of the Amazon-provided DNS server of a VPC: its CIDR's base address + 2.

    ``"10.0.0.0/16"`` -> ``"10.0.0.2"``. A literal CIDR is computed here; an unresolved token
    (a CIDR only known at deploy time) becomes a CloudFormation expression that keeps the
    first three octets and puts ``2`` last, which is right for every VPC of /24 or larger.
    """
    if cdk.Token.is_unresolved(cidr):
        base = cdk.Fn.select(0, cdk.Fn.split("/", cidr))
        octets = cdk.Fn.split(".", base, 4)
        return cdk.Fn.join(".", [cdk.Fn.select(i, octets) for i in range(3)] + ["2"])
    network = parse_cidr(cidr, "VPC CIDR")
    return str(network.network_address + 2)


class Network(Construct):
    """A VPC with private subnets for the app and public subnets for the NAT gateway.

    Keyword arguments (all optional):

    - ``cidr`` (default ``"10.0.0.0/16"``): the VPC's IPv4 range, /16 to /28.
    - ``max_azs`` (default ``2``): how many Availability Zones to use; each gets one private
      and one public subnet. Aurora and its RDS Proxy need at least two (a `Database` in a
      network of one AZ is a synth error).
    - ``nat_gateways`` (default ``1``): NAT gateways, placed in the public subnets. One is
      the cheap choice (private routes of every AZ go through it); one per AZ survives the
      loss of an AZ. ``0`` makes the private subnets isolated: no internet access from them
      (and no `pylive dev`, whose stubs must reach the public relay API).
    - ``private_cidr_mask`` (default ``20``): prefix length of each private subnet.
    - ``public_cidr_mask`` (default ``24``): prefix length of each public subnet.
    - ``flow_logs`` (default ``False``): send VPC flow logs (all traffic) to a CloudWatch
      log group kept for ``flow_logs_retention`` (default one month).

    Attributes: ``vpc`` (the ``ec2.Vpc``), ``cidr`` (the range as given),
    ``private_subnets`` and ``public_subnets`` (subnet selections), ``resolver_address``
    (the VPC's DNS server) and ``flow_log`` (``None`` unless enabled).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cidr: str = "10.0.0.0/16",
        max_azs: int = 2,
        nat_gateways: int = 1,
        private_cidr_mask: int = 20,
        public_cidr_mask: int = 24,
        flow_logs: bool = False,
        flow_logs_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
    ) -> None:
        super().__init__(scope, id)
        _check_int("max_azs", max_azs, 1, 16)
        _check_int("nat_gateways", nat_gateways, 0, max_azs)
        _check_int("private_cidr_mask", private_cidr_mask, MIN_VPC_PREFIX, MAX_VPC_PREFIX)
        _check_int("public_cidr_mask", public_cidr_mask, MIN_VPC_PREFIX, MAX_VPC_PREFIX)
        if not cdk.Token.is_unresolved(cidr):
            _check_fits(parse_cidr(cidr, "cidr"), max_azs, private_cidr_mask, public_cidr_mask)

        self.cidr: str = cidr
        self.max_azs: int = max_azs
        self.nat_gateways: int = nat_gateways
        private_type = (
            ec2.SubnetType.PRIVATE_WITH_EGRESS if nat_gateways else ec2.SubnetType.PRIVATE_ISOLATED
        )
        self.vpc: ec2.Vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(cidr),
            max_azs=max_azs,
            nat_gateways=nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name=PUBLIC_SUBNET_NAME,
                    subnet_type=ec2.SubnetType.PUBLIC,
                    cidr_mask=public_cidr_mask,
                ),
                ec2.SubnetConfiguration(
                    name=PRIVATE_SUBNET_NAME,
                    subnet_type=private_type,
                    cidr_mask=private_cidr_mask,
                ),
            ],
            restrict_default_security_group=False,
        )
        self.private_subnets: ec2.SubnetSelection = ec2.SubnetSelection(
            subnet_group_name=PRIVATE_SUBNET_NAME
        )
        self.public_subnets: ec2.SubnetSelection = ec2.SubnetSelection(
            subnet_group_name=PUBLIC_SUBNET_NAME
        )
        self.resolver_address: str = vpc_resolver_address(cidr)

        self.flow_log: ec2.FlowLog | None = None
        if flow_logs:
            log_group = logs.LogGroup(
                self,
                "FlowLogs",
                retention=flow_logs_retention,
                removal_policy=cdk.RemovalPolicy.DESTROY,
            )
            self.flow_log = self.vpc.add_flow_log(
                "FlowLog",
                destination=ec2.FlowLogDestination.to_cloud_watch_logs(log_group),
                traffic_type=ec2.FlowLogTrafficType.ALL,
            )


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} {value!r} must be a whole number from {low} to {high}")


def _check_fits(
    network: ipaddress.IPv4Network, max_azs: int, private_mask: int, public_mask: int
) -> None:
    """The subnets of every AZ must fit in the VPC's range."""
    prefix = network.prefixlen
    if not MIN_VPC_PREFIX <= prefix <= MAX_VPC_PREFIX:
        raise ValueError(
            f"cidr {str(network)!r}: a VPC range must be /{MIN_VPC_PREFIX} to /{MAX_VPC_PREFIX}"
        )
    for name, mask in (("private_cidr_mask", private_mask), ("public_cidr_mask", public_mask)):
        if mask < prefix:
            raise ValueError(
                f"{name} /{mask} is larger than the VPC range {network} itself "
                f"(use a number from {prefix} to {MAX_VPC_PREFIX})"
            )
    needed = max_azs * (2 ** (32 - private_mask) + 2 ** (32 - public_mask))
    if needed > network.num_addresses:
        raise ValueError(
            f"{max_azs} private /{private_mask} and {max_azs} public /{public_mask} subnets "
            f"need {needed} addresses, more than the {network.num_addresses} of {network}; "
            "use a larger cidr or smaller subnets (a larger cidr mask)"
        )
