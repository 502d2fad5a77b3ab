"""`pylive vpn`: certificates, ACM import (on moto), the .ovpn profile and the endpoint status.

Certificates are checked by parsing them back and by cryptography's own X.509 path
validation; Client VPN calls, which moto does not implement, go through botocore's Stubber.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from apphelpers import assert_one_line_error
from botocore.stub import Stubber
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from pylive.config import load_config
from pylive.vpn import (
    CERTIFICATE_FILES,
    CertificateArns,
    VpnError,
    arns_path,
    certificate_arns,
    vpn_dir,
    write_arns,
)
from pylive.vpn.acm_import import import_certificates
from pylive.vpn.aws import Aws, find_endpoint_id, write_profile
from pylive.vpn.certs import generate_certificates, write_certificates
from pylive.vpn.profile import build_profile, ca_block
from pylive.vpn.status import endpoint_status, format_status

APP = "demo"
ENDPOINT = "cvpn-endpoint-0123456789abcdef0"
REGION = "us-east-1"


# --- helpers ----------------------------------------------------------------------------------


def make_app(directory: Path, name: str = APP) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pyproject.toml").write_text(f'[tool.pylive]\nname = "{name}"\n')
    return directory


def pylive(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pylive", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env if env is not None else dict(os.environ),
    )


def no_credentials_env(tmp_path: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") or key in ("AWS_REGION", "AWS_DEFAULT_REGION")
    }
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def load(directory: Path, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((directory / name).read_bytes())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def exported_configuration(ca_pem: str, *, crlf: bool = False) -> str:
    """A configuration as `aws ec2 export-client-vpn-client-configuration` returns it for an
    endpoint with mutual authentication (UDP 443, the server certificate's chain in <ca>)."""
    text = (
        "client\n"
        "dev tun\n"
        "proto udp\n"
        f"remote {ENDPOINT}.prod.clientvpn.{REGION}.amazonaws.com 443\n"
        "remote-random-hostname\n"
        "resolv-retry infinite\n"
        "nobind\n"
        "remote-cert-tls server\n"
        "cipher AES-256-GCM\n"
        "verb 3\n"
        "<ca>\n"
        f"{ca_pem.strip()}\n"
        "</ca>\n"
        "\n"
        "\n"
        "reneg-sec 0\n"
        "\n"
        f"verify-x509-name server.{APP}.pylive name\n"
    )
    return text.replace("\n", "\r\n") if crlf else text


def block(profile: str, name: str) -> str:
    match = re.search(rf"^<{name}>\n(.*?)^</{name}>$", profile, re.M | re.S)
    assert match is not None, f"no <{name}> block"
    return match.group(1)


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return make_app(tmp_path / "app")


@pytest.fixture
def certs(app: Path) -> Path:
    directory = vpn_dir(app)
    write_certificates(APP, directory)
    return directory


# --- certificates -----------------------------------------------------------------------------


def test_the_ca_is_a_self_signed_ca(certs: Path) -> None:
    ca = load(certs, "ca.crt")
    assert ca.issuer == ca.subject
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca is True
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    ca.verify_directly_issued_by(ca)
    key = ca.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048


@pytest.mark.parametrize(
    ("cert", "name", "usage", "other"),
    [
        ("server.crt", f"server.{APP}.pylive", "SERVER_AUTH", "CLIENT_AUTH"),
        ("client.crt", f"client.{APP}.pylive", "CLIENT_AUTH", "SERVER_AUTH"),
    ],
)
def test_server_and_client_certificates(
    certs: Path, cert: str, name: str, usage: str, other: str
) -> None:
    ca, leaf = load(certs, "ca.crt"), load(certs, cert)
    leaf.verify_directly_issued_by(ca)  # signed with the CA's key
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == name
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [name]
    ekus = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert getattr(ExtendedKeyUsageOID, usage) in ekus
    assert getattr(ExtendedKeyUsageOID, other) not in ekus
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    public = leaf.public_key()
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
    key = serialization.load_pem_private_key(
        (certs / cert.replace(".crt", ".key")).read_bytes(), None
    )
    assert key.public_key() == public


def test_chains_validate_for_their_purpose(certs: Path) -> None:
    """cryptography's RFC 5280 path validation, as a TLS server and client would do it."""
    ca = load(certs, "ca.crt")
    now = dt.datetime.now(dt.UTC)
    policy = PolicyBuilder().store(Store([ca])).time(now)
    server = policy.build_server_verifier(x509.DNSName(f"server.{APP}.pylive"))
    assert server.verify(load(certs, "server.crt"), [])[-1] == ca
    client = policy.build_client_verifier()
    verified = client.verify(load(certs, "client.crt"), [])
    assert verified.chain[-1] == ca
    with pytest.raises(x509.verification.VerificationError):
        server.verify(load(certs, "client.crt"), [])  # no serverAuth, wrong name


def test_validity(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    generated = generate_certificates(APP, days=30, now=now)
    ca = x509.load_pem_x509_certificate(generated.pems["ca.crt"])
    for name in ("server.crt", "client.crt"):
        leaf = x509.load_pem_x509_certificate(generated.pems[name])
        assert leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc
        assert abs(leaf.not_valid_after_utc - (now + dt.timedelta(days=30))) < dt.timedelta(
            seconds=2
        )
        assert ca.not_valid_before_utc <= leaf.not_valid_before_utc
        assert leaf.not_valid_after_utc <= ca.not_valid_after_utc
    assert ca.not_valid_after_utc - now >= dt.timedelta(days=3649)
    with pytest.raises(VpnError, match="--days 0"):
        generate_certificates(APP, days=0)


def test_file_modes_even_with_a_permissive_umask(app: Path) -> None:
    directory = app / ".pylive" / "vpn"
    old = os.umask(0)
    try:
        write_certificates(APP, directory)
    finally:
        os.umask(old)
    assert mode(directory) == 0o700
    for name in CERTIFICATE_FILES:
        expected = 0o600 if name.endswith(".key") else 0o644
        assert mode(directory / name) == expected, name


def test_existing_files_are_never_overwritten_without_force(certs: Path) -> None:
    before = {name: (certs / name).read_bytes() for name in CERTIFICATE_FILES}
    with pytest.raises(VpnError, match=r"ca\.crt already exists; pass --force"):
        write_certificates(APP, certs)
    assert {name: (certs / name).read_bytes() for name in CERTIFICATE_FILES} == before


def test_one_existing_file_blocks_the_whole_set(tmp_path: Path) -> None:
    directory = tmp_path / "vpn"
    directory.mkdir()
    (directory / "client.key").write_text("mine")
    with pytest.raises(VpnError, match=r"client\.key already exists"):
        write_certificates(APP, directory)
    assert sorted(p.name for p in directory.iterdir()) == ["client.key"]
    assert (directory / "client.key").read_text() == "mine"


def test_force_writes_new_files_with_private_modes(certs: Path) -> None:
    key = certs / "client.key"
    key.chmod(0o644)  # loosened by hand: the new key must not inherit that
    inode, old_key = key.stat().st_ino, key.read_bytes()
    old_ca = (certs / "ca.crt").read_bytes()
    write_certificates(APP, certs, force=True)
    assert key.read_bytes() != old_key and (certs / "ca.crt").read_bytes() != old_ca
    assert mode(key) == 0o600 and key.stat().st_ino != inode
    assert not [p for p in certs.iterdir() if p.name.endswith(".tmp")]
    load(certs, "client.crt").verify_directly_issued_by(load(certs, "ca.crt"))


def test_pylive_s_own_directory_is_tightened_a_chosen_one_is_not(app: Path, tmp_path: Path) -> None:
    own = vpn_dir(app)
    own.mkdir(parents=True)
    own.chmod(0o755)
    write_certificates(APP, own)
    assert mode(own) == 0o700
    chosen = tmp_path / "shared"
    chosen.mkdir()
    chosen.chmod(0o755)
    write_certificates(APP, chosen)
    assert mode(chosen) == 0o755 and mode(chosen / "ca.key") == 0o600


# --- the command line -------------------------------------------------------------------------


def test_cli_certs_then_refusal_then_force(app: Path) -> None:
    first = pylive("vpn", "certs", "--days", "90", cwd=app)
    assert first.returncode == 0, first.stderr
    assert "Next: pylive vpn import" in first.stdout
    directory = vpn_dir(app)
    assert sorted(p.name for p in directory.iterdir()) == sorted(CERTIFICATE_FILES)
    assert_one_line_error(pylive("vpn", "certs", cwd=app), 7, "ca.crt already exists")
    forced = pylive("vpn", "certs", "--force", cwd=app)
    assert forced.returncode == 0, forced.stderr


def test_cli_certs_out(app: Path, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere" / "certs"
    result = pylive("vpn", "certs", "--out", str(out), cwd=app)
    assert result.returncode == 0, result.stderr
    assert (out / "client.key").exists() and mode(out) == 0o700
    assert not vpn_dir(app).exists()


def test_cli_steps_before_certs_say_what_to_run(app: Path, moto_env: dict[str, str]) -> None:
    for command in (["vpn", "import"], ["vpn", "profile", "--endpoint-id", ENDPOINT]):
        assert_one_line_error(
            pylive(*command, cwd=app, env=moto_env), 7, "run `pylive vpn certs` first"
        )


def test_cli_without_credentials(app: Path, tmp_path: Path) -> None:
    assert pylive("vpn", "certs", cwd=app).returncode == 0
    env = no_credentials_env(tmp_path)
    for command in (["vpn", "import"], ["vpn", "profile"], ["vpn", "status"]):
        assert_one_line_error(pylive(*command, cwd=app, env=env), 6, "no AWS credentials")


def test_cli_without_a_deployed_stack(app: Path, moto_env: dict[str, str]) -> None:
    assert pylive("vpn", "certs", cwd=app).returncode == 0
    for command in (["vpn", "profile", "--stage", "nosuch"], ["vpn", "status", "-s", "nosuch"]):
        assert_one_line_error(
            pylive(*command, cwd=app, env=moto_env), 7, "deploy the app with a ClientVpn first"
        )


def test_cli_stack_without_an_endpoint_output(app: Path, moto_env: dict[str, str]) -> None:
    """A real describe_stacks (moto) on a deployed stage that has no ClientVpn."""
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"TopicArn": {"Value": {"Ref": "Topic"}}},
    }
    cloudformation.create_stack(StackName=f"{APP}-novpn-App", TemplateBody=json.dumps(template))
    assert pylive("vpn", "certs", cwd=app).returncode == 0
    assert_one_line_error(
        pylive("vpn", "profile", "-s", "novpn", cwd=app, env=moto_env),
        7,
        f"no Client VPN endpoint among the outputs of {APP}-novpn-App",
    )


def test_cli_stack_output_names_the_endpoint(app: Path, moto_env: dict[str, str]) -> None:
    """The endpoint id is found in the stage's stack outputs (moto's CloudFormation); the
    export itself is a Client VPN call moto lacks, which fails as a one-line error."""
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"VpnEndpointId1A2B3C4D": {"Value": ENDPOINT}},
    }
    cloudformation.create_stack(StackName=f"{APP}-withvpn-App", TemplateBody=json.dumps(template))
    assert find_endpoint_id(Aws(REGION), APP, "withvpn") == ENDPOINT
    assert pylive("vpn", "certs", cwd=app).returncode == 0
    result = pylive("vpn", "profile", "-s", "withvpn", cwd=app, env=moto_env)
    assert_one_line_error(result, 7, f"exporting the configuration of {ENDPOINT} failed")


