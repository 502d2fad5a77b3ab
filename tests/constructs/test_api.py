from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk.assertions import Match, Template

from pylive.cdk.manifest import CorsSettings
from pylive.constructs import Api, Function
from pylive.constructs.api import implicit_function_id, parse_route_key


def resources(template: Template, kind: str) -> list[dict[str, Any]]:
    return [r.get("Properties", {}) for r in template.find_resources(kind).values()]


def integration_target(template: Template, route: dict[str, Any]) -> str:
    """The logical id of the Lambda function behind a route."""
    integration_id = route["Target"]["Fn::Join"][1][1]["Ref"]
    integration = template.to_json()["Resources"][integration_id]["Properties"]
    uri: str = integration["IntegrationUri"]["Fn::GetAtt"][0]
    return uri


def test_routes_and_lambda_integrations(make_stack: Callable[..., cdk.Stack]) -> None:
    stack = make_stack()
    items = Function(stack, "items", handler="functions/items.handler")
    api = Api(
        stack,
        "Api",
        routes={
            "GET /": "functions/hello.handler",
            "POST /items/{id}": items,
            "ANY /{proxy+}": "functions/hello.handler",
            "$default": "functions/fallback.handler",
        },
    )
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::ApiGatewayV2::Api", 1)
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Api", {"ProtocolType": "HTTP", "Name": Match.any_value()}
    )
    routes = {r["RouteKey"]: r for r in resources(template, "AWS::ApiGatewayV2::Route")}
    assert set(routes) == {"GET /", "POST /items/{id}", "ANY /{proxy+}", "$default"}
    for integration in resources(template, "AWS::ApiGatewayV2::Integration"):
        assert integration["IntegrationType"] == "AWS_PROXY"
        assert integration["PayloadFormatVersion"] == "2.0"

    logical = {
        fn: stack.resolve(fn.function.node.default_child.logical_id)  # type: ignore[union-attr]
        for fn in api.functions
    }
    by_id = {fn.node.id: logical[fn] for fn in api.functions}
    assert set(by_id) == {"hello", "items", "fallback"}
    assert integration_target(template, routes["GET /"]) == by_id["hello"]
    assert integration_target(template, routes["ANY /{proxy+}"]) == by_id["hello"]
    assert integration_target(template, routes["POST /items/{id}"]) == by_id["items"]
    assert integration_target(template, routes["$default"]) == by_id["fallback"]
    # every route may invoke its function (one permission per route)
    template.resource_count_is("AWS::Lambda::Permission", 4)
    assert api.routes["POST /items/{id}"] is items


def test_same_handler_on_two_routes_makes_one_function(
    make_stack: Callable[..., cdk.Stack],
) -> None:
    stack = make_stack()
    api = Api(
        stack,
        "Api",
        routes={"GET /a": "functions/hello.handler", "GET /b": "functions/hello.handler"},
    )
    Template.from_stack(stack).resource_count_is("AWS::Lambda::Function", 1)
    assert api.routes["GET /a"] is api.routes["GET /b"]
    assert api.routes["GET /a"].node.id == "hello"


def test_implicit_function_ids_and_collisions(make_stack: Callable[..., cdk.Stack]) -> None:
    stack = make_stack()
    api = Api(
        stack,
        "Api",
        routes={
            "GET /a": "functions/hello.handler",
            "GET /b": "other/hello.handler",
            "GET /c": "more/hello.handler",
            "POST /users": "functions/users.create",
        },
    )
    ids = [api.routes[k].node.id for k in ("GET /a", "GET /b", "GET /c", "POST /users")]
    assert ids == ["hello", "hello2", "hello3", "users-create"]
    assert api.routes["GET /b"].handler == "other/hello.handler"
    Template.from_stack(stack).resource_count_is("AWS::Lambda::Function", 4)


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        ("functions/hello.handler", "hello"),
        ("hello.handler", "hello"),
        ("functions/users.create", "users-create"),
        ("app.api.users.handler", "users"),
        ("app.api.users.list_all", "users-list_all"),
    ],
)
def test_implicit_function_id(handler: str, expected: str) -> None:
    assert implicit_function_id(handler) == expected


def test_url_output_and_cors(make_stack: Callable[..., cdk.Stack]) -> None:
    stack = make_stack()
    Api(stack, "Api", routes={"GET /": "hello.handler"}, cors=True)
    template = Template.from_stack(stack)
    outputs = template.to_json()["Outputs"]
    (url,) = [o for key, o in outputs.items() if key.startswith("ApiUrl")]
    assert "execute-api" in str(url["Value"])
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Api",
        {
            "CorsConfiguration": {
                "AllowOrigins": ["*"],
                "AllowMethods": ["*"],
                "AllowHeaders": ["*"],
            }
        },
    )


def test_custom_cors_options(make_stack: Callable[..., cdk.Stack]) -> None:
    stack = make_stack()
    cors = apigwv2.CorsPreflightOptions(
        allow_origins=["https://example.com"], allow_methods=[apigwv2.CorsHttpMethod.GET]
    )
    Api(stack, "Api", routes={"GET /": "hello.handler"}, cors=cors)
    Template.from_stack(stack).has_resource_properties(
        "AWS::ApiGatewayV2::Api",
        {"CorsConfiguration": {"AllowOrigins": ["https://example.com"], "AllowMethods": ["GET"]}},
    )


