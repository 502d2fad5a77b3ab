"""Certificates for Client VPN mutual authentication, made with the cryptography library.

A private CA signs a server certificate (for the endpoint) and a client certificate (for the
developer's OpenVPN client). AWS Client VPN accepts RSA keys of 1024 or 2048 bits only, so
all three keys are RSA 2048; the server certificate carries a domain name (ACM needs one to
import a certificate Client VPN can use) and the client certificate a common name (Client VPN
requires the CN attribute).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pylive.vpn import (
    CA_CERT,
    CA_KEY,
    CERTIFICATE_FILES,
    CLIENT_CERT,
    CLIENT_KEY,
    PRIVATE_FILES,
    PRIVATE_MODE,
    PUBLIC_MODE,
    SERVER_CERT,
    SERVER_KEY,
    VpnError,
    ensure_private_dir,
    write_file,
)

KEY_SIZE = 2048  # the largest RSA key AWS Client VPN accepts
DEFAULT_DAYS = 825  # validity of the server and client certificates
CA_DAYS = 3650  # at least; never shorter than the certificates it signs
MAX_DAYS = 36500
BACKDATE = dt.timedelta(minutes=5)  # tolerate clocks a little behind ours


def dns_label(app_name: str) -> str:
    """The app's name as a DNS label (lower case, no leading or trailing '-')."""
    return app_name.lower().strip("-") or "app"


def server_name(app_name: str) -> str:
    return f"server.{dns_label(app_name)}.pylive"


def client_name(app_name: str) -> str:
    return f"client.{dns_label(app_name)}.pylive"


@dataclass(frozen=True)
class CertificateFiles:
    """The PEM contents of a generated set, by file name (ca.crt, ca.key, server.crt...)."""

    pems: dict[str, bytes]


