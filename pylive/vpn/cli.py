"""`pylive vpn`: certificates, their import into ACM, the .ovpn profile and the endpoint's
status. Registered on the `pylive` command by :mod:`pylive.cli`."""

from __future__ import annotations

from pathlib import Path

import click

_VPN_STAGE_HELP = "Stage name (default: [tool.pylive] stage, else 'dev')."
_VPN_REGION_HELP = "AWS region (default: [tool.pylive] region, else AWS_REGION, else us-east-1)."
_VPN_CERTS_HELP = "Directory holding the certificates (default: <app>/.pylive/vpn)."
_VPN_ENDPOINT_HELP = "The Client VPN endpoint id (default: read from the stage's stack outputs)."


@click.group()
def vpn() -> None:
    """Reach the app's private network from this machine over AWS Client VPN.

    \b
    pylive vpn certs      create a CA, a server and a client certificate
    pylive vpn import     import them into ACM (ARNs in .pylive/vpn/arns.json)
    pylive deploy         with a ClientVpn in the stacks
    pylive vpn profile    write a ready .ovpn profile for the deployed endpoint
    pylive vpn status     show the endpoint, its subnets and active connections
    """


@vpn.command("certs")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Directory to write to (default: <app>/.pylive/vpn).",
)
@click.option("--force", is_flag=True, help="Replace existing certificates and keys.")
@click.option(
    "--days",
    type=click.IntRange(1, 36500),
    default=825,
    show_default=True,
    help="Validity of the server and client certificates (the CA: at least 10 years).",
)
def vpn_certs(out: Path | None, force: bool, days: int) -> None:
    """Create a CA, a server and a client certificate.

    Keys are RSA 2048, the size AWS Client VPN accepts. Private keys are written with
    mode 0600 in a 0700 directory; existing files are never replaced without --force, and
    --force replaces the whole set or, on a failure, nothing. --out inside the app's code
    (outside a hidden directory such as .pylive) is refused.
    """
    from pylive.config import load_config
    from pylive.vpn import vpn_dir
    from pylive.vpn.certs import check_certs_dir, write_certificates

    config = load_config()
    directory = out or vpn_dir(config.root)
    check_certs_dir(config.root, directory)
    written = write_certificates(config.name, directory, days=days, force=force)
    click.echo(f"Wrote {', '.join(path.name for path in written)} to {directory}")
    click.echo("Next: pylive vpn import")


@vpn.command("import")
@click.option("--stage", "-s", help=_VPN_STAGE_HELP)
@click.option("--region", help=_VPN_REGION_HELP)
@click.option("--certs", type=click.Path(path_type=Path, file_okay=False), help=_VPN_CERTS_HELP)
def vpn_import(stage: str | None, region: str | None, certs: Path | None) -> None:
    """Import the certificates into ACM and record their ARNs.

    The ARNs go to <app>/.pylive/vpn/arns.json under the stage, where the app's stacks read
    them with pylive.vpn.certificate_arns(self). Importing again updates the same ACM
    certificates instead of creating new ones.
    """
    from pylive.config import load_config
    from pylive.vpn.acm_import import import_certificates

    config = load_config(stage=stage)
    result = import_certificates(config, region=region, certs_dir=certs)
    click.echo(f"server certificate: {result.arns.server}")
    click.echo(f"client certificate: {result.arns.client}")
    how = "updated in place" if result.reimported else "imported"
    click.echo(
        f"{how.capitalize()} in {result.arns.region}; ARNs of stage {config.stage!r} "
        f"recorded in {result.arns_file}"
    )


@vpn.command("profile")
@click.option("--stage", "-s", help=_VPN_STAGE_HELP)
@click.option("--region", help=_VPN_REGION_HELP)
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The profile to write (default: <app>/.pylive/vpn/<app>-<stage>.ovpn).",
)
@click.option("--endpoint-id", help=_VPN_ENDPOINT_HELP)
@click.option("--certs", type=click.Path(path_type=Path, file_okay=False), help=_VPN_CERTS_HELP)
def vpn_profile(
    stage: str | None,
    region: str | None,
    out: Path | None,
    endpoint_id: str | None,
    certs: Path | None,
) -> None:
    """Write an OpenVPN profile for the stage's endpoint.

    The endpoint's exported configuration with the client certificate and key embedded,
    written with mode 0600; open it with any OpenVPN client.
    """
    from pylive.config import load_config
    from pylive.vpn.aws import write_profile

    config = load_config(stage=stage)
    result = write_profile(config, out=out, endpoint_id=endpoint_id, certs_dir=certs, region=region)
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    click.echo(f"Wrote {result.path} for {result.endpoint_id} ({result.remote})")
    click.echo(f"Connect: sudo openvpn --config {result.path}")


@vpn.command("status")
@click.option("--stage", "-s", help=_VPN_STAGE_HELP)
@click.option("--region", help=_VPN_REGION_HELP)
@click.option("--endpoint-id", help=_VPN_ENDPOINT_HELP)
def vpn_status(stage: str | None, region: str | None, endpoint_id: str | None) -> None:
    """Show the stage's endpoint, its subnets and connections."""
    from pylive.config import load_config
    from pylive.vpn.status import endpoint_status, format_status

    config = load_config(stage=stage)
    status = endpoint_status(config, endpoint_id=endpoint_id, region=region)
    click.echo("\n".join(format_status(status)))