def test_cli_bad_endpoint_id(app: Path) -> None:
    assert pylive("vpn", "certs", cwd=app).returncode == 0
    assert_one_line_error(
        pylive("vpn", "status", "--endpoint-id", "vpn-1", cwd=app), 2, "not a Client VPN"
    )


def test_cli_help_lists_the_steps(app: Path) -> None:
    result = pylive("vpn", "--help", cwd=app)
    assert result.returncode == 0
    for command in ("certs", "import", "profile", "status"):
        assert f"pylive vpn {command}" in result.stdout


# --- ACM import on moto -----------------------------------------------------------------------


def acm_certificate(arn: str) -> x509.Certificate:
    pem = boto3.client("acm", region_name=REGION).get_certificate(CertificateArn=arn)
    return x509.load_pem_x509_certificate(pem["Certificate"].encode())


def test_import_records_arns_and_reimport_updates_them(
    app: Path, certs: Path, moto_env: dict[str, str]
) -> None:
    first = pylive("vpn", "import", "--stage", "dev", cwd=app, env=moto_env)
    assert first.returncode == 0, first.stderr
    recorded = json.loads(arns_path(app).read_text())
    entry = recorded["stages"]["dev"]
    assert entry["region"] == REGION and entry["account"] == "123456789012"
    server_arn, client_arn = entry["server_certificate_arn"], entry["client_certificate_arn"]
    assert server_arn != client_arn
    assert f"server certificate: {server_arn}" in first.stdout
    assert f"client certificate: {client_arn}" in first.stdout
    acm = boto3.client("acm", region_name=REGION)
    described = acm.describe_certificate(CertificateArn=server_arn)["Certificate"]
    assert described["Type"] == "IMPORTED"
    assert f"server.{APP}.pylive" in described["DomainName"]
    tags = {
        t["Key"]: t["Value"]
        for t in acm.list_tags_for_certificate(CertificateArn=client_arn)["Tags"]
    }
    assert tags["pylive:app"] == APP and tags["pylive:stage"] == "dev"
    assert tags["pylive:vpn"] == "client"
    assert acm_certificate(server_arn) == load(certs, "server.crt")
    chain = acm.get_certificate(CertificateArn=server_arn)["CertificateChain"]
    assert load(certs, "ca.crt") == x509.load_pem_x509_certificate(chain.encode())
    count = len(acm.list_certificates()["CertificateSummaryList"])

    write_certificates(APP, certs, force=True)  # new keys, same ARNs after the re-import
    again = pylive("vpn", "import", "--stage", "dev", cwd=app, env=moto_env)
    assert again.returncode == 0, again.stderr
    assert "Updated in place" in again.stdout
    assert json.loads(arns_path(app).read_text())["stages"]["dev"] == entry
    assert len(acm.list_certificates()["CertificateSummaryList"]) == count
    assert acm_certificate(server_arn) == load(certs, "server.crt")
    assert acm_certificate(client_arn) == load(certs, "client.crt")


