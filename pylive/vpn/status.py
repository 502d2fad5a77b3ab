"""``pylive vpn status``: the stage's Client VPN endpoint, its subnet associations and
connections, as data and as the lines the command prints."""

from __future__ import annotations

from dataclasses import dataclass

from pylive.config import AppConfig
from pylive.vpn.aws import (
    ENDPOINT_NOT_FOUND,
    Aws,
    aws_errors,
    error_code,
    not_found,
    resolve_endpoint,
)


@dataclass(frozen=True)
class Association:
    subnet_id: str
    vpc_id: str
    status: str


@dataclass(frozen=True)
class Connection:
    common_name: str
    client_ip: str
    established: str
    ingress_bytes: int
    egress_bytes: int


@dataclass(frozen=True)
class EndpointStatus:
    endpoint_id: str
    state: str
    message: str
    dns_name: str
    client_cidr: str
    transport: str
    port: int | None
    split_tunnel: bool
    associations: list[Association]
    connections: list[Connection]  # active ones only


def endpoint_status(
    config: AppConfig,
    *,
    endpoint_id: str | None = None,
    region: str | None = None,
    aws: Aws | None = None,
) -> EndpointStatus:
    """The endpoint's state, its subnet associations and its active connections."""
    import botocore.exceptions

    aws = aws or Aws(region or config.region)
    endpoint_id = resolve_endpoint(aws, config, endpoint_id)
    ec2 = aws.client("ec2")
    with aws_errors(f"describing {endpoint_id}"):
        try:
            described = ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=[endpoint_id])
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) in ENDPOINT_NOT_FOUND:
                raise not_found(endpoint_id, aws.region) from None
            raise
        endpoints = described.get("ClientVpnEndpoints", [])
        if not endpoints:
            raise not_found(endpoint_id, aws.region)
        endpoint = endpoints[0]
        associations = [
            Association(
                subnet_id=str(network.get("TargetNetworkId", "")),
                vpc_id=str(network.get("VpcId", "")),
                status=str(network.get("Status", {}).get("Code", "unknown")),
            )
            for page in ec2.get_paginator("describe_client_vpn_target_networks").paginate(
                ClientVpnEndpointId=endpoint_id
            )
            for network in page.get("ClientVpnTargetNetworks", [])
        ]
        connections = [
            Connection(
                common_name=str(connection.get("CommonName") or connection.get("Username") or "?"),
                client_ip=str(connection.get("ClientIp", "")),
                established=str(connection.get("ConnectionEstablishedTime", "")),
                ingress_bytes=_int(connection.get("IngressBytes")),
                egress_bytes=_int(connection.get("EgressBytes")),
            )
            for page in ec2.get_paginator("describe_client_vpn_connections").paginate(
                ClientVpnEndpointId=endpoint_id
            )
            for connection in page.get("Connections", [])
            if connection.get("Status", {}).get("Code") == "active"
        ]
    status = endpoint.get("Status", {})
    port = endpoint.get("VpnPort")
    return EndpointStatus(
        endpoint_id=endpoint_id,
        state=str(status.get("Code", "unknown")),
        message=str(status.get("Message", "")),
        dns_name=str(endpoint.get("DnsName", "")),
        client_cidr=str(endpoint.get("ClientCidrBlock", "")),
        transport=str(endpoint.get("TransportProtocol", "")),
        port=int(port) if port is not None else None,
        split_tunnel=bool(endpoint.get("SplitTunnel", False)),
        associations=associations,
        connections=connections,
    )


def format_status(status: EndpointStatus) -> list[str]:
    """Lines for the terminal."""
    state = status.state + (f" ({status.message})" if status.message else "")
    lines = [f"Client VPN endpoint {status.endpoint_id}: {state}"]
    if status.state == "pending-associate":
        lines.append("  no subnet associated yet: the endpoint accepts no connections")
    transport = f"{status.transport}/{status.port}" if status.port else status.transport
    tunnel = "split tunnel" if status.split_tunnel else "full tunnel"
    lines.append(f"  DNS name:     {status.dns_name}")
    lines.append(f"  client CIDR:  {status.client_cidr}, {transport}, {tunnel}")
    lines.append(f"  associations: {len(status.associations)}")
    lines.extend(
        f"    {item.subnet_id} ({item.vpc_id}): {item.status}" for item in status.associations
    )
    lines.append(f"  active connections: {len(status.connections)}")
    lines.extend(
        f"    {item.common_name} {item.client_ip} since {item.established} "
        f"(in {_size(item.ingress_bytes)}, out {_size(item.egress_bytes)})"
        for item in status.connections
    )
    return lines


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
