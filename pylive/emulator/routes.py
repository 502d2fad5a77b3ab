"""Route selection for the local HTTP API, following API Gateway HTTP API rules.

A route key is ``"$default"`` or ``"METHOD /path"``, where METHOD is one of ``ANY``, ``DELETE``,
``GET``, ``HEAD``, ``OPTIONS``, ``PATCH``, ``POST``, ``PUT`` and each path segment is a literal,
a path variable ``{name}`` (exactly one segment) or, as the last segment only, a greedy
variable ``{name+}`` (one or more segments).

Selection (API Gateway developer guide, "Routing API requests" in http-api-develop-routes):

1. a route whose path is all literals (an exact match),
2. then a route with path variables,
3. then a route with a greedy path variable,
4. then ``$default``; with no match at all the caller answers 404 ``{"message":"Not Found"}``.

Within one of these tiers the route whose path is more literal from the left wins
(``/pets/dog/{id}`` beats ``/pets/{kind}/{id}``; ``/pets/{proxy+}`` beats ``/{proxy+}``), and a
route for the request's own method beats an ``ANY`` route for the same path shape. The path
tier decides before the method: ``ANY /pets/dog`` beats ``GET /pets/{kind}``.

Paths: one trailing slash is ignored when matching (``/items/`` selects ``GET /items``; the
event's ``rawPath`` keeps the slash); matching is case-sensitive; percent-escapes are compared
decoded (``/caf%C3%A9`` selects ``GET /café``) but an encoded slash ``%2F`` stays inside its
segment. Path parameter values are percent-decoded (``+`` is kept as is).

Routes carry the CORS settings of the Api they belong to (several Apis are merged into one
table locally); :meth:`RouteTable.preflight_cors` says which Api answers a CORS preflight.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, unquote

from pylive.cdk.manifest import CorsSettings, RouteSpec

DEFAULT_ROUTE = "$default"
HTTP_METHODS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"})
ROUTE_METHODS = HTTP_METHODS | {"ANY"}

_VARIABLE = re.compile(r"\{([A-Za-z0-9_.\-]+)(\+?)\}")
# Every printable ASCII character except the two with structure: "%" (escapes) and "/".
_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in "%/")

# Segment kinds, in order of preference when two routes of one tier both match.
_LITERAL, _VAR, _GREEDY = 0, 1, 2


@dataclass(slots=True)  # not frozen, as HttpResponse
class RouteMatch:
    """The route selected for a request and its (percent-decoded) path parameters."""

    route_key: str
    function: str
    path_parameters: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Pattern:
    route_key: str
    function: str
    method: str
    regex: re.Pattern[str]
    names: tuple[str, ...]
    order: tuple[int, tuple[int, ...], int]  # (tier, segment kinds, 1 for ANY)


@dataclass(frozen=True, slots=True)
class ParsedRouteKey:
    """A validated ``"METHOD /path"`` route key (``$default`` has no parsed form)."""

    method: str
    path: str  # canonical form: literal segments normalized as request paths are
    segments: tuple[str, ...]  # the path's segments, canonical literals or "{name}"/"{name+}"
    kinds: tuple[int, ...]  # one entry per segment: literal, variable or greedy
    names: tuple[str, ...]  # variable names in path order


def _canonical_segment(segment: str) -> str:
    return quote(unquote(segment, errors="strict"), safe=_SAFE)


def canonical_path(path: str) -> str:
    """The form request paths are compared in: escapes decoded except ``%2F``, no trailing ``/``.

    >>> canonical_path("/caf%c3%a9/")
    '/caf%C3%A9'
    """
    if not path:
        return "/"
    if "%" not in path and path.isascii() and path.isprintable():
        canon = path
    else:
        canon = "/".join(
            quote(unquote(segment, errors="replace"), safe=_SAFE) for segment in path.split("/")
        )
    if len(canon) > 1 and canon[-1] == "/":
        canon = canon[:-1]
    return canon


def parse_route_key(route_key: str) -> ParsedRouteKey:
    """Validate a ``"METHOD /path"`` route key; raise ``ValueError`` saying what is wrong."""

    def bad(why: str) -> ValueError:
        return ValueError(f"invalid route key {route_key!r}: {why}")

    method, sep, path = route_key.partition(" ")
    if not sep:
        raise bad('expected "$default" or "METHOD /path", e.g. "GET /items/{id}"')
    if method not in ROUTE_METHODS:
        raise bad(f"method must be one of {', '.join(sorted(ROUTE_METHODS))}")
    if not path.startswith("/"):
        raise bad("the path must start with '/'")
    if any(c.isspace() for c in path) or "?" in path or "#" in path:
        raise bad("the path must not contain whitespace, '?' or '#'")
    if path == "/":
        return ParsedRouteKey(method, "/", (), (), ())
    if path.endswith("/"):
        raise bad("the path must not end with '/'")
    segments = path[1:].split("/")
    kinds: list[int] = []
    names: list[str] = []
    canon: list[str] = []
    for index, segment in enumerate(segments):
        if not segment:
            raise bad("the path has an empty segment ('//')")
        variable = _VARIABLE.fullmatch(segment)
        if variable is not None:
            name, plus = variable.group(1), variable.group(2)
            if name in names:
                raise bad(f"path variable {{{name}}} appears twice")
            if plus and index != len(segments) - 1:
                raise bad(f"greedy variable {{{name}+}} must be the last segment")
            kinds.append(_GREEDY if plus else _VAR)
            names.append(name)
            canon.append(segment)
            continue
        if segment.startswith("{") and segment.endswith("}"):
            raise bad(f"path variable {segment!r} needs a name of A-Z a-z 0-9 _ . - characters")
        if "{" in segment or "}" in segment:
            raise bad(f"a path variable must be a whole segment, got {segment!r}")
        try:
            canon.append(_canonical_segment(segment))
        except UnicodeDecodeError:
            raise bad(f"segment {segment!r} has a percent-escape that is not UTF-8") from None
        kinds.append(_LITERAL)
    return ParsedRouteKey(method, "/" + "/".join(canon), tuple(canon), tuple(kinds), tuple(names))


def _regex_for(parsed: ParsedRouteKey) -> re.Pattern[str]:
    parts = []
    for segment, kind in zip(parsed.segments, parsed.kinds, strict=True):
        if kind == _LITERAL:
            parts.append(re.escape(segment))
        elif kind == _VAR:
            parts.append("([^/]+)")
        else:
            parts.append("(.+)")
    return re.compile("/" + "/".join(parts))


class RouteTable:
    """Selects the route for ``(method, path)``; built once, matched per request.

    >>> table = RouteTable([RouteSpec("GET /items/{id}", "items")])
    >>> table.match("GET", "/items/a%20b")
    RouteMatch(route_key='GET /items/{id}', function='items', path_parameters={'id': 'a b'})
    """

    def __init__(self, routes: Iterable[RouteSpec]) -> None:
        exact: dict[str, dict[str, RouteSpec]] = {}
        patterns: list[_Pattern] = []
        shapes: dict[tuple[str, tuple[str, ...], tuple[int, ...]], str] = {}
        default: RouteSpec | None = None
        cors: dict[str, CorsSettings] = {}
        for route in routes:
            if route.cors is not None:
                cors.setdefault(route.route_key, route.cors)
            if route.route_key == DEFAULT_ROUTE:
                if default is not None:
                    raise ValueError("duplicate route key '$default'")
                default = route
                continue
            parsed = parse_route_key(route.route_key)
            # Routes that differ only in variable names would be ambiguous: reject them.
            shape = (
                parsed.method,
                tuple(
                    s if k == _LITERAL else ""
                    for s, k in zip(parsed.segments, parsed.kinds, strict=True)
                ),
                parsed.kinds,
            )
            if shape in shapes:
                other = shapes[shape]
                if other == route.route_key:
                    raise ValueError(f"duplicate route key {route.route_key!r}")
                raise ValueError(f"route key {route.route_key!r} conflicts with {other!r}")
            shapes[shape] = route.route_key
            if not parsed.names:
                exact.setdefault(parsed.path, {})[parsed.method] = route
                continue
            tier = 2 if parsed.kinds[-1] == _GREEDY else 1
            patterns.append(
                _Pattern(
                    route_key=route.route_key,
                    function=route.function,
                    method=parsed.method,
                    regex=_regex_for(parsed),
                    names=parsed.names,
                    order=(tier, parsed.kinds, 1 if parsed.method == "ANY" else 0),
                )
            )
        patterns.sort(key=lambda p: p.order)
        self._exact = exact
        self._default = default
        self._all_patterns = tuple(patterns)
        self._cors = cors
        # Checked once per request: with no CORS anywhere, serving costs nothing more.
        self.has_cors = bool(cors)
        # A preflight for a path no route serves goes to the Api that owns $default when
        # there is one (what `preflight_cors` finds), else to the first Api with CORS: each
        # Api is a host of its own in AWS, which answers preflights whatever the path.
        self._first_cors = next(iter(cors.values()), None)
        # One pre-merged, pre-ordered list per method; other methods only see ANY routes.
        self._any_patterns = tuple(p for p in patterns if p.method == "ANY")
        self._patterns: dict[str, tuple[_Pattern, ...]] = {
            method: tuple(p for p in patterns if p.method in (method, "ANY"))
            for method in HTTP_METHODS
        }

    def match(self, method: str, path: str) -> RouteMatch | None:
        """The route for a request, or ``None`` (answer 404) when nothing, not even
        ``$default``, matches. ``path`` is the request path as sent (percent-encoded)."""
        canon = canonical_path(path)
        by_method = self._exact.get(canon)
        if by_method is not None:
            route = by_method.get(method) or by_method.get("ANY")
            if route is not None:
                return RouteMatch(route.route_key, route.function, {})
        for pattern in self._patterns.get(method, self._any_patterns):
            found = pattern.regex.fullmatch(canon)
            if found is not None:
                values = found.groups()
                params = {
                    name: unquote(value) if "%" in value else value
                    for name, value in zip(pattern.names, values, strict=True)
                }
                return RouteMatch(pattern.route_key, pattern.function, params)
        if self._default is not None:
            return RouteMatch(DEFAULT_ROUTE, self._default.function, {})
        return None

    def cors_for(self, route_key: str) -> CorsSettings | None:
        """The CORS settings of the Api that owns the route, if it has any."""
        return self._cors.get(route_key)

    def preflight_cors(self, path: str) -> CorsSettings | None:
        """The CORS settings that answer a preflight request for ``path``, or ``None`` when
        the request goes to its route like any other (the path's Api has no CORS)."""
        route_key = self.route_for_path(path)
        if route_key is None:
            return self._first_cors
        return self._cors.get(route_key)

    def route_for_path(self, path: str) -> str | None:
        """The key of a route that serves ``path`` for some method (``$default`` last), or
        ``None``: it tells which Api a path belongs to."""
        canon = canonical_path(path)
        by_method = self._exact.get(canon)
        if by_method:
            return next(iter(by_method.values())).route_key
        for pattern in self._all_patterns:
            if pattern.regex.fullmatch(canon) is not None:
                return pattern.route_key
        return DEFAULT_ROUTE if self._default is not None else None