def test_import_keeps_other_stages_and_replaces_deleted_certificates(
    app: Path, certs: Path, moto_env: dict[str, str]
) -> None:
    dev = import_certificates(load_config(app, stage="dev"))
    prod = import_certificates(load_config(app, stage="prod"))
    assert not dev.reimported and prod.arns.server != dev.arns.server
    boto3.client("acm", region_name=REGION).delete_certificate(CertificateArn=dev.arns.server)
    again = import_certificates(load_config(app, stage="dev"))
    assert again.arns.server != dev.arns.server  # imported anew
    assert again.arns.client == dev.arns.client  # still there: updated in place
    assert not again.reimported
    recorded = json.loads(arns_path(app).read_text())
    assert recorded["stages"]["prod"]["server_certificate_arn"] == prod.arns.server
    assert recorded["stages"]["dev"]["server_certificate_arn"] == again.arns.server
    # the top level repeats the latest import, for stacks that read the file directly
    assert recorded["stage"] == "dev"
    assert recorded["server_certificate_arn"] == again.arns.server
    assert recorded["client_certificate_arn"] == again.arns.client


def test_import_into_another_region_is_a_new_import(
    app: Path, certs: Path, moto_env: dict[str, str]
) -> None:
    first = import_certificates(load_config(app, stage="dev"))
    other = import_certificates(load_config(app, stage="dev"), region="eu-west-1")
    assert ":eu-west-1:" in other.arns.server and other.arns.server != first.arns.server
    assert certificate_arns(stage="dev", app_root=app) == other.arns


