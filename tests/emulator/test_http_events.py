"""HTTP request -> payload format 2.0 event, and handler result -> HTTP response."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pylive.emulator.http_events import (
    HttpResponse,
    build_event,
    error_response,
    format_request_time,
    not_found_response,
    to_http_response,
)

# 2026-11-27T04:03:42.123Z
EPOCH_MS = 1_795_752_222_123


def event(
    *,
    method: str = "GET",
    path: str = "/",
    query: bytes | str = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"",
    route_key: str = "$default",
    params: dict[str, str] | None = None,
) -> dict[str, Any]:
    return build_event(
        method=method,
        raw_path=path,
        raw_query=query,
        headers=headers or [],
        body=body,
        route_key=route_key,
        path_parameters=params or {},
        source_ip="127.0.0.1",
        api_id="local",
        domain_name="local.execute-api.localhost",
        request_id="req-1",
        time_epoch_ms=EPOCH_MS,
    )


# ---------------------------------------------------------------- events


def test_matches_the_documented_sample_event() -> None:
    """The 2.0 sample of the API Gateway developer guide, "Payload format version"
    (docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html),
    written out by hand. Left out: ``authentication`` (mutual TLS), ``authorizer`` and
    ``stageVariables``, which this API does not have. Added: the content-type and user-agent
    headers the sample's body and userAgent imply. The sample's ``time`` says 12/Mar while its
    ``timeEpoch`` is 4 March; the time here is derived from the epoch.
    """
    got = build_event(
        method="POST",
        raw_path="/my/path",
        raw_query=b"parameter1=value1&parameter1=value2&parameter2=value",
        headers=[
            (b"header1", b"value1"),
            (b"header2", b"value1"),
            (b"cookie", b"cookie1; cookie2"),
            (b"header2", b"value2"),
            (b"content-type", b"text/plain"),
            (b"user-agent", b"agent"),
        ],
        body=b"Hello from Lambda",
        route_key="$default",
        path_parameters={"parameter1": "value1"},
        source_ip="IP",
        stage="$default",
        api_id="api-id",
        domain_name="id.execute-api.us-east-1.amazonaws.com",
        request_id="id",
        time_epoch_ms=1583348638390,
        account_id="123456789012",
    )
    assert got == {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/my/path",
        "rawQueryString": "parameter1=value1&parameter1=value2&parameter2=value",
        "cookies": ["cookie1", "cookie2"],
        "headers": {
            "header1": "value1",
            "header2": "value1,value2",
            "content-type": "text/plain",
            "user-agent": "agent",
        },
        "queryStringParameters": {"parameter1": "value1,value2", "parameter2": "value"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api-id",
            "domainName": "id.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "id",
            "http": {
                "method": "POST",
                "path": "/my/path",
                "protocol": "HTTP/1.1",
                "sourceIp": "IP",
                "userAgent": "agent",
            },
            "requestId": "id",
            "routeKey": "$default",
            "stage": "$default",
            "time": "04/Mar/2020:19:03:58 +0000",
            "timeEpoch": 1583348638390,
        },
        "body": "Hello from Lambda",
        "pathParameters": {"parameter1": "value1"},
        "isBase64Encoded": False,
    }


def test_minimal_get() -> None:
    assert event(headers=[(b"host", b"localhost:3000")]) == {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {"host": "localhost:3000"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "local.execute-api.localhost",
            "domainPrefix": "local",
            "http": {
                "method": "GET",
                "path": "/",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "",
            },
            "requestId": "req-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "27/Nov/2026:04:03:42 +0000",
            "timeEpoch": EPOCH_MS,
        },
        "isBase64Encoded": False,
    }


def test_absent_keys() -> None:
    got = event()
    for key in ("cookies", "queryStringParameters", "pathParameters", "stageVariables", "body"):
        assert key not in got
    assert "authorizer" not in got["requestContext"]


@pytest.mark.parametrize(
    ("headers", "cookies", "remaining"),
    [
        ([(b"cookie", b"a=1")], ["a=1"], {}),
        ([(b"cookie", b"a=1; b=2")], ["a=1", "b=2"], {}),
        ([(b"cookie", b"a=1;b=2; ;c=")], ["a=1", "b=2", "c="], {}),
        ([(b"cookie", b"a=1"), (b"x", b"y"), (b"cookie", b"b=2")], ["a=1", "b=2"], {"x": "y"}),
        ([(b"Cookie", b"s=%7B%22a%22%7D")], ["s=%7B%22a%22%7D"], {}),  # values as sent
        ([(b"cookie", b"")], None, {}),
        ([(b"x-cookie", b"a=1")], None, {"x-cookie": "a=1"}),
    ],
)
def test_cookies(
    headers: list[tuple[bytes, bytes]], cookies: list[str] | None, remaining: dict[str, str]
) -> None:
    got = event(headers=headers)
    assert got.get("cookies") == cookies
    assert got["headers"] == remaining


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"Accept", b"text/html")], {"accept": "text/html"}),
        ([(b"x-a", b"1"), (b"X-A", b"2"), (b"x-a", b"3")], {"x-a": "1,2,3"}),
        ([(b"accept", b"a, b"), (b"accept", b"c")], {"accept": "a, b,c"}),
        ([(b"x-empty", b"")], {"x-empty": ""}),
        ([(b"x-utf8", "é".encode())], {"x-utf8": "é"}),
        ([(b"x-latin1", b"\xe9")], {"x-latin1": "é"}),  # not UTF-8: read as Latin-1
    ],
)
def test_headers(headers: list[tuple[bytes, bytes]], expected: dict[str, str]) -> None:
    assert event(headers=headers)["headers"] == expected


def test_user_agent() -> None:
    got = event(headers=[(b"user-agent", b"curl/8.5.0")])
    assert got["requestContext"]["http"]["userAgent"] == "curl/8.5.0"


@pytest.mark.parametrize(
    ("query", "params"),
    [
        (b"a=1", {"a": "1"}),
        (b"a=1&b=2&a=3", {"a": "1,3", "b": "2"}),
        (b"flag", {"flag": ""}),
        (b"a=&b", {"a": "", "b": ""}),
        (b"q=hello+world", {"q": "hello world"}),
        (b"q=a%2Bb%26c%3Dd", {"q": "a+b&c=d"}),
        (b"q=%E2%82%AC", {"q": "€"}),
        (b"k%20ey=v", {"k ey": "v"}),
        (b"a=1;b=2", {"a": "1;b=2"}),
        (b"a=1&&b=2&", {"a": "1", "b": "2"}),
        (b"list=1,2&list=3", {"list": "1,2,3"}),
        ("a=1", {"a": "1"}),
        (b"&", None),
        (b"", None),
    ],
)
def test_query_strings(query: bytes | str, params: dict[str, str] | None) -> None:
    got = event(query=query)
    raw = query.decode() if isinstance(query, bytes) else query
    assert got["rawQueryString"] == raw  # exactly as sent
    assert got.get("queryStringParameters") == params


@pytest.mark.parametrize(
    ("raw_path", "decoded"),
    [
        ("/items/42", "/items/42"),
        ("/a%20b", "/a b"),
        ("/caf%C3%A9", "/café"),
        ("/a%2Fb", "/a/b"),
        ("/a+b", "/a+b"),
        ("/100%25", "/100%25"),  # %25 stays encoded
        ("/100%25%41", "/100%25A"),
        ("/%FF", "/\ufffd"),
        ("/items/", "/items/"),  # trailing slash kept
    ],
)
def test_raw_path_is_decoded(raw_path: str, decoded: str) -> None:
    got = event(path=raw_path)
    assert got["rawPath"] == decoded
    assert got["requestContext"]["http"]["path"] == decoded


@pytest.mark.parametrize(
    ("route_key", "params"),
    [
        ("GET /items/{id}", {"id": "42"}),
        ("GET /files/{path+}", {"path": "a/b/c.txt"}),
        ("ANY /{proxy+}", {"proxy": "a b/c"}),
    ],
)
def test_route_and_path_parameters(route_key: str, params: dict[str, str]) -> None:
    got = event(route_key=route_key, params=params)
    assert got["routeKey"] == got["requestContext"]["routeKey"] == route_key
    assert got["pathParameters"] == params


def test_path_parameters_are_copied() -> None:
    params = {"id": "1"}
    got = event(route_key="GET /items/{id}", params=params)
    got["pathParameters"]["id"] = "2"
    assert params == {"id": "1"}


B64 = True
TEXT = False


@pytest.mark.parametrize(
    ("content_type", "body", "encoded"),
    [
        (b"application/json", b'{"a": 1}', TEXT),
        (b"application/json; charset=utf-8", b'{"a": "\xc3\xa9"}', TEXT),
        (b"Application/JSON", b"{}", TEXT),
        (b"text/plain", b"hi", TEXT),
        (b"text/html; charset=utf-8", b"<p>hi</p>", TEXT),
        (b"text/csv", b"a,b\n1,2", TEXT),
        (b"application/xml", b"<a/>", TEXT),
        (b"application/javascript", b"1;", TEXT),
        (b"text/plain", b"\xff\xfe", B64),  # not UTF-8
        (None, b"hi", B64),
        (b"application/x-www-form-urlencoded", b"a=1&b=2", B64),
        (b"multipart/form-data; boundary=x", b"--x--", B64),
        (b"application/octet-stream", b"\x00\x01", B64),
        (b"image/png", b"\x89PNG", B64),
        (b"application/vnd.api+json", b"{}", B64),
        (b"application/problem+xml", b"<a/>", B64),
    ],
)
def test_body_encoding(content_type: bytes | None, body: bytes, encoded: bool) -> None:
    headers = [] if content_type is None else [(b"content-type", content_type)]
    got = event(method="POST", headers=headers, body=body)
    assert got["isBase64Encoded"] is encoded
    if encoded:
        assert base64.b64decode(got["body"]) == body
    else:
        assert got["body"] == body.decode()


def test_empty_body_is_absent() -> None:
    got = event(method="POST", headers=[(b"content-type", b"application/octet-stream")])
    assert "body" not in got
    assert got["isBase64Encoded"] is False


def test_head() -> None:
    got = event(method="HEAD", path="/items", route_key="HEAD /items")
    assert got["requestContext"]["http"]["method"] == "HEAD"
    assert "body" not in got


def test_stage_and_account() -> None:
    got = build_event(
        method="GET",
        raw_path="/",
        raw_query=b"",
        headers=[],
        body=b"",
        route_key="$default",
        path_parameters={},
        source_ip="10.0.0.1",
        stage="dev",
        api_id="abc123",
        domain_name="abc123.execute-api.eu-west-1.amazonaws.com",
        request_id="r",
        time_epoch_ms=0,
        account_id="000000000000",
    )
    context = got["requestContext"]
    assert (context["stage"], context["accountId"], context["domainPrefix"]) == (
        "dev",
        "000000000000",
        "abc123",
    )
    assert context["time"] == "01/Jan/1970:00:00:00 +0000"


@given(st.integers(min_value=0, max_value=253_402_300_799_999))  # up to year 9999
def test_request_time_matches_datetime(epoch_ms: int) -> None:
    moment = datetime.fromtimestamp(epoch_ms // 1000, tz=UTC)
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    expected = (
        f"{moment.day:02d}/{months[moment.month - 1]}/{moment.year:04d}:{moment:%H:%M:%S} +0000"
    )
    assert format_request_time(epoch_ms) == expected


_BYTES = st.binary(max_size=64)


@given(
    method=st.sampled_from(["GET", "POST", "HEAD", "PUT"]),
    path=st.text(max_size=40),
    query=_BYTES,
    headers=st.lists(st.tuples(_BYTES, _BYTES), max_size=8),
    body=st.binary(max_size=256),
    content_type=st.one_of(
        st.none(), _BYTES, st.sampled_from([b"text/plain", b"application/json"])
    ),
)
def test_build_event_never_raises_and_is_json(
    method: str,
    path: str,
    query: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    content_type: bytes | None,
) -> None:
    if content_type is not None:
        headers = [*headers, (b"content-type", content_type)]
    got = event(method=method, path="/" + path, query=query, headers=headers, body=body)
    assert orjson.loads(orjson.dumps(got)) == got
    if body:
        sent = base64.b64decode(got["body"]) if got["isBase64Encoded"] else got["body"].encode()
        assert sent == body
    else:
        assert "body" not in got


# ---------------------------------------------------------------- responses


def response(value: Any) -> HttpResponse:
    return to_http_response(orjson.dumps(value))


def headers_of(r: HttpResponse) -> list[tuple[str, str]]:
    return [(k.decode(), v.decode()) for k, v in r.headers]


INTERNAL_ERROR = (500, [("content-type", "application/json"), ("content-length", "35")])


def test_error_and_not_found_responses() -> None:
    r = error_response()
    assert (r.status, headers_of(r), r.body) == (
        *INTERNAL_ERROR,
        b'{"message":"Internal Server Error"}',
    )
    r = not_found_response()
    assert (r.status, headers_of(r), r.body) == (
        404,
        [("content-type", "application/json"), ("content-length", "23")],
        b'{"message":"Not Found"}',
    )
    assert error_response().headers is not error_response().headers  # fresh each time


# The inference table of the developer guide, "Lambda function response for format 2.0"
# (http-api-develop-integrations-lambda): valid JSON without statusCode is a 200
# application/json response whose body is the output.
@pytest.mark.parametrize(
    ("result", "body"),
    [
        (b'"Hello from Lambda!"', b"Hello from Lambda!"),
        (b'{ "message": "Hello from Lambda!" }', b'{ "message": "Hello from Lambda!" }'),
        (b'{"message": "hi"}', b'{"message": "hi"}'),  # the output as sent, not re-encoded
        (b"[1, 2, 3]", b"[1, 2, 3]"),
        (b"42", b"42"),
        (b"4.5", b"4.5"),
        (b"true", b"true"),
        (b"null", b"null"),
        (b'""', b""),
        (b'"caf\\u00e9"', "café".encode()),
        (b'"line\\nbreak"', b"line\nbreak"),
        (b'{"body": "x", "headers": {"a": "b"}}', b'{"body": "x", "headers": {"a": "b"}}'),
        (b'{"id": 123456789012345678901234567890}', b'{"id": 123456789012345678901234567890}'),
    ],
)
def test_inferred_responses(result: bytes, body: bytes) -> None:
    r = to_http_response(result)
    assert r.status == 200
    assert headers_of(r) == [
        ("content-type", "application/json"),
        ("content-length", str(len(body))),
    ]
    assert r.body == body


@pytest.mark.parametrize(
    ("value", "status", "headers", "body"),
    [
        (
            {"statusCode": 201, "headers": {"Content-Type": "application/json"}, "body": '{"a":1}'},
            201,
            [("content-type", "application/json")],
            b'{"a":1}',
        ),
        # no content-type: the HTTP API default
        (
            {"statusCode": 200, "body": "hi"},
            200,
            [("content-type", "text/plain; charset=utf-8")],
            b"hi",
        ),
        ({"statusCode": 204}, 204, [("content-type", "text/plain; charset=utf-8")], b""),
        (
            {"statusCode": 200, "body": None},
            200,
            [("content-type", "text/plain; charset=utf-8")],
            b"",
        ),
        (
            {"statusCode": 302, "headers": {"Location": "/next"}},
            302,
            [("location", "/next"), ("content-type", "text/plain; charset=utf-8")],
            b"",
        ),
        # header values that are not strings are stringified; null drops the header
        (
            {
                "statusCode": 200,
                "headers": {"X-Int": 5, "X-Float": 1.5, "X-True": True, "X-None": None},
                "body": "",
            },
            200,
            [
                ("x-int", "5"),
                ("x-float", "1.5"),
                ("x-true", "true"),
                ("content-type", "text/plain; charset=utf-8"),
            ],
            b"",
        ),
        # cookies: one set-cookie each, before a set-cookie given as a header
        (
            {
                "statusCode": 200,
                "cookies": ["a=1; Path=/", "b=2; HttpOnly"],
                "headers": {"Set-Cookie": "c=3", "Content-Type": "text/html"},
                "body": "<p>",
            },
            200,
            [
                ("content-type", "text/html"),
                ("set-cookie", "a=1; Path=/"),
                ("set-cookie", "b=2; HttpOnly"),
                ("set-cookie", "c=3"),
            ],
            b"<p>",
        ),
        (
            {"statusCode": 200, "cookies": []},
            200,
            [("content-type", "text/plain; charset=utf-8")],
            b"",
        ),
        # base64 bodies are decoded
        (
            {
                "statusCode": 200,
                "headers": {"content-type": "image/png"},
                "body": base64.b64encode(b"\x89PNG\x00\xff").decode(),
                "isBase64Encoded": True,
            },
            200,
            [("content-type", "image/png")],
            b"\x89PNG\x00\xff",
        ),
        (
            {"statusCode": 200, "body": "aGk=", "isBase64Encoded": False},
            200,
            [("content-type", "text/plain; charset=utf-8")],
            b"aGk=",
        ),
        # multiValueHeaders belongs to format 1.0 and is ignored
        (
            {"statusCode": 200, "multiValueHeaders": {"x-a": ["1", "2"]}, "body": "x"},
            200,
            [("content-type", "text/plain; charset=utf-8")],
            b"x",
        ),
        # a content-length from the handler is replaced by the real one
        (
            {"statusCode": 200, "headers": {"Content-Length": "999"}, "body": "abc"},
            200,
            [("content-type", "text/plain; charset=utf-8")],
            b"abc",
        ),
        (
            {"statusCode": 200, "body": "é"},
            200,
            [("content-type", "text/plain; charset=utf-8")],
            "é".encode(),
        ),
        ({"statusCode": 599}, 599, [("content-type", "text/plain; charset=utf-8")], b""),
        ({"statusCode": 100}, 100, [("content-type", "text/plain; charset=utf-8")], b""),
    ],
)
def test_explicit_responses(
    value: dict[str, Any], status: int, headers: list[tuple[str, str]], body: bytes
) -> None:
    r = response(value)
    assert r.status == status
    assert headers_of(r) == [*headers, ("content-length", str(len(body)))]
    assert r.body == body


@pytest.mark.parametrize(
    "result",
    [
        b"",
        b"not json",
        b"{",
        b'{"statusCode": 200',
        b"\xff",
        b"NaN",
        b'{"a": Infinity}',
        orjson.dumps({"statusCode": "200"}),
        orjson.dumps({"statusCode": 99}),
        orjson.dumps({"statusCode": 600}),
        orjson.dumps({"statusCode": 200.0}),
        orjson.dumps({"statusCode": True}),
        orjson.dumps({"statusCode": None}),
        orjson.dumps({"statusCode": 200, "body": {"a": 1}}),
        orjson.dumps({"statusCode": 200, "body": 5}),
        orjson.dumps({"statusCode": 200, "body": "not base64!", "isBase64Encoded": True}),
        orjson.dumps({"statusCode": 200, "headers": ["a"]}),
        orjson.dumps({"statusCode": 200, "headers": {"x": {"nested": 1}}}),
        orjson.dumps({"statusCode": 200, "headers": {"x": [1]}}),
        orjson.dumps({"statusCode": 200, "headers": {"x": "a\r\nInjected: 1"}}),
        orjson.dumps({"statusCode": 200, "headers": {"bad name": "1"}}),
        orjson.dumps({"statusCode": 200, "headers": {"": "1"}}),
        orjson.dumps({"statusCode": 200, "cookies": "a=1"}),
        orjson.dumps({"statusCode": 200, "cookies": [1]}),
        orjson.dumps({"statusCode": 200, "cookies": ["a=1\nb"]}),
    ],
)
def test_malformed_results_are_internal_errors(result: bytes) -> None:
    r = to_http_response(result)
    assert (r.status, headers_of(r), r.body) == (
        *INTERNAL_ERROR,
        b'{"message":"Internal Server Error"}',
    )


@given(st.binary(max_size=200))
def test_to_http_response_never_raises(result: bytes) -> None:
    r = to_http_response(result)
    assert 100 <= r.status <= 599
    assert (b"content-length", str(len(r.body)).encode()) in r.headers


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@given(_JSON)
def test_any_json_without_status_code_is_a_200(value: Any) -> None:
    if isinstance(value, dict) and "statusCode" in value:
        return
    result = json.dumps(value).encode()  # as the Lambda runtime encodes a return value
    r = to_http_response(result)
    assert r.status == 200
    assert r.body == (value.encode() if isinstance(value, str) else result)
