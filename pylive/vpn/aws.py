"""The AWS side of ``pylive vpn``: the clients and their errors, the stage's Client VPN
endpoint and its configuration exported as a ready profile. Importing the certificates into
ACM is :mod:`pylive.vpn.acm_import`; the endpoint's state, :mod:`pylive.vpn.status`.

Every AWS failure becomes a one-line :class:`~pylive.vpn.VpnError` (or a
:class:`~pylive.aws_account.CredentialsError` when the credentials are missing or rejected).
Certificates and keys never appear in messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pylive.aws_account import CredentialsError, checked_session
from pylive.cdk.synth import stage_id
from pylive.config import AppConfig
from pylive.errors import UsageError
from pylive.vpn import (
    CA_CERT,
    PRIVATE_MODE,
    VpnError,
    ensure_private_dir,
    vpn_dir,
    write_file,
)
from pylive.vpn.certs import bundle_contains, load_certificates
from pylive.vpn.profile import build_profile, ca_block, remote

ENDPOINT_ID_RE = re.compile(r"^cvpn-endpoint-[0-9a-f]{8,32}$")
_TIMEOUTS = {"connect_timeout": 10, "read_timeout": 30, "retries": {"max_attempts": 3}}
_CREDENTIAL_ERRORS = frozenset(
    {
        "AuthFailure",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    }
)
ENDPOINT_NOT_FOUND = frozenset(
    {"InvalidClientVpnEndpointId.NotFound", "InvalidClientVpnEndpointId.Malformed"}
)
_DEPLOY_HINT = "deploy the app with a ClientVpn first"


class Aws:
    """boto3 clients for one region, made on first use after checking that credentials exist.

    ``clients`` supplies ready clients by service name (tests pass stubbed ones).
    """

    def __init__(self, region: str, clients: Mapping[str, Any] | None = None) -> None:
        self.region = region
        self._clients: dict[str, Any] = dict(clients or {})
        self._session: Any = None

    def client(self, service: str) -> Any:
        if service not in self._clients:
            import botocore.config

            config = botocore.config.Config(region_name=self.region, **_TIMEOUTS)
            self._clients[service] = self._checked_session().client(service, config=config)
        return self._clients[service]

    def _checked_session(self) -> Any:
        if self._session is None:
            self._session = checked_session(self.region)
        return self._session


@contextmanager
def aws_errors(action: str) -> Iterator[None]:
    """Turn botocore's exceptions raised while doing ``action`` into one-line errors."""
    import botocore.exceptions
    import botocore.parsers

    try:
        yield
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = " ".join(str(error.get("Message", "")).split()) or code
        if code in _CREDENTIAL_ERRORS:
            raise CredentialsError(f"AWS rejected the credentials: {message}") from None
        raise VpnError(f"{action} failed: {message} ({code})") from None
    except botocore.exceptions.NoCredentialsError:
        raise CredentialsError(
            "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY"
        ) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise VpnError(f"{action} failed: {exc}") from None
    except botocore.parsers.ResponseParserError:
        # an answer that is not the API's (an emulator lacking the API, a proxy's error page)
        raise VpnError(f"{action} failed: the service's response could not be read") from None


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


# --- the stage's endpoint ---------------------------------------------------------------------


def check_endpoint_id(endpoint_id: str) -> str:
    if not ENDPOINT_ID_RE.fullmatch(endpoint_id):
        raise UsageError(
            f"--endpoint-id {endpoint_id!r} is not a Client VPN endpoint id "
            "(cvpn-endpoint-0123456789abcdef0)"
        )
    return endpoint_id


def find_endpoint_id(aws: Aws, app_name: str, stage: str) -> str:
    """The Client VPN endpoint of the stage: the stack output whose value is an endpoint id,
    among the stacks named ``<app>-<stage>-*``."""
    prefix = f"{stage_id(app_name, stage)}-"
    cloudformation = aws.client("cloudformation")
    stacks: list[str] = []
    found: dict[str, str] = {}  # endpoint id -> stack name
    with aws_errors("listing the CloudFormation stacks"):
        for page in cloudformation.get_paginator("describe_stacks").paginate():
            for stack in page.get("Stacks", []):
                name = str(stack.get("StackName", ""))
                if not _in_stage(stack, prefix, app_name, stage):
                    continue
                stacks.append(name)
                for output in stack.get("Outputs", []):
                    value = str(output.get("OutputValue", ""))
                    if ENDPOINT_ID_RE.fullmatch(value):
                        found.setdefault(value, name)
    where = f"in {aws.region}"
    if not stacks:
        raise VpnError(
            f"no stack of app {app_name!r} stage {stage!r} {where} (stacks named {prefix}*); "
            f"{_DEPLOY_HINT}"
        )
    if not found:
        raise VpnError(
            f"no Client VPN endpoint among the outputs of {', '.join(sorted(stacks))} {where}; "
            f"{_DEPLOY_HINT}, or pass --endpoint-id"
        )
    if len(found) > 1:
        raise VpnError(
            f"several Client VPN endpoints in stage {stage!r} ({', '.join(sorted(found))}); "
            "pass --endpoint-id"
        )
    return next(iter(found))


