"""SigV4 verification (pylive.emulator.sigv4) against requests signed by botocore."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from pylive.emulator.sigv4 import SignatureError, verify_authorization_header, verify_presigned

SECRETS = {"AKIDLOCAL": "local/secret+key", "AKIDOTHER": "other-secret"}
HOST = "127.0.0.1:8765"


def presign(
    url: str = f"ws://{HOST}/dev?token=a%20b&mode=x",
    *,
    key: str = "AKIDLOCAL",
    token: str | None = "session-token",
    service: str = "execute-api",
    expires: int = 300,
) -> str:
    request = AWSRequest(method="GET", url=url)
    credentials = Credentials(key, SECRETS.get(key, "unknown"), token)
    SigV4QueryAuth(credentials, service, "eu-west-1", expires=expires).add_auth(request)
    return str(request.url)


def check_url(url: str, host: str = HOST, now: datetime | None = None) -> str:
    parts = urlsplit(url)
    return verify_presigned(
        "GET", f"{parts.path}?{parts.query}", [("Host", host)], SECRETS, now=now
    )


def with_query_value(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    pairs = [(k, value if k == name else v) for k, v in parse_qsl(parts.query)]
    return parts._replace(query=urlencode(pairs)).geturl()


def test_a_presigned_url_verifies() -> None:
    assert check_url(presign()) == "AKIDLOCAL"
    assert check_url(presign(token=None)) == "AKIDLOCAL"
    assert check_url(presign(f"ws://{HOST}/dev")) == "AKIDLOCAL"


@pytest.mark.parametrize(
    "name",
    ["token", "mode", "X-Amz-Date", "X-Amz-Expires", "X-Amz-Security-Token", "X-Amz-Signature"],
)
def test_changing_any_query_value_breaks_it(name: str) -> None:
    url = presign()
    value = dict(parse_qsl(urlsplit(url).query))[name]
    changed = "20990101T000000Z" if name == "X-Amz-Date" else value[:-1] + "0"
    if changed == value:
        changed = value[:-1] + "1"
    with pytest.raises(SignatureError):
        check_url(with_query_value(url, name, changed))


def test_another_host_or_path_breaks_it() -> None:
    url = presign()
    with pytest.raises(SignatureError, match="does not match"):
        check_url(url, host="127.0.0.1:8766")
    with pytest.raises(SignatureError, match="does not match"):
        check_url(url.replace("/dev?", "/prod?"))


def test_an_added_parameter_breaks_it() -> None:
    with pytest.raises(SignatureError, match="does not match"):
        check_url(presign() + "&extra=1")


def test_unsigned_unknown_key_wrong_service_and_forged_secret() -> None:
    with pytest.raises(SignatureError, match="not signed"):
        check_url(f"ws://{HOST}/dev?token=x")
    with pytest.raises(SignatureError, match="unknown access key"):
        check_url(presign(key="AKIDNOBODY"))
    with pytest.raises(SignatureError, match="not 'execute-api'"):
        check_url(presign(service="s3"))
    forged = AWSRequest(method="GET", url=f"ws://{HOST}/dev")
    SigV4QueryAuth(Credentials("AKIDLOCAL", "guessed"), "execute-api", "eu-west-1").add_auth(forged)
    with pytest.raises(SignatureError, match="does not match"):
        check_url(str(forged.url))


def test_expiry() -> None:
    url = presign(expires=60)
    signed_at = datetime.now(UTC)
    assert check_url(url, now=signed_at + timedelta(seconds=50)) == "AKIDLOCAL"
    with pytest.raises(SignatureError, match="expired"):
        check_url(url, now=signed_at + timedelta(seconds=70))
    with pytest.raises(SignatureError, match="future"):
        check_url(url, now=signed_at - timedelta(minutes=20))


# ---------------------------------------------------------------- Authorization header


def header_signed(
    method: str = "POST", path: str = "/dev/%40connections/abc%3D", body: bytes = b"hello"
) -> tuple[str, list[tuple[str, str]], bytes]:
    request = AWSRequest(method=method, url=f"http://{HOST}{path}", data=body)
    SigV4Auth(Credentials("AKIDOTHER", SECRETS["AKIDOTHER"]), "execute-api", "us-east-1").add_auth(
        request
    )
    headers = [("Host", HOST), *((k, str(v)) for k, v in request.headers.items())]
    return path, headers, body


def test_a_header_signed_request_verifies() -> None:
    path, headers, body = header_signed()
    assert verify_authorization_header("POST", path, headers, body, SECRETS) == "AKIDOTHER"
    path, headers, body = header_signed("GET", "/dev/@connections/x", b"")
    assert verify_authorization_header("GET", path, headers, body, SECRETS) == "AKIDOTHER"


def test_header_signature_covers_body_method_path_and_date() -> None:
    path, headers, body = header_signed()
    with pytest.raises(SignatureError):
        verify_authorization_header("POST", path, headers, b"hellO", SECRETS)
    with pytest.raises(SignatureError):
        verify_authorization_header("PUT", path, headers, body, SECRETS)
    with pytest.raises(SignatureError):
        verify_authorization_header("POST", path.replace("abc", "abd"), headers, body, SECRETS)
    with pytest.raises(SignatureError, match="expired"):
        later = datetime.now(UTC) + timedelta(minutes=20)
        verify_authorization_header("POST", path, headers, body, SECRETS, now=later)
    without = [(k, v) for k, v in headers if k.lower() != "authorization"]
    with pytest.raises(SignatureError, match="not signed"):
        verify_authorization_header("POST", path, without, body, SECRETS)


class _HostlessQueryAuth(SigV4QueryAuth):
    """Signs a URL with ``X-Amz-SignedHeaders=origin``: the host left out."""

    def headers_to_sign(self, request: AWSRequest) -> Any:
        signed = super().headers_to_sign(request)
        del signed["host"]
        return signed


def test_a_presigned_url_that_does_not_sign_the_host_is_refused() -> None:
    # SigV4 requires the host header in every signature:
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
    request = AWSRequest(method="GET", url=f"ws://{HOST}/dev", headers={"Origin": "http://x"})
    credentials = Credentials("AKIDLOCAL", SECRETS["AKIDLOCAL"])
    _HostlessQueryAuth(credentials, "execute-api", "eu-west-1", expires=60).add_auth(request)
    url = urlsplit(str(request.url))
    assert dict(parse_qsl(url.query))["X-Amz-SignedHeaders"] == "origin"
    headers = [("Host", HOST), ("Origin", "http://x")]
    with pytest.raises(SignatureError, match="Host header must be signed"):
        verify_presigned("GET", f"{url.path}?{url.query}", headers, SECRETS)
