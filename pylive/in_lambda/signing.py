"""SigV4 signing for the relay's two kinds of request (stdlib only; shipped with the stub).

- :meth:`Signer.headers`: the ``Authorization``, ``X-Amz-Date`` (and
  ``X-Amz-Security-Token``) headers of a @connections call;
- :meth:`Signer.presign`: a query-signed WebSocket URL for ``$connect``.

Both produce what botocore's ``SigV4Auth``/``SigV4QueryAuth`` produce for the same request
and time (the tests hold them to it). They exist because a @connections call is on every
invocation's path twice: botocore's generic signer costs several times the request itself,
while the derived key here is computed once a day and the canonical request is built from
known parts.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


class Signer:
    """Signs requests for one service and region with one set of credentials."""

    def __init__(
        self,
        access_key_id: str,
        secret_access_key: str,
        session_token: str | None,
        region: str,
        service: str = "execute-api",
    ) -> None:
        self.access_key_id = access_key_id
        self.session_token = session_token or None
        self.region = region
        self.service = service
        self._secret = secret_access_key

    def headers(
        self, method: str, url: str, body: bytes = b"", *, now: float | None = None
    ) -> list[tuple[str, str]]:
        """The headers that sign ``method url`` with ``body`` (``Host`` included)."""
        host, path, query = _parts(url)
        amz_date = _amz_date(now)
        headers = [("host", host), ("x-amz-date", amz_date)]
        if self.session_token is not None:
            headers.append(("x-amz-security-token", self.session_token))
        names = ";".join(name for name, _ in headers)
        canonical = "\n".join(
            (
                method,
                canonical_path(path),
                canonical_query(_query_pairs(query)) if query else "",
                "".join(f"{name}:{value}\n" for name, value in headers),
                names,
                hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256,
            )
        )
        scope, signature = self._sign(amz_date, canonical)
        authorization = (
            f"{ALGORITHM} Credential={self.access_key_id}/{scope}, "
            f"SignedHeaders={names}, Signature={signature}"
        )
        out = [("Host", host), ("X-Amz-Date", amz_date)]
        if self.session_token is not None:
            out.append(("X-Amz-Security-Token", self.session_token))
        out.append(("Authorization", authorization))
        return out

    def presign(self, url: str, *, expires: int = 300, now: float | None = None) -> str:
        """``url`` (a GET, e.g. a WebSocket URL) with a query signature valid ``expires`` s."""
        host, path, query = _parts(url)
        amz_date = _amz_date(now)
        scope = self._scope(amz_date[:8])
        auth = [
            ("X-Amz-Algorithm", ALGORITHM),
            ("X-Amz-Credential", f"{self.access_key_id}/{scope}"),
            ("X-Amz-Date", amz_date),
            ("X-Amz-Expires", str(expires)),
            ("X-Amz-SignedHeaders", "host"),
        ]
        if self.session_token is not None:
            auth.append(("X-Amz-Security-Token", self.session_token))
        pairs = _query_pairs(query) + auth
        canonical = "\n".join(
            (
                "GET",
                canonical_path(path),
                canonical_query(pairs),
                f"host:{host}\n",
                "host",
                EMPTY_SHA256,
            )
        )
        _, signature = self._sign(amz_date, canonical)
        base = url.split("?", 1)[0]
        return f"{base}?{_encode_pairs(pairs)}&X-Amz-Signature={signature}"

    def _scope(self, date: str) -> str:
        return f"{date}/{self.region}/{self.service}/aws4_request"

    def _sign(self, amz_date: str, canonical: str) -> tuple[str, str]:
        date = amz_date[:8]
        scope = self._scope(date)
        key = signing_key(self._secret, date, self.region, self.service)
        return scope, signature(key, amz_date, scope, canonical)


@functools.lru_cache(maxsize=64)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """SigV4's derived key: the same for a whole day, so derived once (four HMACs saved on
    every request signed or checked). Shared with the local API's verifier."""
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def signature(key: bytes, amz_date: str, scope: str, canonical_request: str) -> str:
    """The hex signature of a canonical request, with the derived ``key`` of ``scope``."""
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    to_sign = f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def _amz_date(now: float | None) -> str:
    return _format_second(int(time.time() if now is None else now))


@functools.lru_cache(maxsize=4)
def _format_second(second: int) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))


# A runner or stub signs for the same few connection URLs over and over.
@functools.lru_cache(maxsize=512)
def _parts(url: str) -> tuple[str, str, str]:
    """The ``Host`` header value (the port only when not the scheme's default), path, query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host, parts.path or "/", parts.query


@functools.lru_cache(maxsize=512)
def canonical_path(path: str) -> str:
    """SigV4's canonical path: empty and dot segments removed (consecutive slashes collapse),
    then every byte but unreserved ones and "/" percent-encoded, so an already encoded ``%3D``
    becomes ``%253D``, as SigV4 prescribes for every service but S3. Shared with the local
    API's verifier (``pylive.emulator.sigv4``)."""
    kept: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if kept:
                kept.pop()
        elif segment and segment != ".":
            kept.append(segment)
    trailing = "/" if path.endswith("/") and kept else ""
    return quote("/" + "/".join(kept) + trailing, safe="/~")


def _query_pairs(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True)


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """SigV4's canonical query: encoded names and values, sorted by name, then value."""
    return "&".join(f"{k}={v}" for k, v in sorted(_encode(k, v) for k, v in pairs))


def _encode_pairs(pairs: list[tuple[str, str]]) -> str:
    return "&".join("=".join(_encode(k, v)) for k, v in pairs)


def _encode(name: str, value: str) -> tuple[str, str]:
    return quote(name, safe="-_.~"), quote(value, safe="-_.~")
