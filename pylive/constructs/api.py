"""``Api``: an API Gateway HTTP API whose routes point at pylive functions."""

from __future__ import annotations

import re

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from constructs import Construct

from pylive.cdk.manifest import CorsSettings
from pylive.constructs.function import Function
from pylive.constructs.function_settings import split_handler
from pylive.emulator import routes
from pylive.emulator.routes import DEFAULT_ROUTE


def parse_route_key(route_key: str) -> tuple[str, str] | None:
    """``"GET /items/{id}"`` -> ``("GET", "/items/{id}")``; ``"$default"`` -> ``None``.

    Validation is the local HTTP API's, so what synthesizes is what ``pylive dev`` serves."""
    if route_key == DEFAULT_ROUTE:
        return None
    if not isinstance(route_key, str):
        raise ValueError(f"route key {route_key!r} must be a string such as 'GET /items/{{id}}'")
    parsed = routes.parse_route_key(route_key)
    return parsed.method, route_key.partition(" ")[2]


def implicit_function_id(handler: str) -> str:
    """The construct id of a function created from a handler string on a route.

    ``"functions/hello.handler"`` -> ``"hello"``; ``"functions/users.create"`` ->
    ``"users-create"``.
    """
    module, func = split_handler(handler)
    name = re.split(r"[/.]", module)[-1]
    return name if func == "handler" else f"{name}-{func}"


class Api(Construct):
    """An HTTP API (payload format 2.0) with Lambda routes.

    ``routes`` maps route keys (``"GET /"``, ``"POST /items/{id}"``, ``"ANY /{proxy+}"``,
    ``"$default"``) to a :class:`Function` or to a handler string; a handler string creates a
    function inside this construct, one per distinct handler.

    ``cors`` (``True`` or a ``CorsPreflightOptions``) configures CORS on the HTTP API;
    ``self.cors`` holds the same settings as plain data, which ``pylive dev --local`` applies.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        routes: dict[str, str | Function] | None = None,
        cors: bool | apigwv2.CorsPreflightOptions | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.routes: dict[str, Function] = {}
        self._functions_by_handler: dict[str, Function] = {}
        options = _cors_options(cors)
        self.cors: CorsSettings | None = cors_settings(options) if options is not None else None
        self.http_api: apigwv2.HttpApi = apigwv2.HttpApi(self, "HttpApi", cors_preflight=options)
        self.url: str = self.http_api.url or self.http_api.api_endpoint
        cdk.CfnOutput(self, "Url", value=self.url, description="URL of the HTTP API")
        self.add_routes(routes or {})

    @property
    def api_endpoint(self) -> str:
        return self.http_api.api_endpoint

    @property
    def functions(self) -> list[Function]:
        """The distinct functions behind this API's routes, in route order."""
        unique: dict[int, Function] = {}
        for fn in self.routes.values():
            unique.setdefault(id(fn), fn)
        return list(unique.values())

    def add_routes(self, routes: dict[str, str | Function]) -> None:
        """Add routes; route keys and targets are validated before anything is created."""
        parsed = [(key, parse_route_key(key), target) for key, target in routes.items()]
        for key, _, target in parsed:
            if key in self.routes:
                raise ValueError(f"route {key!r} is already defined on this Api")
            if isinstance(target, str):
                split_handler(target)
            elif not isinstance(target, Function):
                raise TypeError(
                    f"route {key!r}: expected a handler string such as "
                    f"'functions/hello.handler' or a pylive Function, not {type(target).__name__}"
                )
        for key, method_path, target in parsed:
            fn = self._function_for(target)
            integration = integrations.HttpLambdaIntegration(
                f"{fn.node.id}Integration", fn.function
            )
            if method_path is None:
                apigwv2.HttpRoute(  # what HttpApi(default_integration=...) creates
                    self.http_api,
                    "DefaultRoute",
                    http_api=self.http_api,
                    route_key=apigwv2.HttpRouteKey.DEFAULT,
                    integration=integration,
                )
            else:
                method, path = method_path
                self.http_api.add_routes(
                    path=path, methods=[apigwv2.HttpMethod(method)], integration=integration
                )
            self.routes[key] = fn

    def _function_for(self, target: str | Function) -> Function:
        if isinstance(target, Function):
            return target
        existing = self._functions_by_handler.get(target)
        if existing is not None:
            return existing
        base = implicit_function_id(target)
        name, n = base, 2
        while self.node.try_find_child(name) is not None:
            name, n = f"{base}{n}", n + 1
        fn = Function(self, name, handler=target)
        self._functions_by_handler[target] = fn
        return fn


def _cors_options(
    cors: bool | apigwv2.CorsPreflightOptions | None,
) -> apigwv2.CorsPreflightOptions | None:
    if cors is True:
        return apigwv2.CorsPreflightOptions(
            allow_origins=["*"],
            allow_methods=[apigwv2.CorsHttpMethod.ANY],
            allow_headers=["*"],
        )
    if cors is None or cors is False:
        return None
    if isinstance(cors, apigwv2.CorsPreflightOptions):
        return cors
    raise TypeError(
        f"cors must be True, False or a CorsPreflightOptions, not {type(cors).__name__}"
    )


def cors_settings(options: apigwv2.CorsPreflightOptions) -> CorsSettings:
    """The plain settings of CDK CORS options, as the HTTP API's ``CorsConfiguration`` has them.

    jsii gives ``CorsHttpMethod`` members their names as values (``ANY``), while the template
    says ``*`` for ``ANY``; ``max_age`` is a ``Duration``, in whole seconds in the template.
    """
    max_age = options.max_age
    return CorsSettings(
        allow_origins=tuple(options.allow_origins or ()),
        allow_methods=tuple(
            "*" if method is apigwv2.CorsHttpMethod.ANY else str(method.value)
            for method in options.allow_methods or ()
        ),
        allow_headers=tuple(options.allow_headers or ()),
        expose_headers=tuple(options.expose_headers or ()),
        max_age=int(max_age.to_seconds()) if max_age is not None else None,
        allow_credentials=options.allow_credentials,
    )
