"""CORS in the local HTTP API, as API Gateway HTTP APIs apply an API's CORS configuration:
the pure rules, the route table's choice of API, and the real server with real workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from serving import Server

from pylive.cdk.manifest import AppManifest, CorsSettings, RouteSpec
from pylive.emulator import cors
from pylive.emulator.http_events import HttpResponse
from pylive.emulator.routes import RouteTable

APP_ORIGIN = "https://app.example.com"
SETTINGS = CorsSettings(
    allow_origins=("http://localhost:5173", APP_ORIGIN),
    allow_methods=("GET", "POST"),
    allow_headers=("content-type", "authorization"),
    expose_headers=("x-request-id", "x-total"),
    max_age=300,
    allow_credentials=True,
)
ANYTHING = CorsSettings(allow_origins=("*",), allow_methods=("*",), allow_headers=("*",))


def request_headers(**headers: str) -> list[tuple[bytes, bytes]]:
    return [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]


def preflight_headers(origin: str = APP_ORIGIN) -> list[tuple[bytes, bytes]]:
    return request_headers(origin=origin, access_control_request_method="POST")


def as_text(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in headers}


# ---------------------------------------------------------------- pure rules


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        ("OPTIONS", preflight_headers(), True),
        ("OPTIONS", request_headers(origin=APP_ORIGIN), False),
        ("OPTIONS", request_headers(access_control_request_method="GET"), False),
        ("OPTIONS", [], False),
        ("GET", preflight_headers(), False),
        ("options", preflight_headers(), False),  # methods are case-sensitive
    ],
)
def test_is_preflight(method: str, headers: list[tuple[bytes, bytes]], expected: bool) -> None:
    assert cors.is_preflight(method, headers) is expected


def test_preflight_response_carries_the_configured_headers() -> None:
    response = cors.preflight_response(SETTINGS, preflight_headers())
    assert (response.status, response.body) == (204, b"")
    assert as_text(response.headers) == {
        "access-control-allow-origin": APP_ORIGIN,
        "access-control-allow-methods": "GET, POST",
        "access-control-allow-headers": "content-type, authorization",
        "access-control-max-age": "300",
        "access-control-allow-credentials": "true",
    }


def test_preflight_from_an_origin_not_allowed_has_no_allow_origin() -> None:
    for origin in ("https://evil.example.com", "https://APP.example.com", APP_ORIGIN + "/"):
        headers = as_text(cors.preflight_response(SETTINGS, preflight_headers(origin)).headers)
        assert "access-control-allow-origin" not in headers
        assert headers["access-control-allow-methods"] == "GET, POST"


def test_preflight_sends_only_what_is_configured() -> None:
    response = cors.preflight_response(CorsSettings(allow_origins=("*",)), preflight_headers())
    assert response.headers == [(b"access-control-allow-origin", b"*")]
    response = cors.preflight_response(CorsSettings(allow_credentials=False), preflight_headers())
    assert response.headers == []


def test_wildcards() -> None:
    headers = as_text(cors.preflight_response(ANYTHING, preflight_headers("null")).headers)
    assert headers == {
        "access-control-allow-origin": "*",
        "access-control-allow-methods": "*",
        "access-control-allow-headers": "*",
    }


def backend_response() -> HttpResponse:
    return HttpResponse(
        200,
        [
            (b"x-kept", b"yes"),
            (b"access-control-allow-origin", b"https://other.example.com"),
            (b"access-control-max-age", b"1"),
            (b"content-type", b"application/json"),
            (b"content-length", b"2"),
        ],
        b"{}",
    )


def test_actual_request_gets_cors_headers_instead_of_the_backends() -> None:
    response = cors.apply(SETTINGS, request_headers(origin=APP_ORIGIN), backend_response())
    assert (response.status, response.body) == (200, b"{}")
    assert response.headers == [
        (b"x-kept", b"yes"),
        (b"content-type", b"application/json"),
        (b"content-length", b"2"),
        (b"access-control-allow-origin", APP_ORIGIN.encode()),
        (b"access-control-allow-credentials", b"true"),
        (b"access-control-expose-headers", b"x-request-id, x-total"),
    ]


def test_actual_request_from_an_origin_not_allowed() -> None:
    response = cors.apply(SETTINGS, request_headers(origin="https://evil.com"), backend_response())
    headers = as_text(response.headers)
    assert "access-control-allow-origin" not in headers
    assert headers["access-control-expose-headers"] == "x-request-id, x-total"


def test_request_without_origin_gets_no_cors_headers_and_loses_the_backends() -> None:
    response = cors.apply(SETTINGS, request_headers(host="localhost"), backend_response())
    assert as_text(response.headers) == {
        "x-kept": "yes",
        "content-type": "application/json",
        "content-length": "2",
    }


def test_allow_origin() -> None:
    assert cors.allow_origin(ANYTHING, b"https://x.example") == b"*"
    assert cors.allow_origin(SETTINGS, APP_ORIGIN.encode()) == APP_ORIGIN.encode()
    assert cors.allow_origin(SETTINGS, b"http://localhost:5174") is None
    assert cors.allow_origin(CorsSettings(), APP_ORIGIN.encode()) is None


# ---------------------------------------------------------------- which API answers


def test_preflight_settings_come_from_the_api_that_owns_the_path() -> None:
    table = RouteTable(
        [
            RouteSpec("GET /plain", "plain"),
            RouteSpec("POST /items/{id}", "items", SETTINGS),
            RouteSpec("ANY /files/{path+}", "files", ANYTHING),
        ]
    )
    assert table.has_cors
    assert table.preflight_cors("/items/1") == SETTINGS  # any method's route counts
    assert table.preflight_cors("/files/a/b") == ANYTHING
    assert table.preflight_cors("/plain/") is None  # an API without CORS: routed as usual
    assert table.preflight_cors("/nowhere") == SETTINGS  # the first API with CORS
    assert table.cors_for("POST /items/{id}") == SETTINGS
    assert table.cors_for("GET /plain") is None


def test_a_path_no_route_serves_goes_to_the_api_that_owns_default() -> None:
    table = RouteTable(
        [RouteSpec("GET /items", "items", SETTINGS), RouteSpec("$default", "any", ANYTHING)]
    )
    assert table.route_for_path("/nowhere") == "$default"
    assert table.preflight_cors("/nowhere") == ANYTHING
    table = RouteTable([RouteSpec("GET /items", "items", SETTINGS), RouteSpec("$default", "x")])
    assert table.preflight_cors("/nowhere") is None
    assert table.preflight_cors("/items") == SETTINGS


def test_a_table_without_cors() -> None:
    table = RouteTable([RouteSpec("GET /items", "items")])
    assert not table.has_cors
    assert table.preflight_cors("/items") is None
    assert table.preflight_cors("/nowhere") is None


def test_the_manifest_round_trips_cors_settings() -> None:
    manifest = AppManifest(
        app="demo",
        functions={},
        routes=[RouteSpec("GET /", "hello", SETTINGS), RouteSpec("GET /plain", "hello")],
    )
    assert AppManifest.from_json(manifest.to_json()) == manifest


# ---------------------------------------------------------------- the real server

HANDLER = """
def handler(event, context):
    return {
        "statusCode": 200,
        "headers": {
            "Access-Control-Allow-Origin": "https://backend.example.com",
            "access-control-expose-headers": "x-secret",
            "x-backend": "kept",
        },
        "body": event["routeKey"],
    }


