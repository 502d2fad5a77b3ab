"""pylive.in_lambda.signing against botocore's signers (same request, same instant) and the local
API's verifier."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from pylive.emulator.sigv4 import SignatureError, verify_authorization_header, verify_presigned
from pylive.in_lambda.signing import Signer

NOW = dt.datetime(2026, 11, 27, 6, 30, 5, tzinfo=dt.UTC)
KEY, SECRET = "AKIAEXAMPLEKEY000001", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _frozen() -> mock._patch[mock.Mock]:
    return mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None))


def _botocore_headers(method: str, url: str, body: bytes, token: str | None) -> dict[str, str]:
    request = AWSRequest(method=method, url=url, data=body)
    with _frozen():
        SigV4Auth(Credentials(KEY, SECRET, token), "execute-api", "eu-west-1").add_auth(request)
    return {k.lower(): v for k, v in request.headers.items()}


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEJr//////////token+/="])
@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", "http://127.0.0.1:4510/dev/@connections/Ab1%3D", b'{"action":"invoke"}'),
        ("GET", "https://abc.execute-api.eu-west-1.amazonaws.com/dev/@connections/x", b""),
        ("DELETE", "https://abc.execute-api.eu-west-1.amazonaws.com:443/prod/@connections/y", b""),
        ("POST", "http://localhost:80/a/./b/../c?z=1&a=%2F&a=0", b"x" * 70_000),
    ],
)
def test_headers_match_botocore(method: str, url: str, body: bytes, token: str | None) -> None:
    ours = Signer(KEY, SECRET, token, "eu-west-1").headers(method, url, body, now=NOW.timestamp())
    theirs = _botocore_headers(method, url, body, token)
    mine = {k.lower(): v for k, v in ours}
    assert mine["authorization"] == theirs["authorization"]
    assert mine["x-amz-date"] == theirs["x-amz-date"]
    assert mine.get("x-amz-security-token") == theirs.get("x-amz-security-token")


@pytest.mark.parametrize("token", [None, "session+token/=="])
def test_presign_matches_botocore(token: str | None) -> None:
    url = "ws://127.0.0.1:4510/dev?role=stub&app=my%20app&stage=dev"
    ours = Signer(KEY, SECRET, token, "us-east-1").presign(url, expires=300, now=NOW.timestamp())
    request = AWSRequest(method="GET", url=url)
    with _frozen():
        SigV4QueryAuth(Credentials(KEY, SECRET, token), "execute-api", "us-east-1", 300).add_auth(
            request
        )
    assert ours == request.url


def test_the_local_api_accepts_both_and_rejects_a_wrong_secret() -> None:
    signer = Signer(KEY, SECRET, None, "us-east-1")
    url = "http://127.0.0.1:9/dev/@connections/conn%3D1"
    body = b'{"n": 1}'
    headers = signer.headers("POST", url, body)
    target = "/dev/@connections/conn%3D1"
    assert verify_authorization_header("POST", target, headers, body, {KEY: SECRET}) == KEY
    with pytest.raises(SignatureError, match="does not match"):
        verify_authorization_header("POST", target, headers, body, {KEY: "other"})
    with pytest.raises(SignatureError, match="does not match"):
        verify_authorization_header("POST", target, headers, b'{"n": 2}', {KEY: SECRET})
    signed = signer.presign("ws://127.0.0.1:9/dev?role=runner")
    query_target = "/dev?" + signed.split("?", 1)[1]
    host = [("Host", "127.0.0.1:9")]
    assert verify_presigned("GET", query_target, host, {KEY: SECRET}) == KEY


def test_the_derived_key_follows_the_date() -> None:
    signer = Signer(KEY, SECRET, None, "us-east-1")
    url = "http://h/dev/@connections/c"
    day_one = dict(signer.headers("GET", url, now=NOW.timestamp()))
    later = NOW + dt.timedelta(days=1)
    day_two = dict(signer.headers("GET", url, now=later.timestamp()))
    assert "20261127/us-east-1" in day_one["Authorization"]
    assert "20261128/us-east-1" in day_two["Authorization"]
    with mock.patch("botocore.auth.get_current_datetime", return_value=later.replace(tzinfo=None)):
        request = AWSRequest(method="GET", url=url)
        SigV4Auth(Credentials(KEY, SECRET), "execute-api", "us-east-1").add_auth(request)
    assert day_two["Authorization"] == request.headers["Authorization"]
