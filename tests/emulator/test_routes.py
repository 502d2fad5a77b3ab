"""Route selection of the local HTTP API (pylive.emulator.routes)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pylive.cdk.manifest import RouteSpec
from pylive.emulator.routes import RouteMatch, RouteTable, parse_route_key


def table(*keys: str) -> RouteTable:
    """A table whose function ids are the route keys themselves."""
    return RouteTable(RouteSpec(key, key) for key in keys)


def selected(t: RouteTable, method: str, path: str) -> str | None:
    found = t.match(method, path)
    return None if found is None else found.route_key


# The example of the API Gateway developer guide, "Routing API requests"
# (docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html).
AWS_EXAMPLE = table(
    "GET /pets/dog/1", "GET /pets/dog/{id}", "GET /pets/{proxy+}", "ANY /{proxy+}", "$default"
)


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/pets/dog/1", "GET /pets/dog/1"),  # full match of a static route
        ("GET", "/pets/dog/2", "GET /pets/dog/{id}"),  # full match with a path variable
        ("GET", "/pets/cat/1", "GET /pets/{proxy+}"),  # greedy, for GET
        ("POST", "/pets/dog/1", "ANY /{proxy+}"),  # ANY covers methods not defined
        ("GET", "/", "$default"),  # {proxy+} needs at least one segment
    ],
)
def test_aws_documented_example(method: str, path: str, expected: str) -> None:
    assert selected(AWS_EXAMPLE, method, path) == expected


def test_match_carries_function_and_parameters() -> None:
    t = RouteTable([RouteSpec("GET /items/{id}", "get_item"), RouteSpec("$default", "fallback")])
    assert t.match("GET", "/items/42") == RouteMatch("GET /items/{id}", "get_item", {"id": "42"})
    assert t.match("PUT", "/items/42") == RouteMatch("$default", "fallback", {})


@pytest.mark.parametrize(
    ("keys", "method", "path", "expected"),
    [
        # a specific method beats ANY on the same path shape
        (("ANY /items", "GET /items"), "GET", "/items", "GET /items"),
        (("ANY /items", "GET /items"), "POST", "/items", "ANY /items"),
        (("ANY /items/{id}", "GET /items/{x}"), "GET", "/items/1", "GET /items/{x}"),
        (("ANY /{proxy+}", "GET /{proxy+}"), "GET", "/a/b", "GET /{proxy+}"),
        (("ANY /{proxy+}", "GET /{proxy+}"), "DELETE", "/a/b", "ANY /{proxy+}"),
        # the path tier decides before the method
        (("ANY /pets/dog", "GET /pets/{kind}"), "GET", "/pets/dog", "ANY /pets/dog"),
        (("ANY /pets/{kind}", "GET /{proxy+}"), "GET", "/pets/dog", "ANY /pets/{kind}"),
        # within a tier, more literal from the left wins
        (("GET /{a}/b/{c}", "GET /a/{b}/{c}"), "GET", "/a/b/c", "GET /a/{b}/{c}"),
        (
            ("GET /pets/{kind}/{id}", "GET /pets/dog/{id}"),
            "GET",
            "/pets/dog/7",
            "GET /pets/dog/{id}",
        ),
        (
            ("GET /pets/{kind}/{id}", "GET /pets/dog/{id}"),
            "GET",
            "/pets/cat/7",
            "GET /pets/{kind}/{id}",
        ),
        (("GET /{proxy+}", "GET /pets/{proxy+}"), "GET", "/pets/x", "GET /pets/{proxy+}"),
        (("GET /a/{proxy+}", "GET /a/{x}/{proxy+}"), "GET", "/a/b/c", "GET /a/{x}/{proxy+}"),
        (("GET /a/{proxy+}", "GET /a/{x}/{proxy+}"), "GET", "/a/b", "GET /a/{proxy+}"),
        # a path variable matches exactly one segment
        (("GET /items/{id}",), "GET", "/items/1/2", None),
        (("GET /items/{id}",), "GET", "/items", None),
        (("GET /items/{id}",), "GET", "/items/", None),
        # a greedy variable matches one or more segments, never zero
        (("GET /files/{path+}",), "GET", "/files", None),
        (("GET /files/{path+}",), "GET", "/files/", None),
        (("ANY /{proxy+}",), "GET", "/", None),
        # root
        (("GET /", "GET /{proxy+}"), "GET", "/", "GET /"),
        (("GET /",), "GET", "", "GET /"),
        # one trailing slash is ignored
        (("GET /items",), "GET", "/items/", "GET /items"),
        (("GET /items/{id}",), "GET", "/items/42/", "GET /items/{id}"),
        (("GET /items",), "GET", "/items//", None),
        # case-sensitive paths and methods; HEAD is its own method
        (("GET /Items",), "GET", "/items", None),
        (("GET /items",), "get", "/items", None),
        (("GET /items",), "HEAD", "/items", None),
        (("ANY /items",), "HEAD", "/items", "ANY /items"),
        # a method outside the route methods is served by ANY only
        (("GET /{proxy+}", "ANY /{proxy+}"), "PROPFIND", "/x", "ANY /{proxy+}"),
        (("GET /x",), "PROPFIND", "/x", None),
        # percent-escapes are compared decoded; %2F stays inside its segment
        (("GET /café",), "GET", "/caf%C3%A9", "GET /café"),
        (("GET /caf%C3%A9",), "GET", "/caf%c3%a9", "GET /caf%C3%A9"),
        (("GET /a~b",), "GET", "/a%7Eb", "GET /a~b"),
        (("GET /a/b",), "GET", "/a%2Fb", None),
        (("GET /{x}",), "GET", "/a%2Fb", "GET /{x}"),
        # nothing matches and there is no $default
        (("GET /a",), "GET", "/b", None),
        ((), "GET", "/", None),
    ],
)
def test_selection(keys: tuple[str, ...], method: str, path: str, expected: str | None) -> None:
    assert selected(table(*keys), method, path) == expected


@pytest.mark.parametrize(
    ("key", "path", "params"),
    [
        ("GET /items/{id}", "/items/a%20b", {"id": "a b"}),
        ("GET /items/{id}", "/items/a+b", {"id": "a+b"}),  # + is not a space in a path
        ("GET /items/{id}", "/items/100%25", {"id": "100%"}),
        ("GET /items/{id}", "/items/a%2Fb", {"id": "a/b"}),
        ("GET /items/{id}", "/items/%E2%82%AC", {"id": "€"}),
        ("GET /items/{id}", "/items/%FF", {"id": "\ufffd"}),  # not UTF-8: replaced
        ("GET /items/{id}", "/items/{id}", {"id": "{id}"}),
        ("GET /u/{user}/posts/{post}", "/u/ann/posts/7", {"user": "ann", "post": "7"}),
        ("GET /files/{path+}", "/files/a/b/c.txt", {"path": "a/b/c.txt"}),
        ("GET /files/{path+}", "/files/a%20dir/b%2Fc", {"path": "a dir/b/c"}),
        ("GET /files/{path+}", "/files/a/b/", {"path": "a/b"}),
        ("GET /v1/{item-id}/{x.y}", "/v1/1/2", {"item-id": "1", "x.y": "2"}),
    ],
)
def test_path_parameters(key: str, path: str, params: dict[str, str]) -> None:
    found = table(key).match("GET", path)
    assert found is not None
    assert found.path_parameters == params


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "METHOD /path"),
        ("GET", "METHOD /path"),
        ("/items", "METHOD /path"),
        ("FETCH /items", "method must be one of"),
        ("get /items", "method must be one of"),
        ("GET items", "must start with '/'"),
        ("GET  /items", "must start with '/'"),
        ("GET /items/", "must not end with '/'"),
        ("GET /a//b", "empty segment"),
        ("GET /a b", "whitespace"),
        ("GET /a?b=1", "'?'"),
        ("GET /{proxy+}/x", "must be the last segment"),
        ("GET /item{id}", "whole segment"),
        ("GET /{id}.json", "whole segment"),
        ("GET /{}", "needs a name"),
        ("GET /{a b}", "whitespace"),
        ("GET /{a/b}", "whole segment"),
        ("GET /{id}/{id}", "appears twice"),
        ("GET /%FF", "not UTF-8"),
        ("$connect", "METHOD /path"),
    ],
)
def test_invalid_route_keys(key: str, message: str) -> None:
    with pytest.raises(ValueError, match="invalid route key") as info:
        RouteTable([RouteSpec(key, "f")])
    assert message in str(info.value)
    assert repr(key) in str(info.value)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (("GET /a", "GET /a"), "duplicate route key 'GET /a'"),
        (("$default", "$default"), "duplicate route key '$default'"),
        (("GET /a/{id}", "GET /a/{name}"), "'GET /a/{name}' conflicts with 'GET /a/{id}'"),
        (("GET /café", "GET /caf%C3%A9"), "conflicts with"),
    ],
)
def test_duplicate_and_conflicting_routes(keys: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError) as info:
        table(*keys)
    assert message in str(info.value)


def test_same_shape_with_other_method_is_no_conflict() -> None:
    t = table("GET /a/{id}", "PUT /a/{id}", "ANY /a/{id}")
    assert selected(t, "PUT", "/a/1") == "PUT /a/{id}"


def test_parse_route_key() -> None:
    parsed = parse_route_key("GET /files/{path+}")
    assert (parsed.method, parsed.names) == ("GET", ("path",))
    assert parse_route_key("ANY /").path == "/"


# ---- an independent, slow reference: try every route, keep the best by the documented rules


def reference(keys: list[str], method: str, path: str) -> str | None:
    """Paths here are plain letters, so there is nothing to decode."""
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    segments = path.split("/")[1:] if path != "/" else []
    best: tuple[tuple[int, ...], str] | None = None
    for key in keys:
        route_method, _, route_path = key.partition(" ")
        if key == "$default" or route_method not in (method, "ANY"):
            continue
        parts = route_path.split("/")[1:] if route_path != "/" else []
        kinds: list[int] = []
        for part, segment in zip(parts, segments, strict=False):
            if part.endswith("+}"):
                kinds.append(2)
            elif part.startswith("{"):
                kinds.append(1)
            elif part == segment:
                kinds.append(0)
            else:
                break
        greedy = bool(parts) and parts[-1].endswith("+}")
        if len(kinds) != len(parts) or (not greedy and len(parts) != len(segments)):
            continue
        tier = 2 if greedy else (1 if 1 in kinds else 0)
        rank = (tier, *kinds, 1 if route_method == "ANY" else 0)
        if best is None or rank < best[0]:
            best = (rank, key)
    if best is not None:
        return best[1]
    return "$default" if "$default" in keys else None


def _route_key(method: str, segments: list[str], greedy: bool) -> str:
    parts = [f"{{v{i}}}" if s == "{}" else s for i, s in enumerate(segments)]
    if greedy:
        parts.append("{rest+}")
    return f"{method} /" + "/".join(parts)


_ROUTE = st.builds(
    _route_key,
    st.sampled_from(["GET", "POST", "ANY"]),
    st.lists(st.sampled_from(["a", "b", "{}"]), max_size=3),
    st.booleans(),
)


def _routes_without_conflicts(keys: list[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for key in keys:
        method, _, path = key.partition(" ")
        shape = method + " " + "/".join("{}" if s.startswith("{") else s for s in path.split("/"))
        if shape not in seen:
            seen.add(shape)
            out.append(key)
    return out


@given(
    keys=st.lists(_ROUTE, max_size=8).map(_routes_without_conflicts),
    default=st.booleans(),
    method=st.sampled_from(["GET", "POST", "PUT"]),
    segments=st.lists(st.sampled_from(["a", "b", "c"]), max_size=4),
    trailing=st.booleans(),
)
def test_agrees_with_reference(
    keys: list[str], default: bool, method: str, segments: list[str], trailing: bool
) -> None:
    if default:
        keys = [*keys, "$default"]
    path = "/" + "/".join(segments) + ("/" if trailing and segments else "")
    assert selected(table(*keys), method, path) == reference(keys, method, path)


@given(method=st.text(max_size=8), path=st.text(max_size=40))
def test_match_never_raises(method: str, path: str) -> None:
    t = table("GET /a/{b}", "ANY /{proxy+}", "GET /x/{y+}", "$default")
    found = t.match(method, "/" + path)
    assert found is not None
    assert all(isinstance(v, str) for v in found.path_parameters.values())


def test_reference_agrees_with_the_documented_example() -> None:
    keys = ["GET /pets/dog/1", "GET /pets/dog/{id}", "GET /pets/{proxy+}", "ANY /{proxy+}"]
    keys.append("$default")
    assert reference(keys, "GET", "/pets/dog/1") == "GET /pets/dog/1"
    assert reference(keys, "GET", "/pets/dog/2") == "GET /pets/dog/{id}"
    assert reference(keys, "GET", "/pets/cat/1") == "GET /pets/{proxy+}"
    assert reference(keys, "POST", "/pets/dog/1") == "ANY /{proxy+}"