# --- what the stacks read -----------------------------------------------------------------------


class FakeNode:
    def __init__(self, context: dict[str, str]) -> None:
        self.context = context

    def try_get_context(self, key: str) -> str | None:
        return self.context.get(key)


class FakeScope:
    def __init__(self, context: dict[str, str]) -> None:
        self.node = FakeNode(context)


def test_certificate_arns_for_the_synthesized_stage(app: Path) -> None:
    arns = CertificateArns(
        server="arn:aws:acm:us-east-1:123456789012:certificate/s",
        client="arn:aws:acm:us-east-1:123456789012:certificate/c",
        region=REGION,
        account="123456789012",
    )
    assert certificate_arns(stage="dev", app_root=app) is None  # nothing imported yet
    write_arns(arns_path(app), "dev", arns)
    scope = FakeScope({"pylive:stage": "dev", "pylive:root": str(app)})
    assert certificate_arns(scope) == arns
    assert certificate_arns(FakeScope({"pylive:stage": "prod", "pylive:root": str(app)})) is None
    assert certificate_arns(stage="dev", app_root=app) == arns


def test_certificate_arns_refuses_another_region(app: Path) -> None:
    import aws_cdk as cdk

    write_arns(
        arns_path(app),
        "dev",
        CertificateArns(server="arn-s", client="arn-c", region="eu-west-1"),
    )
    cdk_app = cdk.App(context={"pylive:stage": "dev", "pylive:root": str(app)})
    here = cdk.Stack(cdk_app, "Here", env=cdk.Environment(region="eu-west-1"))
    there = cdk.Stack(cdk_app, "There", env=cdk.Environment(region="us-east-1"))
    anywhere = cdk.Stack(cdk_app, "Anywhere")
    assert certificate_arns(here) is not None
    assert certificate_arns(anywhere) is not None
    with pytest.raises(ValueError, match="imported into eu-west-1, but the stack deploys to"):
        certificate_arns(there)