def cors_configuration(settings: CorsSettings) -> dict[str, Any]:
    """Local CORS settings in the form of the template's ``CorsConfiguration``."""
    names = {
        "allow_origins": "AllowOrigins",
        "allow_methods": "AllowMethods",
        "allow_headers": "AllowHeaders",
        "expose_headers": "ExposeHeaders",
        "max_age": "MaxAge",
        "allow_credentials": "AllowCredentials",
    }
    values = {names[k]: v for k, v in dataclasses.asdict(settings).items()}
    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in values.items() if v not in ((), None)
    }


@pytest.mark.parametrize(
    "cors",
    [
        True,
        apigwv2.CorsPreflightOptions(allow_origins=["https://example.com"]),
        apigwv2.CorsPreflightOptions(
            allow_origins=["https://example.com", "http://localhost:5173"],
            allow_methods=[
                apigwv2.CorsHttpMethod.GET,
                apigwv2.CorsHttpMethod.POST,
                apigwv2.CorsHttpMethod.OPTIONS,
            ],
            allow_headers=["content-type", "authorization"],
            expose_headers=["x-request-id"],
            max_age=cdk.Duration.minutes(10),
            allow_credentials=True,
        ),
        apigwv2.CorsPreflightOptions(
            allow_origins=["*"], allow_methods=[apigwv2.CorsHttpMethod.ANY], allow_credentials=False
        ),
    ],
)
def test_cors_settings_match_the_template(
    make_stack: Callable[..., cdk.Stack], cors: bool | apigwv2.CorsPreflightOptions
) -> None:
    """What ``pylive dev --local`` applies is what the deployed API is configured with."""
    stack = make_stack()
    api = Api(stack, "Api", routes={"GET /": "hello.handler"}, cors=cors)
    assert api.cors is not None
    (properties,) = resources(Template.from_stack(stack), "AWS::ApiGatewayV2::Api")
    assert cors_configuration(api.cors) == properties["CorsConfiguration"]


def test_no_cors_settings_without_cors(make_stack: Callable[..., cdk.Stack]) -> None:
    stack = make_stack()
    assert Api(stack, "Api", routes={}).cors is None
    assert Api(stack, "Off", routes={}, cors=False).cors is None
    for properties in resources(Template.from_stack(stack), "AWS::ApiGatewayV2::Api"):
        assert "CorsConfiguration" not in properties


def test_add_routes_later_and_duplicate_route(make_stack: Callable[..., cdk.Stack]) -> None:
    stack = make_stack()
    api = Api(stack, "Api", routes={"GET /": "hello.handler"})
    api.add_routes({"DELETE /items/{id}": "hello.handler"})
    assert api.routes["DELETE /items/{id}"] is api.routes["GET /"]
    with pytest.raises(ValueError, match="route 'GET /' is already defined"):
        api.add_routes({"GET /": "other.handler"})
    routes = resources(Template.from_stack(stack), "AWS::ApiGatewayV2::Route")
    assert sorted(r["RouteKey"] for r in routes) == ["DELETE /items/{id}", "GET /"]


@pytest.mark.parametrize(
    ("route_key", "message"),
    [
        ("/items", 'expected "\\$default" or "METHOD /path"'),
        ("FETCH /items", "method must be one of ANY, DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"),
        ("get /items", "method must be one of"),
        ("GET items", "must start with '/'"),
        ("GET  /items", "must start with '/'"),
        ("GET /items/", "must not end with '/'"),
        ("GET /a//b", "empty segment"),
        ("GET /{proxy+}/x", "must be the last segment"),
        ("GET /items/{id", "must be a whole segment"),
        ("GET /a b", "must not contain whitespace"),
        ("default", 'expected "\\$default" or "METHOD /path"'),
    ],
)
def test_invalid_route_keys_are_clear_errors(
    make_stack: Callable[..., cdk.Stack], route_key: str, message: str
) -> None:
    stack = make_stack()
    with pytest.raises(ValueError, match=message):
        Api(stack, "Api", routes={route_key: "hello.handler"})


def test_route_parsing() -> None:
    assert parse_route_key("$default") is None
    assert parse_route_key("GET /") == ("GET", "/")
    assert parse_route_key("ANY /{proxy+}") == ("ANY", "/{proxy+}")
    assert parse_route_key("PATCH /v1/items/{id}/tags") == ("PATCH", "/v1/items/{id}/tags")


def test_invalid_route_targets(make_stack: Callable[..., cdk.Stack]) -> None:
    with pytest.raises(ValueError, match=r"must look like 'path/module\.func'"):
        Api(make_stack(), "Api", routes={"GET /": "functions/hello"})
    with pytest.raises(TypeError, match=r"expected a handler string .* not int"):
        Api(make_stack(), "Api", routes={"GET /": 42})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="cors must be True"):
        Api(make_stack(), "Api", routes={}, cors="yes")  # type: ignore[arg-type]
