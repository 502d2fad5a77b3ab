"""CORS for the local HTTP API, applied as API Gateway HTTP APIs apply an API's CORS
configuration (developer guide, "Configure CORS for HTTP APIs", http-api-cors):

- An ``OPTIONS`` request with both an ``Origin`` and an ``Access-Control-Request-Method``
  header is a preflight. API Gateway answers it itself, even when there is no ``OPTIONS``
  route, and before any route that would otherwise serve it: ``204`` without a body.
- Any other request with an ``Origin`` header gets the configured CORS headers added to the
  integration's response.
- CORS headers (``access-control-*``) returned by the integration are ignored, with or
  without an ``Origin``.

``Access-Control-Allow-Origin`` is ``*`` when the allowed origins include ``*``, else the
request's ``Origin`` when it is one of them (an exact, case-sensitive comparison), else
absent. Lists are sent joined with ``", "``; ``allow_credentials`` is sent only as ``true``.
"""

from __future__ import annotations

from collections.abc import Iterable

from pylive.cdk.manifest import CorsSettings
from pylive.emulator.http_events import HttpResponse

Headers = Iterable[tuple[bytes, bytes]]  # ASGI request headers: lowercase names

_ORIGIN = b"origin"
_REQUEST_METHOD = b"access-control-request-method"
_CORS_PREFIX = b"access-control-"

ALLOW_ORIGIN = b"access-control-allow-origin"
ALLOW_METHODS = b"access-control-allow-methods"
ALLOW_HEADERS = b"access-control-allow-headers"
ALLOW_CREDENTIALS = b"access-control-allow-credentials"
EXPOSE_HEADERS = b"access-control-expose-headers"
MAX_AGE = b"access-control-max-age"


def is_preflight(method: str, headers: Headers) -> bool:
    """Whether a request is a CORS preflight: ``OPTIONS`` with ``Origin`` and
    ``Access-Control-Request-Method`` headers."""
    if method != "OPTIONS":
        return False
    names = {name for name, _ in headers}
    return _ORIGIN in names and _REQUEST_METHOD in names


def preflight_response(settings: CorsSettings, headers: Headers) -> HttpResponse:
    """API Gateway's answer to a preflight: ``204``, no body (so no ``content-length``)."""
    out: list[tuple[bytes, bytes]] = []
    origin = _header(headers, _ORIGIN)
    allowed = allow_origin(settings, origin) if origin is not None else None
    if allowed is not None:
        out.append((ALLOW_ORIGIN, allowed))
    _add_list(out, ALLOW_METHODS, settings.allow_methods)
    _add_list(out, ALLOW_HEADERS, settings.allow_headers)
    if settings.max_age is not None:
        out.append((MAX_AGE, str(settings.max_age).encode()))
    if settings.allow_credentials:
        out.append((ALLOW_CREDENTIALS, b"true"))
    return HttpResponse(204, out, b"")


def apply(settings: CorsSettings, request_headers: Headers, response: HttpResponse) -> HttpResponse:
    """The integration's response as API Gateway sends it for an API with CORS: the
    integration's own ``access-control-*`` headers dropped, the configured ones added when the
    request has an ``Origin``."""
    headers = [h for h in response.headers if not h[0].startswith(_CORS_PREFIX)]
    origin = _header(request_headers, _ORIGIN)
    if origin is not None:
        allowed = allow_origin(settings, origin)
        if allowed is not None:
            headers.append((ALLOW_ORIGIN, allowed))
        if settings.allow_credentials:
            headers.append((ALLOW_CREDENTIALS, b"true"))
        _add_list(headers, EXPOSE_HEADERS, settings.expose_headers)
    return HttpResponse(response.status, headers, response.body)


def allow_origin(settings: CorsSettings, origin: bytes) -> bytes | None:
    """The ``Access-Control-Allow-Origin`` value for a request's ``Origin``, or ``None``."""
    if "*" in settings.allow_origins:
        return b"*"
    if origin.decode("latin-1") in settings.allow_origins:
        return origin
    return None


def _header(headers: Headers, name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _add_list(out: list[tuple[bytes, bytes]], name: bytes, values: tuple[str, ...]) -> None:
    if values:
        out.append((name, ", ".join(values).encode()))