def _in_stage(stack: Mapping[str, Any], prefix: str, app_name: str, stage: str) -> bool:
    """Whether ``stack`` belongs to the stage: named ``<app>-<stage>-*`` and, when it carries
    the tags pylive's stage sets, tagged with this app and stage (stage names may hold '-',
    so ``my-app-dev-*`` alone would also match the stacks of a stage ``dev-2``)."""
    if not str(stack.get("StackName", "")).startswith(prefix):
        return False
    if stack.get("StackStatus") == "DELETE_COMPLETE":
        return False
    tags = {str(tag.get("Key")): str(tag.get("Value")) for tag in stack.get("Tags", [])}
    if "pylive:stage" in tags and tags["pylive:stage"] != stage:
        return False
    return not ("pylive:app" in tags and tags["pylive:app"] != app_name)


def resolve_endpoint(aws: Aws, config: AppConfig, endpoint_id: str | None) -> str:
    if endpoint_id:
        return check_endpoint_id(endpoint_id)
    return find_endpoint_id(aws, config.name, config.stage)


def not_found(endpoint_id: str, region: str) -> VpnError:
    return VpnError(f"Client VPN endpoint {endpoint_id} does not exist in {region}; {_DEPLOY_HINT}")


# --- profile ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileResult:
    path: Path
    endpoint_id: str
    remote: str | None  # host:port the profile connects to
    warnings: list[str] = field(default_factory=list)


def default_profile_path(config: AppConfig) -> Path:
    return vpn_dir(config.root) / f"{stage_id(config.name, config.stage)}.ovpn"


def write_profile(
    config: AppConfig,
    *,
    out: Path | None = None,
    endpoint_id: str | None = None,
    certs_dir: Path | None = None,
    region: str | None = None,
    aws: Aws | None = None,
) -> ProfileResult:
    """Export the endpoint's client configuration, embed the client certificate and key, and
    write the profile (mode 0600: it holds the private key)."""
    directory = certs_dir or vpn_dir(config.root)
    certs = load_certificates(directory, need_server=False)
    aws = aws or Aws(region or config.region)
    endpoint = resolve_endpoint(aws, config, endpoint_id)
    exported = export_configuration(aws, endpoint)
    profile = build_profile(
        exported,
        certs.client_cert.decode(),
        certs.client_key.decode(),
        comment=f"app {config.name}, stage {config.stage}, endpoint {endpoint}",
    )
    warnings = []
    if not bundle_contains(ca_block(exported), certs.ca_cert):
        warnings.append(
            f"the endpoint's server certificate is not from the CA in {directory / CA_CERT}: "
            "run `pylive vpn import` and deploy again, or the connection will be refused"
        )
    path = out or default_profile_path(config)
    try:
        if out is None:
            ensure_private_dir(path.parent)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
        write_file(path, profile.encode(), mode=PRIVATE_MODE, replace=True)
    except OSError as exc:
        raise VpnError(f"cannot write {path}: {exc.strerror}") from None
    host_port = remote(profile)
    where = None
    if host_port is not None:
        where = host_port[0] if host_port[1] is None else f"{host_port[0]}:{host_port[1]}"
    return ProfileResult(path=path, endpoint_id=endpoint, remote=where, warnings=warnings)


def export_configuration(aws: Aws, endpoint_id: str) -> str:
    """The OpenVPN configuration Client VPN exports for ``endpoint_id``."""
    import botocore.exceptions

    ec2 = aws.client("ec2")
    with aws_errors(f"exporting the configuration of {endpoint_id}"):
        try:
            response = ec2.export_client_vpn_client_configuration(ClientVpnEndpointId=endpoint_id)
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) in ENDPOINT_NOT_FOUND:
                raise not_found(endpoint_id, aws.region) from None
            raise
    text = response.get("ClientConfiguration")
    if not isinstance(text, str) or not text.strip():
        raise VpnError(f"Client VPN returned an empty configuration for {endpoint_id}")
    return text