def boom(event, context):
    raise RuntimeError("boom")
"""

ROUTES = [
    # an API with CORS
    RouteSpec("GET /items", "handler", SETTINGS),
    RouteSpec("OPTIONS /items/{id}", "handler", SETTINGS),
    RouteSpec("GET /boom", "boom", SETTINGS),
    # an API without CORS
    RouteSpec("GET /plain", "handler"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("cors-app")
    (root / "api.py").write_text(HANDLER)
    with Server(root, ROUTES) as running:
        yield running


def cors_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.startswith("access-control-")}


def test_server_answers_a_preflight_without_an_options_route(server: Server) -> None:
    status, headers, body = server.request(
        "OPTIONS", "/items", origin=APP_ORIGIN, access_control_request_method="POST"
    )
    assert (status, body) == (204, b"")
    assert "content-length" not in headers
    assert headers["apigw-requestid"]
    assert cors_headers(headers) == {
        "access-control-allow-origin": APP_ORIGIN,
        "access-control-allow-methods": "GET, POST",
        "access-control-allow-headers": "content-type, authorization",
        "access-control-max-age": "300",
        "access-control-allow-credentials": "true",
    }


def test_server_preflight_wins_over_an_options_route(server: Server) -> None:
    status, headers, body = server.request(
        "OPTIONS", "/items/1", origin="https://evil.com", access_control_request_method="GET"
    )
    assert (status, body) == (204, b"")
    assert "access-control-allow-origin" not in headers
    # without Access-Control-Request-Method it is an ordinary request for the route
    status, headers, body = server.request("OPTIONS", "/items/1", origin=APP_ORIGIN)
    assert (status, body) == (200, b"OPTIONS /items/{id}")
    assert headers["access-control-allow-origin"] == APP_ORIGIN


def test_server_preflight_for_a_path_without_route(server: Server) -> None:
    status, headers, _ = server.request(
        "OPTIONS", "/nowhere", origin=APP_ORIGIN, access_control_request_method="GET"
    )
    assert status == 204
    assert headers["access-control-allow-origin"] == APP_ORIGIN
    assert server.request("OPTIONS", "/items", origin=APP_ORIGIN)[0] == 404  # not a preflight


def test_server_adds_cors_headers_and_drops_the_backends(server: Server) -> None:
    status, headers, body = server.request("GET", "/items", origin=APP_ORIGIN)
    assert (status, body) == (200, b"GET /items")
    assert headers["x-backend"] == "kept"
    assert cors_headers(headers) == {
        "access-control-allow-origin": APP_ORIGIN,
        "access-control-allow-credentials": "true",
        "access-control-expose-headers": "x-request-id, x-total",
    }
    _, headers, _ = server.request("GET", "/items", origin="https://evil.com")
    assert "access-control-allow-origin" not in headers
    _, headers, _ = server.request("GET", "/items")
    assert cors_headers(headers) == {}
    assert headers["x-backend"] == "kept"


def test_server_adds_cors_headers_to_a_failed_invocation(server: Server) -> None:
    status, headers, body = server.request("GET", "/boom", origin=APP_ORIGIN)
    assert (status, body) == (500, b'{"message":"Internal Server Error"}')
    assert headers["access-control-allow-origin"] == APP_ORIGIN


def test_server_leaves_an_api_without_cors_alone(server: Server) -> None:
    status, headers, body = server.request("GET", "/plain", origin=APP_ORIGIN)
    assert (status, body) == (200, b"GET /plain")
    assert cors_headers(headers) == {
        "access-control-allow-origin": "https://backend.example.com",
        "access-control-expose-headers": "x-secret",
    }
    status, _, body = server.request(
        "OPTIONS", "/plain", origin=APP_ORIGIN, access_control_request_method="GET"
    )
    assert (status, body) == (404, b'{"message":"Not Found"}')


def test_server_without_any_cors(tmp_path: Path) -> None:
    (tmp_path / "api.py").write_text(HANDLER)
    with Server(tmp_path, [RouteSpec("GET /items", "handler")]) as plain:
        status, headers, _ = plain.request(
            "OPTIONS", "/items", origin=APP_ORIGIN, access_control_request_method="GET"
        )
        assert status == 404
        status, headers, _ = plain.request("GET", "/items", origin=APP_ORIGIN)
        assert status == 200
        assert headers["access-control-allow-origin"] == "https://backend.example.com"