def generate_certificates(
    app_name: str, *, days: int = DEFAULT_DAYS, now: dt.datetime | None = None
) -> CertificateFiles:
    """A new CA, server and client certificate with their keys, as PEM."""
    if not 1 <= days <= MAX_DAYS:
        raise VpnError(f"--days {days} must be between 1 and {MAX_DAYS}")
    start = (now or dt.datetime.now(dt.UTC)) - BACKDATE
    ca_key = _new_key()
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"{dns_label(app_name)} pylive VPN CA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pylive"),
        ]
    )
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key(), start, max(days, CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            _key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True), critical=True
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pems = {CA_CERT: _cert_pem(ca_cert), CA_KEY: _key_pem(ca_key)}
    for cert_file, key_file, name, usage in (
        (SERVER_CERT, SERVER_KEY, server_name(app_name), ExtendedKeyUsageOID.SERVER_AUTH),
        (CLIENT_CERT, CLIENT_KEY, client_name(app_name), ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        key = _new_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (
            _builder(subject, ca_name, key.public_key(), start, days)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True, key_encipherment=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        pems[cert_file] = _cert_pem(cert)
        pems[key_file] = _key_pem(key)
    return CertificateFiles(pems)


def write_certificates(
    app_name: str, directory: Path, *, days: int = DEFAULT_DAYS, force: bool = False
) -> list[Path]:
    """Generate a set and write it to ``directory``: keys 0600, certificates 0644, the
    directory 0700. Without ``force`` nothing is written when any of the files exists.

    The set is replaced as a whole: every new file is written under a temporary name first,
    then each takes its place; when any step fails the files already replaced get their old
    content back, so a failure leaves the old set intact (never half old, half new).
    """
    if not force:
        for name in CERTIFICATE_FILES:
            if (directory / name).exists() or (directory / name).is_symlink():
                raise VpnError(
                    f"{directory / name} already exists; pass --force to replace the VPN "
                    "certificates"
                )
    generated = generate_certificates(app_name, days=days)
    try:
        ensure_private_dir(directory)
    except OSError as exc:
        raise VpnError(f"cannot create {directory}: {exc.strerror}") from None
    token = secrets.token_hex(6)
    staged: dict[str, Path] = {}
    try:
        for name in CERTIFICATE_FILES:
            mode = PRIVATE_MODE if name in PRIVATE_FILES else PUBLIC_MODE
            staged[name] = directory / f".{name}.{token}.new"
            write_file(staged[name], generated.pems[name], mode=mode, replace=False)
        _swap_in(directory, staged, token, force=force)
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        raise VpnError(
            f"cannot write the VPN certificates to {directory} ({exc.strerror}{where}); "
            "nothing was changed"
        ) from None
    finally:
        for path in staged.values():
            path.unlink(missing_ok=True)
    return [directory / name for name in CERTIFICATE_FILES]


def check_certs_dir(app_root: Path, directory: Path) -> None:
    """Refuse a directory for the keys where pylive takes an app's code from: anywhere in
    the app except hidden directories (``.pylive/vpn``, the default, is one)."""
    root, target = app_root.resolve(), directory.resolve()
    try:
        relative = target.relative_to(root)
    except ValueError:
        return
    if not any(part.startswith(".") for part in relative.parts):
        raise VpnError(
            f"{directory} is inside the app's code ({root}), where private keys could end up "
            "in a bundle or a commit; choose a directory outside the app, or leave out --out "
            "for .pylive/vpn"
        )


def _swap_in(directory: Path, staged: dict[str, Path], token: str, *, force: bool) -> None:
    """Move every staged file to its name; on a failure, put back what was there before."""
    backups: dict[str, Path | None] = {}  # name -> the old file's backup (None: there was none)
    try:
        for name, new in staged.items():
            path = directory / name
            if path.exists() or path.is_symlink():
                if not force:
                    raise VpnError(
                        f"{path} already exists; pass --force to replace the VPN certificates"
                    )
                if path.is_dir() and not path.is_symlink():
                    raise IsADirectoryError(21, "Is a directory", str(path))
                old = directory / f".{name}.{token}.old"
                os.link(path, old, follow_symlinks=False)
                backups[name] = old
            else:
                backups[name] = None
            os.replace(new, path)
    except BaseException:
        for name, saved in backups.items():
            with contextlib.suppress(OSError):
                if saved is None:
                    (directory / name).unlink(missing_ok=True)
                else:
                    os.replace(saved, directory / name)
        raise
    for saved in backups.values():
        if saved is not None:
            saved.unlink(missing_ok=True)


@dataclass(frozen=True)
class LoadedCertificates:
    """The PEM files `pylive vpn import` and `pylive vpn profile` need, checked."""

    ca_cert: bytes
    server_cert: bytes
    server_key: bytes
    client_cert: bytes
    client_key: bytes


def load_certificates(directory: Path, *, need_server: bool = True) -> LoadedCertificates:
    """Read and check the certificates in ``directory``: each parses, each key matches its
    certificate, and the CA signed both certificates. A :class:`VpnError` otherwise."""
    names = (CA_CERT, SERVER_CERT, SERVER_KEY, CLIENT_CERT, CLIENT_KEY)
    data: dict[str, bytes] = {}
    for name in names:
        path = directory / name
        if not need_server and name in (SERVER_CERT, SERVER_KEY):
            data[name] = b""
            continue
        try:
            data[name] = path.read_bytes()
        except FileNotFoundError:
            raise VpnError(
                f"no VPN certificates in {directory} ({name} is missing); "
                "run `pylive vpn certs` first"
            ) from None
        except OSError as exc:
            raise VpnError(f"cannot read {path}: {exc.strerror}") from None
    ca = _load_cert(directory / CA_CERT, data[CA_CERT])
    pairs = [(CLIENT_CERT, CLIENT_KEY)]
    if need_server:
        pairs.insert(0, (SERVER_CERT, SERVER_KEY))
    for cert_name, key_name in pairs:
        cert = _load_cert(directory / cert_name, data[cert_name])
        key = _load_key(directory / key_name, data[key_name])
        if cert.public_key() != key.public_key():
            raise VpnError(f"{directory / key_name} is not the key of {directory / cert_name}")
        if not signed_by(cert, ca):
            raise VpnError(
                f"{directory / cert_name} is not signed by {directory / CA_CERT}; "
                "run `pylive vpn certs --force` to make a new set"
            )
        if cert.not_valid_after_utc <= dt.datetime.now(dt.UTC):
            raise VpnError(
                f"{directory / cert_name} expired on {cert.not_valid_after_utc:%Y-%m-%d}; "
                "run `pylive vpn certs --force` to make a new set"
            )
    return LoadedCertificates(
        ca_cert=data[CA_CERT],
        server_cert=data[SERVER_CERT],
        server_key=data[SERVER_KEY],
        client_cert=data[CLIENT_CERT],
        client_key=data[CLIENT_KEY],
    )


def signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """Whether ``ca``'s key made the signature of ``cert`` (and ``ca`` is its issuer)."""
    if cert.issuer != ca.subject:
        return False
    public_key = ca.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey) or cert.signature_hash_algorithm is None:
        return False
    try:
        public_key.verify(
            cert.signature,
            cert.tbs_certificate_bytes,
            padding.PKCS1v15(),
            cert.signature_hash_algorithm,
        )
    except InvalidSignature:
        return False
    return True


def bundle_contains(bundle_pem: str, cert_pem: bytes) -> bool:
    """Whether the PEM bundle ``bundle_pem`` holds the certificate ``cert_pem``."""
    try:
        wanted = x509.load_pem_x509_certificate(cert_pem)
        bundle = x509.load_pem_x509_certificates(bundle_pem.encode())
    except ValueError:
        return False
    return any(cert == wanted for cert in bundle)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: rsa.RSAPublicKey,
    start: dt.datetime,
    days: int,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + BACKDATE + dt.timedelta(days=days))
    )


def _key_usage(
    *,
    digital_signature: bool = False,
    key_encipherment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    # PKCS#1 ("BEGIN RSA PRIVATE KEY"), unencrypted: what ACM imports and OpenVPN reads.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _load_cert(path: Path, data: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise VpnError(f"{path} is not a PEM certificate") from None


def _load_key(path: Path, data: bytes) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise VpnError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise VpnError(f"{path} is not an RSA key (AWS Client VPN needs RSA 1024 or 2048)")
    return key
