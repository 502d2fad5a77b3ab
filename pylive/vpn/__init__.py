"""Client VPN state kept in the app: where the certificates live and the ACM ARNs of each stage.

``pylive vpn certs`` writes the certificates to ``<app>/.pylive/vpn``; ``pylive vpn import``
puts the server and the client certificate into ACM and records their ARNs, per stage, in
``<app>/.pylive/vpn/arns.json``. The app's stacks read them back with
:func:`certificate_arns`::

    from pylive.vpn import certificate_arns

    arns = certificate_arns(self)  # None until `pylive vpn import` ran for this stage
    if arns is not None:
        ClientVpn(self, "Vpn", network=network,
                  server_certificate_arn=arns.server, client_certificate_arn=arns.client)

This module is imported by the synth process, so it stays light: no AWS SDK, no cryptography.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pylive.config import STATE_DIR_NAME, find_project_root
from pylive.errors import PyliveError

VPN_DIR_NAME = "vpn"
ARNS_FILE = "arns.json"

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
SERVER_CERT = "server.crt"
SERVER_KEY = "server.key"
CLIENT_CERT = "client.crt"
CLIENT_KEY = "client.key"
CERTIFICATE_FILES = (CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY, CLIENT_CERT, CLIENT_KEY)
PRIVATE_FILES = frozenset({CA_KEY, SERVER_KEY, CLIENT_KEY})

DIR_MODE = 0o700
PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644


class VpnError(PyliveError):
    """A ``pylive vpn`` step cannot go on: certificates missing, no endpoint deployed..."""

    exit_code = 7


def vpn_dir(app_root: Path) -> Path:
    """The default home of the app's VPN certificates, ARNs and profiles."""
    return app_root / STATE_DIR_NAME / VPN_DIR_NAME


def arns_path(app_root: Path) -> Path:
    return vpn_dir(app_root) / ARNS_FILE


def ensure_private_dir(directory: Path) -> None:
    """Create ``directory`` (mode 0700) and its parents. pylive's own ``.pylive/vpn`` is
    tightened to 0700 when it exists with group or other access; a directory the user chose
    keeps its mode (the private keys in it are 0600 regardless)."""
    directory.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    own = directory.name == VPN_DIR_NAME and directory.parent.name == STATE_DIR_NAME
    if own and directory.stat().st_mode & 0o077:
        directory.chmod(DIR_MODE)


def write_file(path: Path, data: bytes, *, mode: int, replace: bool) -> None:
    """Write ``data`` to a file created with ``mode`` from the start (never widened later).

    Without ``replace`` an existing file is an error (``FileExistsError``). With it, the data
    goes to a fresh temporary file that then takes the place of ``path``, so an existing file
    with looser permissions never holds the new data.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    target = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp") if replace else path
    fd = os.open(target, flags, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        if replace:
            os.replace(target, path)
    except BaseException:
        target.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class CertificateArns:
    """The ACM ARNs of one stage's server and client certificates."""

    server: str
    client: str
    region: str
    account: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {
            "region": self.region,
            "account": self.account,
            "server_certificate_arn": self.server,
            "client_certificate_arn": self.client,
        }

    @classmethod
    def from_json(cls, data: Any) -> CertificateArns | None:
        if not isinstance(data, dict):
            return None
        server, client = data.get("server_certificate_arn"), data.get("client_certificate_arn")
        region, account = data.get("region"), data.get("account")
        if not (isinstance(server, str) and isinstance(client, str) and isinstance(region, str)):
            return None
        return cls(server, client, region, account if isinstance(account, str) else None)


def read_arns(path: Path, *, strict: bool = True) -> dict[str, CertificateArns]:
    """Every stage's ARNs recorded in ``path``; {} when the file does not exist. A file that
    cannot be read is a :class:`VpnError`, or {} when not ``strict`` (it gets rewritten)."""
    try:
        data = json.loads(path.read_text())
        stages = data.get("stages") if isinstance(data, dict) else None
        if not isinstance(stages, dict):
            raise ValueError('no "stages" object')
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        if not strict:
            return {}
        raise VpnError(
            f"{path}: cannot read the certificate ARNs ({exc}); run `pylive vpn import` again"
        ) from None
    found: dict[str, CertificateArns] = {}
    for stage, entry in stages.items():
        arns = CertificateArns.from_json(entry)
        if arns is not None:
            found[str(stage)] = arns
    return found


def write_arns(path: Path, stage: str, arns: CertificateArns) -> None:
    """Record ``arns`` for ``stage`` in ``path``, keeping the other stages' entries.

    The file holds every stage under ``"stages"``; its top level repeats the entry just
    written (``server_certificate_arn``, ``client_certificate_arn``, ``region``, ``stage``),
    for stacks that read the file directly and use a single stage.
    """
    stages = read_arns(path, strict=False)
    stages[stage] = arns
    data: dict[str, Any] = {**arns.to_json(), "stage": stage}
    data["stages"] = {name: entry.to_json() for name, entry in sorted(stages.items())}
    ensure_private_dir(path.parent)
    text = json.dumps(data, indent=2) + "\n"
    write_file(path, text.encode(), mode=PUBLIC_MODE, replace=True)


def certificate_arns(
    scope: Any = None, *, stage: str | None = None, app_root: Path | str | None = None
) -> CertificateArns | None:
    """The ARNs `pylive vpn import` recorded for the stage being synthesized, or None.

    ``scope`` is any construct of the app (a stack, usually): the stage and the app's root
    come from the context pylive's synth sets (``pylive:stage``, ``pylive:root``); ``stage``
    and ``app_root`` override them. Raises ``ValueError`` when the ARNs were imported into
    another region than the one the scope's stack deploys to.
    """
    node = getattr(scope, "node", None)
    if stage is None and node is not None:
        stage = node.try_get_context("pylive:stage")
    if app_root is None and node is not None:
        app_root = node.try_get_context("pylive:root")
    root = Path(app_root) if app_root else find_project_root(Path.cwd())
    if not stage:
        from pylive.config import load_config

        stage = load_config(root).stage
    arns = read_arns(arns_path(root)).get(stage)
    if arns is None or scope is None:
        return arns
    region = _stack_region(scope)
    if region is not None and region != arns.region:
        raise ValueError(
            f"the VPN certificates of stage {stage!r} were imported into {arns.region}, but the "
            f"stack deploys to {region}: run `pylive vpn import --stage {stage} --region "
            f"{region}`"
        )
    return arns


def _stack_region(scope: Any) -> str | None:
    """The region of the stack holding ``scope`` when it is known at synth time."""
    try:
        import aws_cdk as cdk

        region = cdk.Stack.of(scope).region
    except Exception:
        return None
    if not isinstance(region, str) or cdk.Token.is_unresolved(region):
        return None
    return region