# --- the profile ------------------------------------------------------------------------------


def test_build_profile_embeds_the_client_certificate_and_key(certs: Path) -> None:
    ca_pem = (certs / "ca.crt").read_text()
    cert_pem, key_pem = (certs / "client.crt").read_text(), (certs / "client.key").read_text()
    exported = exported_configuration(ca_pem)
    profile = build_profile(exported, cert_pem, key_pem, comment="app demo, stage dev")
    assert profile.startswith("# pylive: app demo, stage dev\nclient\n")
    assert x509.load_pem_x509_certificate(block(profile, "cert").encode()) == load(
        certs, "client.crt"
    )
    key = serialization.load_pem_private_key(block(profile, "key").encode(), None)
    assert key.public_key() == load(certs, "client.crt").public_key()
    assert x509.load_pem_x509_certificate(block(profile, "ca").encode()) == load(certs, "ca.crt")
    # the blocks follow </ca>; apart from them and the comment, the export is unchanged
    assert profile.index("</ca>") < profile.index("<cert>") < profile.index("<key>")
    inserted = f"<cert>\n{cert_pem}</cert>\n<key>\n{key_pem}</key>\n"
    assert profile.replace(inserted, "").removeprefix("# pylive: app demo, stage dev\n") == exported
    for line in (
        "remote-random-hostname",
        "reneg-sec 0",
        "verify-x509-name server.demo.pylive name",
    ):
        assert line in profile.splitlines()
    assert profile.endswith("\n")
    # building again from the built profile changes nothing
    assert build_profile(profile, cert_pem, key_pem, comment="app demo, stage dev") == profile


def test_build_profile_replaces_file_references_and_old_blocks(certs: Path) -> None:
    ca_pem = (certs / "ca.crt").read_text()
    cert_pem, key_pem = (certs / "client.crt").read_text(), (certs / "client.key").read_text()
    edited = (
        exported_configuration(ca_pem, crlf=True).replace(
            "verb 3\r\n", "verb 3\r\ncert /home/me/client.crt\r\nkey /home/me/client.key\r\n"
        )
        + "<cert>\r\nstale_cert_block\r\n</cert>\r\n"
    )
    profile = build_profile(edited, cert_pem, key_pem)
    # "_" is outside the base64 alphabet: the marker cannot occur in a real certificate.
    assert "\r" not in profile and "stale_cert_block" not in profile and "/home/me" not in profile
    assert profile.count("<cert>") == 1 and profile.count("<key>") == 1
    assert not profile.startswith("#")


@pytest.mark.parametrize(
    ("exported", "message"),
    [
        ("client\ndev tun\n<ca>\nX\n</ca>\n", "no `remote` line"),
        ("client\nremote host 443\n", "no <ca> block"),
    ],
)
def test_build_profile_rejects_incomplete_exports(certs: Path, exported: str, message: str) -> None:
    with pytest.raises(VpnError, match=message):
        build_profile(
            exported, (certs / "client.crt").read_text(), (certs / "client.key").read_text()
        )


