"""``ClientVpn``: an AWS Client VPN endpoint so a developer's machine reaches the network.

Mutual certificate authentication (a server and a client certificate, both in ACM), UDP on
port 443, split tunnel (only the VPC's traffic goes through the VPN) and the VPC's own DNS
server, so private host names such as the RDS Proxy endpoint resolve on the laptop.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final, Literal

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from pylive.constructs.network import Network, parse_cidr

# AWS Client VPN: the client range must be /12 to /22.
MIN_CLIENT_PREFIX, MAX_CLIENT_PREFIX = 12, 22
PORTS: Final = {443: ec2.VpnPort.HTTPS, 1194: ec2.VpnPort.OPENVPN}
TRANSPORTS: Final = {"udp": ec2.TransportProtocol.UDP, "tcp": ec2.TransportProtocol.TCP}
MIN_SESSION_HOURS, MAX_SESSION_HOURS = 8, 24

_ACM_ARN_RE = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+$")


class ClientVpn(Construct):
    """A Client VPN endpoint into a :class:`~pylive.constructs.network.Network`.

    Required: ``network``, ``server_certificate_arn`` and ``client_certificate_arn`` (ACM
    certificate ARNs; giving the client one, whose CA signs the clients' certificates, is
    what makes the authentication mutual). Keyword arguments (all optional):

    - ``client_cidr`` (default ``"10.250.0.0/22"``): addresses given to VPN clients; /22 or
      larger (down to /12), and it must not overlap the VPC.
    - ``port`` (default ``443``; or ``1194``) and ``transport`` (default ``"udp"``; or
      ``"tcp"``).
    - ``split_tunnel`` (default ``True``): only traffic for the VPC goes through the VPN.
    - ``dns_servers`` (default: the VPC's resolver, its CIDR's base address + 2).
    - ``log_retention`` (default ``RetentionDays.ONE_MONTH``): how long connection logs are
      kept in their CloudWatch log group.
    - ``session_timeout_hours`` (default ``24``; 8, 10, 12 or 24).
    - ``description`` (default ``"pylive client VPN"``).

    Every user with a valid client certificate may reach the whole VPC CIDR (one
    authorization rule); the endpoint is associated with the network's private subnets.
    Attributes: ``endpoint`` (the ``ec2.ClientVpnEndpoint``), ``endpoint_id``,
    ``security_group``, ``connections``, ``log_group``, ``client_cidr``, ``dns_servers``.
    ``database.allow_from(vpn)`` lets VPN clients reach a database's proxy.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        network: Network,
        server_certificate_arn: str,
        client_certificate_arn: str,
        client_cidr: str = "10.250.0.0/22",
        port: int = 443,
        transport: Literal["udp", "tcp"] = "udp",
        split_tunnel: bool = True,
        dns_servers: list[str] | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        session_timeout_hours: int = 24,
        description: str = "pylive client VPN",
    ) -> None:
        super().__init__(scope, id)
        if not isinstance(network, Network):
            raise TypeError(f"network must be a pylive Network, not {type(network).__name__}")
        _check_certificate_arn("server_certificate_arn", server_certificate_arn)
        _check_certificate_arn("client_certificate_arn", client_certificate_arn)
        check_client_cidr(client_cidr, network.cidr)
        if port not in PORTS:
            raise ValueError(f"port {port!r} must be 443 or 1194")
        if transport not in TRANSPORTS:
            raise ValueError(f"transport {transport!r} must be 'udp' or 'tcp'")
        timeouts = {8: ec2.ClientVpnSessionTimeout.EIGHT_HOURS,
                    10: ec2.ClientVpnSessionTimeout.TEN_HOURS,
                    12: ec2.ClientVpnSessionTimeout.TWELVE_HOURS,
                    24: ec2.ClientVpnSessionTimeout.TWENTY_FOUR_HOURS}  # fmt: skip
        if session_timeout_hours not in timeouts:
            raise ValueError(
                f"session_timeout_hours {session_timeout_hours!r} must be 8, 10, 12 or 24"
            )

        self.network: Network = network
        self.client_cidr: str = client_cidr
        self.dns_servers: list[str] = (
            list(dns_servers) if dns_servers is not None else [network.resolver_address]
        )
        self.security_group: ec2.SecurityGroup = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=network.vpc,
            description="Client VPN endpoint: traffic of VPN clients into the VPC",
            allow_all_outbound=True,
        )
        self.log_group: logs.LogGroup = logs.LogGroup(
            self,
            "ConnectionLogs",
            retention=log_retention,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.endpoint: ec2.ClientVpnEndpoint = ec2.ClientVpnEndpoint(
            self,
            "Endpoint",
            vpc=network.vpc,
            cidr=client_cidr,
            server_certificate_arn=server_certificate_arn,
            client_certificate_arn=client_certificate_arn,
            split_tunnel=split_tunnel,
            transport_protocol=TRANSPORTS[transport],
            port=PORTS[port],
            dns_servers=self.dns_servers,
            logging=True,
            log_group=self.log_group,
            authorize_all_users_to_vpc_cidr=True,
            vpc_subnets=network.private_subnets,
            security_groups=[self.security_group],
            session_timeout=timeouts[session_timeout_hours],
            description=description,
        )
        self.endpoint_id: str = self.endpoint.endpoint_id
        cdk.CfnOutput(
            self, "EndpointId", value=self.endpoint_id, description="Client VPN endpoint id"
        )

    @property
    def connections(self) -> ec2.Connections:
        """The endpoint's security group: open a resource to it to let VPN clients in."""
        return self.endpoint.connections


def check_client_cidr(client_cidr: str, vpc_cidr: str) -> None:
    """Raise ``ValueError`` unless ``client_cidr`` is a valid Client VPN range for the VPC."""
    if cdk.Token.is_unresolved(client_cidr):
        return
    clients = parse_cidr(client_cidr, "client_cidr")
    if clients.prefixlen > MAX_CLIENT_PREFIX:
        raise ValueError(
            f"client_cidr {client_cidr!r} must be /{MAX_CLIENT_PREFIX} or larger (such as "
            "'10.250.0.0/22'): AWS Client VPN needs at least 1024 client addresses"
        )
    if clients.prefixlen < MIN_CLIENT_PREFIX:
        raise ValueError(
            f"client_cidr {client_cidr!r} is too large: AWS Client VPN takes /{MIN_CLIENT_PREFIX} "
            f"to /{MAX_CLIENT_PREFIX}"
        )
    if cdk.Token.is_unresolved(vpc_cidr):
        return
    vpc = ipaddress.ip_network(vpc_cidr)
    if clients.overlaps(vpc):
        raise ValueError(
            f"client_cidr {client_cidr!r} overlaps the VPC CIDR {vpc_cidr!r}; choose a client "
            "range outside the VPC, such as '10.250.0.0/22' for a 10.0.0.0/16 VPC"
        )


def _check_certificate_arn(name: str, arn: object) -> None:
    if not isinstance(arn, str) or not arn:
        raise ValueError(f"{name} must be the ARN of an ACM certificate")
    if not cdk.Token.is_unresolved(arn) and not _ACM_ARN_RE.fullmatch(arn):
        raise ValueError(
            f"{name} {arn!r} is not an ACM certificate ARN "
            "(arn:aws:acm:REGION:ACCOUNT:certificate/ID)"
        )
