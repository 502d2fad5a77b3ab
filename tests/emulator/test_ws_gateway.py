"""The local API Gateway WebSocket API (pylive.emulator.ws_gateway), driven over loopback by real
websockets clients and by boto3's apigatewaymanagementapi client."""

from __future__ import annotations

import asyncio
import dataclasses
import http.client
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import boto3
import pytest
from asynchelpers import run as bounded_run
from botocore import UNSIGNED
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from pylive.emulator.principals import AccessKey, new_key, role_session
from pylive.emulator.ws_gateway import WebSocketGateway
from pylive.emulator.ws_settings import GatewayLimits, IntegrationContext
from pylive.in_lambda.signing import Signer

KEY, SECRET = "AKIDPYLIVELOCAL", "local-secret"
CREDENTIALS = {KEY: SECRET}
ID_RE = re.compile(r"^[A-Za-z0-9_-]{15}=$")
TIME_RE = re.compile(r"^\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000$")
Event = dict[str, Any]


# This module's scenarios are bounded at 30 s.
run = partial(bounded_run, timeout=30)


class Recorder:
    """Integrations that record their events; tests wait on conditions, never on time."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Event()

    def record(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()

    def of(self, route: str) -> list[Event]:
        return [e for e in self.events if e["requestContext"]["routeKey"] == route]

    async def wait_for(self, route: str, count: int = 1, timeout: float = 10) -> list[Event]:
        async with asyncio.timeout(timeout):
            while len(self.of(route)) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.of(route)

    def handler(
        self, result: dict[str, Any] | None = None
    ) -> Callable[[Event, IntegrationContext], Awaitable[dict[str, Any] | None]]:
        async def integration(event: Event, context: IntegrationContext) -> dict[str, Any] | None:
            self.record(event)
            return result

        return integration

    async def echo(self, event: Event, context: IntegrationContext) -> dict[str, Any]:
        self.record(event)
        return {
            "statusCode": 200,
            "body": f"{event['requestContext']['routeKey']}:{event.get('body', '')}",
        }


def gateway(recorder: Recorder, **kwargs: Any) -> WebSocketGateway:
    routes = {
        "$connect": recorder.handler({"statusCode": 200}),
        "$disconnect": recorder.handler(),
        "$default": recorder.echo,
    }
    routes.update(kwargs.pop("routes", {}))
    return WebSocketGateway(routes={k: v for k, v in routes.items() if v}, **kwargs)


def signed_url(url: str, *, secret: str = SECRET, signed_at: datetime | None = None) -> str:
    """A presigned URL as a browser or the stub builds it (botocore's SigV4QueryAuth);
    ``signed_at`` backdates the signature."""
    request = AWSRequest(method="GET", url=url)
    auth = SigV4QueryAuth(Credentials(KEY, secret, "token"), "execute-api", "us-east-1", 60)
    if signed_at is None:
        auth.add_auth(request)
    else:
        request.context["timestamp"] = signed_at.strftime("%Y%m%dT%H%M%SZ")
        auth._modify_request_before_signing(request)
        canonical = auth.canonical_request(request)
        signature = auth.signature(auth.string_to_sign(request, canonical), request)
        auth._inject_signature_to_request(request, signature)
    return str(request.url)


def management(gw: WebSocketGateway, *, unsigned: bool = False) -> Any:
    config = Config(retries={"max_attempts": 1})
    if unsigned:
        config = config.merge(Config(signature_version=UNSIGNED))
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=gw.connections_url,
        region_name="us-east-1",
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        config=config,
    )


def ws_connect(url: str, **kwargs: Any) -> Any:
    return connect(url, compression=None, max_size=None, open_timeout=10, **kwargs)


async def connected(rec: Recorder, ws: ClientConnection) -> str:
    """The connection id, from the $connect event of the one open connection."""
    del ws
    return str((await rec.wait_for("$connect"))[-1]["requestContext"]["connectionId"])


async def closed_code(ws: ClientConnection) -> int | None:
    async with asyncio.timeout(10):
        with pytest.raises(ConnectionClosed) as raised:
            while True:
                await ws.recv()
    rcvd = raised.value.rcvd
    return None if rcvd is None else rcvd.code


# ---------------------------------------------------------------- events


def test_connect_message_and_disconnect_events() -> None:
    async def scenario() -> None:
        rec = Recorder()
        async with gateway(rec, stage="dev") as gw:
            async with ws_connect(
                gw.ws_url + "?token=a%20b&token=c&x=", user_agent_header="t/1"
            ) as ws:
                await ws.send('{"action": "nothing", "n": 1}')
                assert await ws.recv() == '$default:{"action": "nothing", "n": 1}'
            disconnect = (await rec.wait_for("$disconnect"))[0]
        connect_ev, message_ev = rec.of("$connect")[0], rec.of("$default")[0]

        assert connect_ev["headers"]["Host"] == gw.domain_name
        assert connect_ev["headers"]["User-Agent"] == "t/1"
        assert connect_ev["headers"]["Sec-WebSocket-Version"] == "13"
        assert connect_ev["headers"]["X-Forwarded-For"] == "127.0.0.1"
        assert connect_ev["headers"]["X-Amzn-Trace-Id"].startswith("Root=1-")
        assert connect_ev["multiValueHeaders"]["Host"] == [gw.domain_name]
        assert connect_ev["queryStringParameters"] == {"token": "c", "x": ""}
        assert connect_ev["multiValueQueryStringParameters"] == {"token": ["a b", "c"], "x": [""]}
        assert connect_ev["isBase64Encoded"] is False
        assert "body" not in connect_ev

        assert set(message_ev) == {"requestContext", "body", "isBase64Encoded"}
        assert message_ev["body"] == '{"action": "nothing", "n": 1}'
        assert ID_RE.match(message_ev["requestContext"]["messageId"])

        assert set(disconnect["headers"]) == {"Host", "x-api-key", "X-Forwarded-For", "x-restapi"}
        assert disconnect["requestContext"]["disconnectStatusCode"] == 1000
        assert "messageId" not in disconnect["requestContext"]

        ids = {e["requestContext"]["connectionId"] for e in (connect_ev, message_ev, disconnect)}
        assert len(ids) == 1
        for event, route, kind in [
            (connect_ev, "$connect", "CONNECT"),
            (message_ev, "$default", "MESSAGE"),
            (disconnect, "$disconnect", "DISCONNECT"),
        ]:
            ctx = event["requestContext"]
            assert ctx["routeKey"] == route
            assert ctx["eventType"] == kind
            assert ID_RE.match(ctx["connectionId"])
            assert ID_RE.match(ctx["requestId"])
            assert ctx["extendedRequestId"] == ctx["requestId"]
            assert TIME_RE.match(ctx["requestTime"])
            assert ctx["requestTimeEpoch"] >= ctx["connectedAt"] > 1_700_000_000_000
            assert ctx["connectedAt"] == connect_ev["requestContext"]["connectedAt"]
            assert ctx["messageDirection"] == "IN"
            assert (ctx["stage"], ctx["apiId"]) == ("dev", "local")
            assert ctx["domainName"] == gw.domain_name
            assert ctx["identity"]["sourceIp"] == "127.0.0.1"
            assert "disconnectStatusCode" in ctx if kind == "DISCONNECT" else True

    run(scenario())


def test_no_query_means_no_query_parameters() -> None:
    async def scenario() -> None:
        rec = Recorder()
        async with gateway(rec) as gw, ws_connect(gw.ws_url):
            event = (await rec.wait_for("$connect"))[0]
        assert "queryStringParameters" not in event
        assert "multiValueQueryStringParameters" not in event

    run(scenario())


def test_disconnect_after_a_close_without_status() -> None:
    async def scenario() -> None:
        rec = Recorder()
        async with gateway(rec) as gw:
            async with ws_connect(gw.ws_url) as ws:
                await ws.close(None)  # type: ignore[arg-type]  # an empty close frame
            event = (await rec.wait_for("$disconnect"))[0]
        ctx = event["requestContext"]
        assert (ctx["disconnectStatusCode"], ctx["disconnectReason"]) == (
            1005,
            "Client-side close frame status not set",
        )

    run(scenario())


# ---------------------------------------------------------------- routing


@pytest.mark.parametrize(
    ("routes", "expression", "body", "expected"),
    [
        (("chat", "$default"), None, '{"action": "chat"}', "chat:"),
        (("chat", "$default"), None, '{"action": "Chat"}', "$default:"),  # case-sensitive
        (("chat", "$default"), None, '{"other": 1}', "$default:"),  # missing → ""
        (("", "chat"), None, '{"other": 1}', ":"),  # "" is a route key like any other
        (("chat", "$default"), None, "not json", "$default:"),
        (("chat", "$default"), None, '["chat"]', "$default:"),
        (("5", "$default"), None, '{"action": 5}', "5:"),  # stringified
        (("true",), None, '{"action": true}', "true:"),
        (("invoke",), "$request.body.meta.kind", '{"meta": {"kind": "invoke"}}', "invoke:"),
        (("$connect", "$default"), None, '{"action": "$connect"}', "$default:"),
    ],
)
def test_route_selection(
    routes: tuple[str, ...], expression: str | None, body: str, expected: str
) -> None:
    async def scenario() -> str:
        rec = Recorder()
        options: dict[str, Any] = {"routes": {key: rec.echo for key in routes}}
        if expression:
            options["route_selection_expression"] = expression
        async with gateway(rec, **options) as gw, ws_connect(gw.ws_url) as ws:
            await ws.send(body)
            return str(await ws.recv())

    assert run(scenario()) == expected + body


def test_no_match_and_no_default_gives_the_forbidden_frame() -> None:
    async def scenario() -> None:
        rec = Recorder()
        async with gateway(rec, routes={"$default": None, "chat": rec.echo}) as gw:
            async with ws_connect(gw.ws_url) as ws:
                await ws.send('{"action": "other"}')
                frame = json.loads(await ws.recv())
                await ws.send('{"action": "chat"}')  # the connection survives
                assert await ws.recv() == 'chat:{"action": "chat"}'
            connection_id = await connected(rec, ws)
        assert frame["message"] == "Forbidden"
        assert frame["connectionId"] == connection_id
        assert ID_RE.match(frame["requestId"])

    run(scenario())


def test_integration_errors_and_timeouts_send_error_frames() -> None:
    async def boom(event: Event, context: IntegrationContext) -> dict[str, Any]:
        raise RuntimeError("crash")

    async def hang(event: Event, context: IntegrationContext) -> dict[str, Any]:
        await asyncio.Event().wait()
        return {}

    async def scenario() -> None:
        rec = Recorder()
        limits = GatewayLimits(integration_timeout=0.3)
        async with gateway(rec, routes={"boom": boom, "hang": hang}, limits=limits) as gw:
            async with ws_connect(gw.ws_url) as ws:
                await ws.send('{"action": "boom"}')
                crashed = json.loads(await ws.recv())
                await ws.send('{"action": "hang"}')
                timed_out = json.loads(await ws.recv())
                await ws.send("still open")
                assert await ws.recv() == "$default:still open"
            connection_id = await connected(rec, ws)
        assert crashed["message"] == "Internal server error"
        assert crashed["connectionId"] == connection_id
        assert ID_RE.match(crashed["requestId"])
        assert timed_out["message"] == "Endpoint request timed out"

    run(scenario())


def test_one_way_routes_send_nothing_back() -> None:
    async def scenario() -> None:
        rec = Recorder()
        async with gateway(rec, routes={"quiet": rec.echo}, two_way_routes={"$default"}) as gw:
            async with ws_connect(gw.ws_url) as ws:
                await ws.send('{"action": "quiet"}')
                await ws.send("loud")
                assert await ws.recv() == "$default:loud"  # the first produced no frame
            assert len(rec.of("quiet")) == 1

    run(scenario())


# ---------------------------------------------------------------- $connect


@pytest.mark.parametrize(("status", "expected"), [(401, 401), (400, 400), ("403", 403)])
def test_connect_status_rejects_the_handshake(status: Any, expected: int) -> None:
    async def scenario() -> int:
        rec = Recorder()
        routes = {"$connect": rec.handler({"statusCode": status, "body": "no"})}
        async with gateway(rec, routes=routes) as gw:
            with pytest.raises(InvalidStatus) as raised:
                async with ws_connect(gw.ws_url):
                    pass
            assert rec.of("$disconnect") == []
            return raised.value.response.status_code

    assert run(scenario()) == expected


def test_connect_exception_gives_502_and_no_integration_accepts() -> None:
    async def boom(event: Event, context: IntegrationContext) -> dict[str, Any]:
        raise RuntimeError("crash")

    async def scenario() -> None:
        rec = Recorder()
        async with gateway(rec, routes={"$connect": boom}) as gw:
            with pytest.raises(InvalidStatus) as raised:
                async with ws_connect(gw.ws_url):
                    pass
        assert raised.value.response.status_code == 502
        async with gateway(rec, routes={"$connect": None}) as gw, ws_connect(gw.ws_url) as ws:
            await ws.send("hi")
            assert await ws.recv() == "$default:hi"

    run(scenario())


def test_wrong_stage_is_forbidden() -> None:
    async def scenario() -> None:
        rec = Recorder()
        async with gateway(rec, stage="dev") as gw:
            with pytest.raises(InvalidStatus) as raised:
                async with ws_connect(gw.ws_url.replace("/dev", "/prod")):
                    pass
        assert raised.value.response.status_code == 403

    run(scenario())


def test_subprotocol_from_the_connect_response_reaches_the_client() -> None:
    async def scenario() -> None:
        rec = Recorder()
        result = {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "pylive.v1"}}
        gw = gateway(rec, routes={"$connect": rec.handler(result)})
        async with gw, ws_connect(gw.ws_url, subprotocols=["pylive.v1"]) as ws:
            assert ws.subprotocol == "pylive.v1"

    run(scenario())


def test_post_to_connection_during_connect_is_gone() -> None:
    async def scenario() -> None:
        rec = Recorder()
        outcome: list[str] = []

        async def on_connect(event: Event, context: IntegrationContext) -> dict[str, Any]:
            client = management(gw)
            connection_id = event["requestContext"]["connectionId"]
            try:
                await asyncio.to_thread(
                    client.post_to_connection, ConnectionId=connection_id, Data=b"x"
                )
                outcome.append("delivered")
            except client.exceptions.GoneException:
                outcome.append("gone")
            return {"statusCode": 200}

        gw = gateway(rec, routes={"$connect": on_connect}, credentials=CREDENTIALS)
        async with gw, ws_connect(signed_url(gw.ws_url)) as ws:
            await ws.send("after")
            assert await ws.recv() == "$default:after"
        assert outcome == ["gone"]

    run(scenario())


# ---------------------------------------------------------------- IAM on $connect


def test_iam_signed_urls() -> None:
    async def scenario() -> None:
        rec = Recorder()
        async with gateway(rec, credentials=CREDENTIALS) as gw:
            async with ws_connect(signed_url(gw.ws_url + "?app=shop")) as ws:
                await ws.send("signed")
                assert await ws.recv() == "$default:signed"
            recent = datetime.now(UTC) - timedelta(seconds=30)
            async with ws_connect(signed_url(gw.ws_url, signed_at=recent)):
                pass
            refused = [
                gw.ws_url,  # unsigned
                signed_url(gw.ws_url, secret="guessed"),  # forged
                signed_url(gw.ws_url + "?app=shop").replace("app=shop", "app=shoq"),  # altered
                signed_url(gw.ws_url, signed_at=datetime.now(UTC) - timedelta(hours=1)),  # expired
                signed_url(gw.ws_url).replace("127.0.0.1", "localhost"),  # another host
            ]
            for url in refused:
                with pytest.raises(InvalidStatus) as raised:
                    async with ws_connect(url):
                        pass
                assert raised.value.response.status_code == 403, url
        assert len(rec.of("$connect")) == 2  # refused requests never reach $connect

    run(scenario())


# ---------------------------------------------------------------- @connections


def test_post_get_delete_and_gone() -> None:
    async def scenario() -> None:
        rec = Recorder()
        async with gateway(rec, credentials=CREDENTIALS) as gw:
            client = management(gw)
            async with ws_connect(signed_url(gw.ws_url), user_agent_header="agent/2") as ws:
                connection_id = await connected(rec, ws)
                await asyncio.to_thread(
                    client.post_to_connection, ConnectionId=connection_id, Data=b'{"x": "\xc3\xa9"}'
                )
                assert await ws.recv() == '{"x": "é"}'
                info = await asyncio.to_thread(client.get_connection, ConnectionId=connection_id)
                assert info["Identity"] == {"SourceIp": "127.0.0.1", "UserAgent": "agent/2"}
                assert info["ConnectedAt"] <= info["LastActiveAt"]
                connected_at = rec.of("$connect")[0]["requestContext"]["connectedAt"]
                assert int(info["ConnectedAt"].timestamp() * 1000) == connected_at
                deleted = await asyncio.to_thread(
                    client.delete_connection, ConnectionId=connection_id
                )
                assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
                assert await closed_code(ws) == 1000
            disconnect = (await rec.wait_for("$disconnect"))[0]["requestContext"]
            assert (disconnect["disconnectStatusCode"], disconnect["disconnectReason"]) == (
                1000,
                "Connection Closed Normally",
            )
            for call in (client.post_to_connection, client.get_connection):
                kwargs = {"Data": b"x"} if call == client.post_to_connection else {}
                with pytest.raises(client.exceptions.GoneException):
                    await asyncio.to_thread(call, ConnectionId=connection_id, **kwargs)
            with pytest.raises(client.exceptions.GoneException):
                await asyncio.to_thread(client.delete_connection, ConnectionId=connection_id)
            with pytest.raises(client.exceptions.GoneException):
                await asyncio.to_thread(client.get_connection, ConnectionId="AAAAAAAAAAAAAAA=")
            stats = gw.stats
            assert stats.connections_calls == 7
            assert stats.connections_calls_by_connection[connection_id] == 6
            assert stats.connections_calls_by_operation["PostToConnection"] == 2
            assert stats.connections_calls_by_operation["GetConnection"] == 3
            assert stats.connections_calls_by_operation["DeleteConnection"] == 2

    run(scenario())


def test_post_over_128_kb_is_413_and_at_the_limit_delivered() -> None:
    async def scenario() -> None:
        rec = Recorder()
        async with gateway(rec, credentials=CREDENTIALS) as gw:
            client = management(gw)
            async with ws_connect(signed_url(gw.ws_url)) as ws:
                connection_id = await connected(rec, ws)
                with pytest.raises(client.exceptions.PayloadTooLargeException):
                    await asyncio.to_thread(
                        client.post_to_connection,
                        ConnectionId=connection_id,
                        Data=b"x" * (128 * 1024 + 1),
                    )
                await asyncio.to_thread(
                    client.post_to_connection, ConnectionId=connection_id, Data=b"y" * 128 * 1024
                )
                assert await ws.recv() == "y" * 128 * 1024

    run(scenario())


def test_unsigned_or_foreign_calls_are_forbidden() -> None:
    async def scenario() -> None:
        rec = Recorder()
        gw = gateway(rec, credentials=CREDENTIALS)
        async with gw, ws_connect(signed_url(gw.ws_url)) as ws:
            connection_id = await connected(rec, ws)
            for client in (
                management(gw, unsigned=True),
                boto3.client(
                    "apigatewaymanagementapi",
                    endpoint_url=gw.connections_url,
                    region_name="us-east-1",
                    aws_access_key_id=KEY,
                    aws_secret_access_key="wrong",
                    config=Config(retries={"max_attempts": 1}),
                ),
            ):
                with pytest.raises(client.exceptions.ForbiddenException):
                    await asyncio.to_thread(
                        client.post_to_connection, ConnectionId=connection_id, Data=b"x"
                    )
            await ws.send("ping")
            assert await ws.recv() == "$default:ping"  # nothing was delivered

    run(scenario())


def test_raw_http_with_percent_encoded_segment_and_id() -> None:
    """What the AWS docs show (``%40connections``) and an encoded ``=`` in the id."""

    async def scenario() -> None:
        rec = Recorder()
        async with gateway(rec) as gw, ws_connect(gw.ws_url) as ws:
            connection_id = await connected(rec, ws)
            path = f"/dev/%40connections/{connection_id.replace('=', '%3D')}"

            def post() -> tuple[int, bytes]:
                conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
                conn.request("POST", path, body=b"raw")
                response = conn.getresponse()
                status, body = response.status, response.read()
                conn.request("GET", "/dev/@connections/nope%3D")  # same keep-alive connection
                gone = conn.getresponse()
                assert (gone.status, gone.getheader("x-amzn-ErrorType"), gone.read()) == (
                    410,
                    "GoneException",
                    b"",
                )
                conn.close()
                return status, body

            assert await asyncio.to_thread(post) == (200, b"")
            assert await ws.recv() == "raw"

    run(scenario())


# ---------------------------------------------------------------- limits


@pytest.mark.parametrize(
    ("send", "code"),
    [
        ("x" * (32 * 1024 + 1), 1009),  # one frame over 32 KB
        (["y" * 30 * 1024] * 5, 1009),  # a 150 KB message in 30 KB frames
        (b"binary", 1003),
    ],
    ids=["frame-over-32KB", "message-over-128KB", "binary"],
)
def test_limits_close_the_connection(send: Any, code: int) -> None:
    async def scenario() -> None:
        rec = Recorder()
        async with gateway(rec) as gw:
            async with ws_connect(gw.ws_url) as ws:
                await ws.send("y" * 32 * 1024)  # exactly at the frame limit: fine
                assert await ws.recv() == "$default:" + "y" * 32 * 1024
                await ws.send(send)
                assert await closed_code(ws) == code
            event = (await rec.wait_for("$disconnect"))[0]
            assert event["requestContext"]["disconnectStatusCode"] == code
            assert len(rec.of("$default")) == 1

    run(scenario())


@pytest.mark.parametrize("which", ["idle", "max-duration"])
def test_idle_and_max_duration_close_with_1001(which: str) -> None:
    limits = (
        GatewayLimits(idle_timeout=0.3, max_duration=60)
        if which == "idle"
        else GatewayLimits(idle_timeout=60, max_duration=0.5)
    )

    async def scenario() -> None:
        rec = Recorder()
        async with gateway(rec, limits=limits) as gw:
            async with ws_connect(gw.ws_url) as ws:
                assert await closed_code(ws) == 1001
            event = (await rec.wait_for("$disconnect"))[0]
            assert event["requestContext"]["disconnectStatusCode"] == 1001
            assert gw.connection_ids == []

    run(scenario())


def test_closing_the_gateway_disconnects_clients() -> None:
    async def scenario() -> None:
        rec = Recorder()
        gw = gateway(rec)
        async with gw, ws_connect(gw.ws_url) as ws:
            await connected(rec, ws)
            await gw.stop()
            assert await closed_code(ws) == 1001
        assert rec.of("$disconnect")[0]["requestContext"]["disconnectStatusCode"] == 1001

    run(scenario())


# ---------------------------------------------------------------- IAM policies

ARN = "arn:aws:execute-api:us-east-1:123456789012:local/dev"


def allow(action: str, *resources: str) -> dict[str, Any]:
    return {"Statement": [{"Effect": "Allow", "Action": action, "Resource": list(resources)}]}


def role_key(*policies: dict[str, Any]) -> AccessKey:
    return new_key(role_session("fn-role", "fn", policies), temporary=True)


def presigned_by(key: AccessKey, url: str) -> str:
    return Signer(key.access_key_id, key.secret_access_key, key.session_token, "us-east-1").presign(
        url, expires=60
    )


def client_of(gw: WebSocketGateway, key: AccessKey) -> Any:
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=gw.connections_url,
        region_name="us-east-1",
        aws_access_key_id=key.access_key_id,
        aws_secret_access_key=key.secret_access_key,
        aws_session_token=key.session_token,
        config=Config(retries={"max_attempts": 1}),
    )


def test_connect_is_authorized_by_the_signers_policies_and_names_it() -> None:
    allowed = role_key(allow("execute-api:Invoke", f"{ARN}/$connect"))
    elsewhere = role_key(allow("execute-api:Invoke", f"{ARN.replace('/dev', '/prod')}/$connect"))

    async def scenario() -> None:
        rec = Recorder()
        async with gateway(rec, access_keys=[allowed, elsewhere]) as gw:
            async with ws_connect(presigned_by(allowed, gw.ws_url)):
                pass
            identity = rec.of("$connect")[0]["requestContext"]["identity"]
            assert identity["userArn"] == allowed.principal.arn
            assert identity["userArn"].startswith("arn:aws:sts::123456789012:assumed-role/fn-role/")
            assert identity["caller"] == identity["user"] == allowed.principal.user_id
            assert identity["caller"].startswith("AROA") and identity["caller"].endswith(":fn")
            assert identity["accountId"] == "123456789012"
            assert identity["accessKey"] == allowed.access_key_id
            assert identity["sourceIp"] == "127.0.0.1"
            with pytest.raises(InvalidStatus) as raised:
                async with ws_connect(presigned_by(elsewhere, gw.ws_url)):
                    pass
            response = raised.value.response
            assert response.status_code == 403
            assert json.loads(response.body)["Message"].startswith(
                f"User: {elsewhere.principal.arn} is not authorized to perform: "
                f"execute-api:Invoke on resource: {ARN}/$connect"
            )
            no_token = dataclasses.replace(allowed, session_token=None)
            with pytest.raises(InvalidStatus) as raised:
                async with ws_connect(presigned_by(no_token, gw.ws_url)):
                    pass
            assert raised.value.response.status_code == 403
        assert len(rec.of("$connect")) == 1

    run(scenario())


def test_connections_calls_are_authorized_per_method() -> None:
    # What CDK's grantManagementApiAccess gives: POST only (aws/aws-cdk#18410).
    poster = role_key(
        allow("execute-api:Invoke", f"{ARN}/$connect"),
        allow("execute-api:ManageConnections", f"{ARN}/POST/@connections/*"),
    )

    async def scenario() -> None:
        rec = Recorder()
        async with gateway(rec, credentials=CREDENTIALS, access_keys=[poster]) as gw:
            client = client_of(gw, poster)
            async with ws_connect(signed_url(gw.ws_url)) as ws:
                connection_id = await connected(rec, ws)
                await asyncio.to_thread(
                    client.post_to_connection, ConnectionId=connection_id, Data=b"hi"
                )
                assert await ws.recv() == "hi"
                for method, call in (
                    ("GET", client.get_connection),
                    ("DELETE", client.delete_connection),
                ):
                    with pytest.raises(ClientError) as raised:
                        await asyncio.to_thread(call, ConnectionId=connection_id)
                    error = raised.value.response
                    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
                    assert error["Error"]["Code"] == "AccessDeniedException"
                    assert error["Error"]["Message"] == (
                        f"User: {poster.principal.arn} is not authorized to perform: "
                        "execute-api:ManageConnections on resource: "
                        f"{ARN}/{method}/@connections/{{connectionId}} "
                        "because no identity-based policy allows it"
                    )
                # the developer's key (execute-api:*) may do it all
                info = await asyncio.to_thread(
                    management(gw).get_connection, ConnectionId=connection_id
                )
                assert info["ResponseMetadata"]["HTTPStatusCode"] == 200


# ---------------------------------------------------------------- a silently dead network path


async def nothing_arrives(ws: ClientConnection, within: float = 0.3) -> bool:
    """True when the client receives nothing (not even a close) for ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            await ws.recv()
    except TimeoutError:
        return True
    return False


def test_a_dropped_flow_delivers_nothing_either_way_and_tells_no_one() -> None:
    async def scenario() -> None:
        rec = Recorder()
        limits = GatewayLimits(idle_timeout=0.5)
        async with gateway(rec, limits=limits) as gw:
            client = management(gw)
            async with ws_connect(gw.ws_url, close_timeout=0.1) as ws:
                connection_id = await connected(rec, ws)
                await ws.send("before")
                assert await ws.recv() == "$default:before"
                gw.drop_flow(connection_id)
                await ws.send("after")  # lost on the way in
                # API Gateway still has the connection: a POST succeeds, and is lost.
                await asyncio.to_thread(
                    client.post_to_connection, ConnectionId=connection_id, Data=b"lost"
                )
                assert await nothing_arrives(ws)
                # The gateway's idle timeout ends its side; the close frame is lost too.
                event = (await rec.wait_for("$disconnect"))[0]["requestContext"]
                assert event["disconnectStatusCode"] == 1001
                assert await nothing_arrives(ws, 0.5)
                assert ws.state.name == "OPEN"
                assert [e["body"] for e in rec.of("$default")] == ["before"]
                with pytest.raises(client.exceptions.GoneException):
                    await asyncio.to_thread(client.get_connection, ConnectionId=connection_id)
            async with ws_connect(gw.ws_url) as ws:  # a new flow works
                await ws.send("again")
                assert await ws.recv() == "$default:again"

    run(scenario())


def test_an_explicit_deny_wins_over_an_allow() -> None:
    denied = role_key(
        allow("execute-api:*", "*"),
        {"Statement": [{"Effect": "Deny", "Action": "execute-api:ManageConnections",
                        "NotResource": f"{ARN}/GET/*"}]},
    )  # fmt: skip

    async def scenario() -> None:
        rec = Recorder()
        async with gateway(rec, access_keys=[denied]) as gw:
            client = client_of(gw, denied)
            async with ws_connect(presigned_by(denied, gw.ws_url)) as ws:
                connection_id = await connected(rec, ws)
                await asyncio.to_thread(client.get_connection, ConnectionId=connection_id)
                with pytest.raises(ClientError, match="with an explicit deny"):
                    await asyncio.to_thread(
                        client.post_to_connection, ConnectionId=connection_id, Data=b"x"
                    )


def test_a_flow_idle_past_the_nat_timeout_is_forgotten() -> None:
    async def scenario() -> None:
        rec = Recorder()
        gw = gateway(rec, limits=GatewayLimits(flow_idle_timeout=0.3))
        async with gw, ws_connect(gw.ws_url, close_timeout=0.1) as ws:
            await ws.send("a")
            assert await ws.recv() == "$default:a"
            await asyncio.sleep(0.4)  # the subject of the test: the flow idles out
            await ws.send("b")
            assert await nothing_arrives(ws)
            assert [e["body"] for e in rec.of("$default")] == ["a"]

    run(scenario())


def test_a_connect_url_that_does_not_sign_the_host_is_refused() -> None:
    class HostlessQueryAuth(SigV4QueryAuth):
        def headers_to_sign(self, request: AWSRequest) -> Any:
            signed = super().headers_to_sign(request)
            del signed["host"]
            return signed

    async def scenario() -> None:
        rec = Recorder()
        async with gateway(rec, credentials=CREDENTIALS) as gw:
            request = AWSRequest(method="GET", url=gw.ws_url, headers={"Origin": "http://x"})
            auth = HostlessQueryAuth(Credentials(KEY, SECRET), "execute-api", "us-east-1", 60)
            auth.add_auth(request)
            assert "X-Amz-SignedHeaders=origin" in str(request.url)
            with pytest.raises(InvalidStatus) as raised:
                async with ws_connect(str(request.url), origin="http://x"):  # type: ignore[arg-type]
                    pass
            assert raised.value.response.status_code == 403
        assert not rec.of("$connect")

    run(scenario())