def test_ca_block(certs: Path) -> None:
    ca_pem = (certs / "ca.crt").read_text()
    assert ca_block(exported_configuration(ca_pem, crlf=True)) == ca_pem
    assert ca_block("client\n") == ""


# --- AWS call paths with botocore's Stubber ---------------------------------------------------


@pytest.fixture
def stubbed() -> Iterator[tuple[Aws, Stubber, Stubber]]:
    session = boto3.Session(
        region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )
    ec2 = session.client("ec2")
    cloudformation = session.client("cloudformation")
    with Stubber(ec2) as ec2_stub, Stubber(cloudformation) as cf_stub:
        yield Aws(REGION, {"ec2": ec2, "cloudformation": cloudformation}), ec2_stub, cf_stub
        ec2_stub.assert_no_pending_responses()
        cf_stub.assert_no_pending_responses()


def stack(name: str, outputs: dict[str, str], tags: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "StackName": name,
        "StackId": f"arn:aws:cloudformation:{REGION}:123456789012:stack/{name}/1",
        "CreationTime": dt.datetime(2024, 5, 1, tzinfo=dt.UTC),
        "StackStatus": "CREATE_COMPLETE",
        "Outputs": [{"OutputKey": key, "OutputValue": value} for key, value in outputs.items()],
        "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()],
    }


OTHER = "cvpn-endpoint-0fedcba9876543210"


def stub_stacks(cf_stub: Stubber, stacks: list[dict[str, Any]]) -> None:
    # two pages, as describe_stacks returns them for accounts with many stacks
    cf_stub.add_response("describe_stacks", {"Stacks": stacks[:1], "NextToken": "page2"}, {})
    cf_stub.add_response("describe_stacks", {"Stacks": stacks[1:]}, {"NextToken": "page2"})


def test_profile_through_the_stack_output(
    app: Path, certs: Path, stubbed: tuple[Aws, Stubber, Stubber]
) -> None:
    aws, ec2_stub, cf_stub = stubbed
    stub_stacks(
        cf_stub,
        [
            stack(f"{APP}-dev-Network", {"VpcId": "vpc-1"}, {"pylive:stage": "dev"}),
            stack(f"{APP}-dev-2-Aurora", {"VpnEndpointIdE1F2": OTHER}, {"pylive:stage": "dev-2"}),
            stack("other-dev-Aurora", {"VpnEndpointIdE1F2": OTHER}),
            stack(f"{APP}-dev-Aurora", {"VpnEndpointId1A2B3C4D": ENDPOINT, "ProxyEndpoint": "x"}),
        ],
    )
    exported = exported_configuration((certs / "ca.crt").read_text())
    ec2_stub.add_response(
        "export_client_vpn_client_configuration",
        {"ClientConfiguration": exported},
        {"ClientVpnEndpointId": ENDPOINT},
    )
    result = write_profile(load_config(app, stage="dev"), aws=aws)
    assert result.path == vpn_dir(app) / f"{APP}-dev.ovpn"
    assert result.endpoint_id == ENDPOINT and result.warnings == []
    assert result.remote == f"{ENDPOINT}.prod.clientvpn.{REGION}.amazonaws.com:443"
    assert mode(result.path) == 0o600
    profile = result.path.read_text()
    assert block(profile, "cert") == (certs / "client.crt").read_text()
    assert block(profile, "key") == (certs / "client.key").read_text()


def test_profile_with_an_endpoint_id_and_a_foreign_ca(
    app: Path, certs: Path, tmp_path: Path, stubbed: tuple[Aws, Stubber, Stubber]
) -> None:
    aws, ec2_stub, _ = stubbed
    foreign = generate_certificates("elsewhere").pems["ca.crt"].decode()
    ec2_stub.add_response(
        "export_client_vpn_client_configuration",
        {"ClientConfiguration": exported_configuration(foreign)},
        {"ClientVpnEndpointId": OTHER},
    )
    out = tmp_path / "profiles" / "mine.ovpn"
    out.parent.mkdir()
    out.write_text("old")
    out.chmod(0o644)
    result = write_profile(load_config(app), aws=aws, endpoint_id=OTHER, out=out)
    assert result.path == out and mode(out) == 0o600 and "<key>" in out.read_text()
    assert len(result.warnings) == 1 and "not from the CA" in result.warnings[0]


