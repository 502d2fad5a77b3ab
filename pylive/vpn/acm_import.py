"""``pylive vpn import``: the stage's server and client certificates into ACM (again, in place,
when they are there already), their ARNs kept next to them for the ClientVpn construct."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pylive.cdk.synth import stage_id
from pylive.config import AppConfig
from pylive.vpn import CertificateArns, arns_path, read_arns, vpn_dir, write_arns
from pylive.vpn.aws import Aws, aws_errors, error_code
from pylive.vpn.certs import load_certificates


@dataclass(frozen=True)
class ImportResult:
    arns: CertificateArns
    reimported: bool  # True when the ARNs of an earlier import were updated in place
    arns_file: Path


def import_certificates(
    config: AppConfig,
    *,
    region: str | None = None,
    certs_dir: Path | None = None,
    aws: Aws | None = None,
) -> ImportResult:
    """Import the server and the client certificate (chain: the CA) into ACM and record their
    ARNs for the stage in ``.pylive/vpn/arns.json``. When the stage already has ARNs in the
    same region, the certificates are re-imported under them, so deployed endpoints keep
    pointing at the same ACM certificates."""
    certs = load_certificates(certs_dir or vpn_dir(config.root))
    region = region or config.region
    aws = aws or Aws(region)
    path = arns_path(config.root)
    previous = read_arns(path, strict=False).get(config.stage)
    if previous is not None and previous.region != region:
        previous = None
    acm = aws.client("acm")
    account = _account(aws)
    if previous is not None and previous.account and account and previous.account != account:
        previous = None
    arns: dict[str, str] = {}
    reimported = True
    for role, cert, key, old in (
        ("server", certs.server_cert, certs.server_key, previous and previous.server),
        ("client", certs.client_cert, certs.client_key, previous and previous.client),
    ):
        arn = _import_one(acm, config, role, cert, key, certs.ca_cert, old or None)
        reimported = reimported and arn == old
        arns[role] = arn
    result = CertificateArns(
        server=arns["server"], client=arns["client"], region=region, account=account
    )
    write_arns(path, config.stage, result)
    return ImportResult(arns=result, reimported=reimported, arns_file=path)


def _import_one(
    acm: Any,
    config: AppConfig,
    role: str,
    cert: bytes,
    key: bytes,
    chain: bytes,
    existing_arn: str | None,
) -> str:
    import botocore.exceptions

    params: dict[str, Any] = {"Certificate": cert, "PrivateKey": key, "CertificateChain": chain}
    if existing_arn:
        with aws_errors(f"re-importing the {role} certificate into ACM"):
            try:
                response = acm.import_certificate(CertificateArn=existing_arn, **params)
            except botocore.exceptions.ClientError as exc:
                if error_code(exc) != "ResourceNotFoundException":
                    raise
                response = None  # deleted from ACM since: import it anew below
        if response is not None:
            return str(response["CertificateArn"])
    tags = [
        {"Key": "Name", "Value": f"{stage_id(config.name, config.stage)} VPN {role}"},
        {"Key": "pylive:app", "Value": config.name},
        {"Key": "pylive:stage", "Value": config.stage},
        {"Key": "pylive:vpn", "Value": role},
    ]
    with aws_errors(f"importing the {role} certificate into ACM"):
        response = acm.import_certificate(Tags=tags, **params)
    return str(response["CertificateArn"])


def _account(aws: Aws) -> str | None:
    with aws_errors("checking the AWS credentials"):
        identity = aws.client("sts").get_caller_identity()
    account = identity.get("Account")
    return str(account) if account else None
