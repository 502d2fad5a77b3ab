"""Verify AWS Signature Version 4 on requests to the local WebSocket API (stdlib only).

Two forms are checked, as API Gateway does for ``AWS_IAM`` routes and for @connections:

- a presigned URL (``X-Amz-Algorithm``, ``X-Amz-Credential``, ``X-Amz-Date``,
  ``X-Amz-Expires``, ``X-Amz-SignedHeaders``, ``X-Amz-Signature`` in the query), used to open
  a WebSocket connection;
- an ``Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``
  header with ``X-Amz-Date``, used by SDK clients such as boto3's
  ``apigatewaymanagementapi``.

The signature is recomputed from the request as received (method, raw path, query, the
signed headers, the body) with the secret of the access key, following the SigV4 steps
(canonical request, string to sign, derived key). Every failure is a :class:`SignatureError`
whose message says what did not match; callers answer 403.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

from pylive.in_lambda.signing import (
    ALGORITHM,
    EMPTY_SHA256,
    canonical_path,
    canonical_query,
    signature,
    signing_key,
)

SERVICE = "execute-api"
MAX_CLOCK_SKEW = timedelta(minutes=15)
MAX_PRESIGN_EXPIRES = 7 * 24 * 3600
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"

Headers = Sequence[tuple[str, str]]


class SignatureError(Exception):
    """The request is unsigned, signed for something else, expired, or forged."""


def verify_presigned(
    method: str,
    target: str,
    headers: Headers,
    secrets: Mapping[str, str],
    *,
    now: datetime | None = None,
) -> str:
    """Check a query-string signature; ``target`` is the raw request path with its query.

    Returns the access key id that signed the request.
    """
    path, _, query = target.partition("?")
    pairs = parse_qsl(query, keep_blank_values=True)
    params = dict(pairs)
    if "X-Amz-Signature" not in params:
        raise SignatureError("the request is not signed (no X-Amz-Signature in the query)")
    for name in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders"):
        if name not in params:
            raise SignatureError(f"the signed query lacks {name}")
    _check_algorithm(params["X-Amz-Algorithm"])
    scope = _Scope.parse(params["X-Amz-Credential"])
    timestamp = _parse_date(params["X-Amz-Date"])
    try:
        expires = int(params.get("X-Amz-Expires", "900"))
    except ValueError:
        raise SignatureError("X-Amz-Expires is not a number") from None
    if not 0 < expires <= MAX_PRESIGN_EXPIRES:
        raise SignatureError(f"X-Amz-Expires={expires} is out of range")
    now = now or datetime.now(UTC)
    if now > timestamp + timedelta(seconds=expires):
        raise SignatureError("the signed URL has expired")
    if timestamp - now > MAX_CLOCK_SKEW:
        raise SignatureError("the signature date is in the future")
    signed = params["X-Amz-SignedHeaders"].split(";")
    # SigV4 signs the host in every form, a presigned URL's too (AWS answers 403 otherwise):
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
    if "host" not in signed:
        raise SignatureError("the Host header must be signed (X-Amz-SignedHeaders lacks host)")
    unsigned = [kv for kv in pairs if kv[0] != "X-Amz-Signature"]
    values = _signed_header_values(headers, signed)
    # SDKs sign a presigned URL's (empty) payload either by its hash or as UNSIGNED-PAYLOAD.
    problem = SignatureError("the signature does not match the request")
    for payload_hash in (EMPTY_SHA256, UNSIGNED_PAYLOAD):
        canonical = _canonical_request(method, path, unsigned, values, payload_hash)
        try:
            _compare(scope, params["X-Amz-Date"], canonical, params["X-Amz-Signature"], secrets)
        except SignatureError as exc:
            problem = exc
            continue
        return scope.access_key
    raise problem


def verify_authorization_header(
    method: str,
    target: str,
    headers: Headers,
    body: bytes,
    secrets: Mapping[str, str],
    *,
    now: datetime | None = None,
) -> str:
    """Check an ``Authorization`` header signature; returns the access key id."""
    authorization = _header(headers, "authorization")
    if authorization is None:
        raise SignatureError("the request is not signed (no Authorization header)")
    algorithm, _, rest = authorization.strip().partition(" ")
    _check_algorithm(algorithm)
    fields = dict(
        part.strip().partition("=")[::2] for part in rest.split(",") if "=" in part
    )  # Credential=..., SignedHeaders=..., Signature=...
    for name in ("Credential", "SignedHeaders", "Signature"):
        if not fields.get(name):
            raise SignatureError(f"the Authorization header lacks {name}")
    scope = _Scope.parse(fields["Credential"])
    amz_date = _header(headers, "x-amz-date")
    if amz_date is None:
        raise SignatureError("the signed request lacks an X-Amz-Date header")
    timestamp = _parse_date(amz_date)
    now = now or datetime.now(UTC)
    if abs(now - timestamp) > MAX_CLOCK_SKEW:
        raise SignatureError("the signature has expired (X-Amz-Date is more than 15 min off)")
    signed = fields["SignedHeaders"].split(";")
    if "host" not in signed:
        raise SignatureError("the Host header must be signed")
    payload_hash = _header(headers, "x-amz-content-sha256")
    actual_hash = hashlib.sha256(body).hexdigest()
    if payload_hash is None:
        payload_hash = actual_hash
    elif payload_hash not in (actual_hash, UNSIGNED_PAYLOAD):
        raise SignatureError("X-Amz-Content-SHA256 does not match the body")
    path, _, query = target.partition("?")
    canonical = _canonical_request(
        method,
        path,
        parse_qsl(query, keep_blank_values=True),
        _signed_header_values(headers, signed),
        payload_hash,
    )
    _compare(scope, amz_date, canonical, fields["Signature"], secrets)
    return scope.access_key


# ---------------------------------------------------------------- the SigV4 steps


class _Scope:
    def __init__(self, access_key: str, date: str, region: str, service: str) -> None:
        self.access_key = access_key
        self.date = date
        self.region = region
        self.service = service

    @classmethod
    def parse(cls, credential: str) -> _Scope:
        parts = credential.split("/")
        if len(parts) != 5 or parts[4] != "aws4_request":
            raise SignatureError("the credential scope is malformed")
        access_key, date, region, service, _ = parts
        if service != SERVICE:
            raise SignatureError(f"signed for service {service!r}, not {SERVICE!r}")
        return cls(access_key, date, region, service)

    def text(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


def _canonical_request(
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    signed_headers: Sequence[tuple[str, str]],
    payload_hash: str,
) -> str:
    canonical_headers = "".join(f"{name}:{value}\n" for name, value in signed_headers)
    names = ";".join(name for name, _ in signed_headers)
    return "\n".join(
        [method.upper(), canonical_path(path), canonical_query(query), canonical_headers, names,
         payload_hash]
    )  # fmt: skip


def _signed_header_values(headers: Headers, signed: Sequence[str]) -> list[tuple[str, str]]:
    if sorted(signed) != list(signed) or not all(signed):
        raise SignatureError("SignedHeaders must be a sorted list of lowercase names")
    values: list[tuple[str, str]] = []
    for name in signed:
        found = [" ".join(v.split()) for k, v in headers if k.lower() == name]
        if not found:
            raise SignatureError(f"the signed header {name!r} is missing from the request")
        values.append((name, ",".join(found)))
    return values


def _compare(
    scope: _Scope, amz_date: str, canonical: str, given: str, secrets: Mapping[str, str]
) -> None:
    secret = secrets.get(scope.access_key)
    if secret is None:
        raise SignatureError(f"unknown access key {scope.access_key[:32]!r}")
    if amz_date[:8] != scope.date:
        raise SignatureError("the credential scope date differs from X-Amz-Date")
    key = signing_key(secret, scope.date, scope.region, scope.service)
    expected = signature(key, amz_date, scope.text(), canonical)
    if not hmac.compare_digest(expected, given):
        raise SignatureError("the signature does not match the request")


def _check_algorithm(algorithm: str) -> None:
    if algorithm != ALGORITHM:
        raise SignatureError(f"unsupported signing algorithm {algorithm[:40]!r}")


def _parse_date(value: str) -> datetime:
    # Sliced by hand: strptime costs more than the rest of a signature check.
    try:
        digits = value[0:8] + value[9:15]
        if len(value) != 16 or value[8] != "T" or value[15] != "Z" or not digits.isdigit():
            raise ValueError(value)
        return datetime(
            int(value[0:4]), int(value[4:6]), int(value[6:8]),
            int(value[9:11]), int(value[11:13]), int(value[13:15]), tzinfo=UTC,
        )  # fmt: skip
    except ValueError:
        raise SignatureError(
            f"X-Amz-Date {value[:40]!r} is not in the form 20240101T000000Z"
        ) from None


def _header(headers: Headers, name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None