def test_profile_endpoint_that_does_not_exist(
    app: Path, certs: Path, stubbed: tuple[Aws, Stubber, Stubber]
) -> None:
    aws, ec2_stub, _ = stubbed
    ec2_stub.add_client_error(
        "export_client_vpn_client_configuration",
        service_error_code="InvalidClientVpnEndpointId.NotFound",
        service_message=f"The Client VPN endpoint ID '{ENDPOINT}' does not exist",
        expected_params={"ClientVpnEndpointId": ENDPOINT},
    )
    with pytest.raises(VpnError, match=f"{ENDPOINT} does not exist in {REGION}; deploy the app"):
        write_profile(load_config(app), aws=aws, endpoint_id=ENDPOINT)
    assert not list(vpn_dir(app).glob("*.ovpn"))


def test_profile_needs_one_endpoint(
    app: Path, certs: Path, stubbed: tuple[Aws, Stubber, Stubber]
) -> None:
    aws, _, cf_stub = stubbed
    stub_stacks(
        cf_stub,
        [stack(f"{APP}-dev-A", {"EndpointId": ENDPOINT}), stack(f"{APP}-dev-B", {"Id": OTHER})],
    )
    with pytest.raises(VpnError, match=r"several Client VPN endpoints.*pass --endpoint-id"):
        write_profile(load_config(app), aws=aws)


def test_rejected_credentials(
    app: Path, certs: Path, stubbed: tuple[Aws, Stubber, Stubber]
) -> None:
    from pylive.aws_account import CredentialsError

    aws, _, cf_stub = stubbed
    cf_stub.add_client_error(
        "describe_stacks", service_error_code="ExpiredToken", service_message="expired"
    )
    with pytest.raises(CredentialsError, match="AWS rejected the credentials: expired"):
        write_profile(load_config(app), aws=aws)


def test_status(app: Path, stubbed: tuple[Aws, Stubber, Stubber]) -> None:
    aws, ec2_stub, cf_stub = stubbed
    stub_stacks(cf_stub, [stack(f"{APP}-dev-Aurora", {"VpnEndpointId1A2B3C4D": ENDPOINT})])
    ec2_stub.add_response(
        "describe_client_vpn_endpoints",
        {
            "ClientVpnEndpoints": [
                {
                    "ClientVpnEndpointId": ENDPOINT,
                    "Status": {"Code": "available"},
                    "DnsName": f"*.{ENDPOINT}.prod.clientvpn.{REGION}.amazonaws.com",
                    "ClientCidrBlock": "10.250.0.0/22",
                    "SplitTunnel": True,
                    "TransportProtocol": "udp",
                    "VpnPort": 443,
                }
            ]
        },
        {"ClientVpnEndpointIds": [ENDPOINT]},
    )
    ec2_stub.add_response(
        "describe_client_vpn_target_networks",
        {
            "ClientVpnTargetNetworks": [
                {"TargetNetworkId": "subnet-a", "VpcId": "vpc-1", "Status": {"Code": "associated"}},
                {
                    "TargetNetworkId": "subnet-b",
                    "VpcId": "vpc-1",
                    "Status": {"Code": "associating"},
                },
            ]
        },
        {"ClientVpnEndpointId": ENDPOINT},
    )
    connection = {
        "CommonName": f"client.{APP}.pylive",
        "ClientIp": "10.250.0.2",
        "ConnectionEstablishedTime": "2024-05-01 10:00:00",
        "IngressBytes": "2048",
        "EgressBytes": "512",
        "Status": {"Code": "active"},
    }
    ec2_stub.add_response(
        "describe_client_vpn_connections",
        {
            "Connections": [
                connection,
                {**connection, "ClientIp": "10.250.0.3", "Status": {"Code": "terminated"}},
            ]
        },
        {"ClientVpnEndpointId": ENDPOINT},
    )
    status = endpoint_status(load_config(app), aws=aws)
    assert status.state == "available" and status.port == 443 and status.split_tunnel
    assert [a.subnet_id for a in status.associations] == ["subnet-a", "subnet-b"]
    assert [c.client_ip for c in status.connections] == ["10.250.0.2"]
    lines = format_status(status)
    assert lines[0] == f"Client VPN endpoint {ENDPOINT}: available"
    assert "  client CIDR:  10.250.0.0/22, udp/443, split tunnel" in lines
    assert "    subnet-b (vpc-1): associating" in lines
    assert "  active connections: 1" in lines
    assert any("client.demo.pylive 10.250.0.2" in line and "2.0 KB" in line for line in lines)


def test_status_of_a_pending_endpoint_and_a_missing_one(
    app: Path, stubbed: tuple[Aws, Stubber, Stubber]
) -> None:
    aws, ec2_stub, _ = stubbed
    ec2_stub.add_response(
        "describe_client_vpn_endpoints",
        {
            "ClientVpnEndpoints": [
                {"ClientVpnEndpointId": ENDPOINT, "Status": {"Code": "pending-associate"}}
            ]
        },
        {"ClientVpnEndpointIds": [ENDPOINT]},
    )
    ec2_stub.add_response("describe_client_vpn_target_networks", {"ClientVpnTargetNetworks": []})
    ec2_stub.add_response("describe_client_vpn_connections", {"Connections": []})
    status = endpoint_status(load_config(app), aws=aws, endpoint_id=ENDPOINT)
    assert "no subnet associated yet" in "\n".join(format_status(status))

    ec2_stub.add_client_error(
        "describe_client_vpn_endpoints",
        service_error_code="InvalidClientVpnEndpointId.NotFound",
        service_message="not found",
    )
    with pytest.raises(
        VpnError, match="does not exist in us-east-1; deploy the app with a ClientVpn"
    ):
        endpoint_status(load_config(app), aws=aws, endpoint_id=OTHER)


def test_an_unreadable_arns_file(app: Path, certs: Path, moto_env: dict[str, str]) -> None:
    path = arns_path(app)
    path.write_text('{"server_certificate_arn": "from an older layout"}')
    with pytest.raises(VpnError, match=r"cannot read the certificate ARNs .*pylive vpn import"):
        certificate_arns(stage="dev", app_root=app)
    result = import_certificates(load_config(app, stage="dev"))  # rewrites the file
    assert certificate_arns(stage="dev", app_root=app) == result.arns


def test_the_aurora_template_reads_the_arns_file(
    app: Path, certs: Path, moto_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The aurora template's stacks read .pylive/vpn/arns.json directly (one stage)."""
    import importlib.util

    template = Path(__file__).resolve().parents[2] / "templates" / "aurora" / "stacks.py"
    spec = importlib.util.spec_from_file_location("aurora_template_stacks", template)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "vpn_certificates"):
        pytest.skip("the aurora template no longer reads the file itself")
    monkeypatch.chdir(app)
    assert module.vpn_certificates() is None
    result = import_certificates(load_config(app, stage="dev"))
    assert module.vpn_certificates() == {
        "server_certificate_arn": result.arns.server,
        "client_certificate_arn": result.arns.client,
    }


def test_cli_certs_out_inside_the_app_code_is_refused(app: Path) -> None:
    (app / "functions").mkdir()
    for out in ("functions/certs", "certs", "."):
        result = pylive("vpn", "certs", "--out", out, cwd=app)
        assert_one_line_error(result, 7, "inside the app's code")
    assert not (app / "functions" / "certs").exists() and not (app / "certs").exists()
    assert not (app / "ca.key").exists()
    hidden = pylive("vpn", "certs", "--out", ".secrets/vpn", cwd=app)
    assert hidden.returncode == 0, hidden.stderr


def test_cli_force_that_fails_part_way_keeps_the_old_set(app: Path) -> None:
    assert pylive("vpn", "certs", cwd=app).returncode == 0
    directory = vpn_dir(app)
    before = {name: (directory / name).read_bytes() for name in CERTIFICATE_FILES}
    # server.key cannot be replaced (a directory took its place): ca.crt, ca.key and
    # server.crt come before it in the set.
    (directory / "server.key").unlink()
    (directory / "server.key").mkdir()
    del before["server.key"]
    result = pylive("vpn", "certs", "--force", cwd=app)
    assert_one_line_error(result, 7, "nothing was changed")
    after = {name: (directory / name).read_bytes() for name in before}
    assert after == before
    assert sorted(p.name for p in directory.iterdir()) == sorted(CERTIFICATE_FILES)
