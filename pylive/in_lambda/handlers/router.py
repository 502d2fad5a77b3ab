"""The debug stack's router: the Lambda behind the WebSocket API's $connect, $disconnect and
$default routes. It keeps connection state in DynamoDB; it never carries invocations.

Runs on the plain Lambda Python runtime (boto3 is part of it), python3.9 or newer. What it
sends is defined in ``pylive.in_lambda.protocol``, which its bundle carries
(``pylive.cdk.bundle.bundle_router``), as the stub's does.

Every read is strongly consistent: each one follows the write it depends on by moments (a
stub's ``whoami`` right after its ``$connect``, a ``$disconnect`` right after a newer runner
registered), and DynamoDB's default, eventually consistent read "may not reflect the results
of a recently completed write operation"
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html).

Connections say who they are in the $connect query string: ``?role=runner&app=A&stage=S``
for the developer's runner, ``?role=stub&app=A&stage=S`` for a deployed stub. A newer runner
replaces an older one for the same app and stage, and the older one is told why (a
``replaced`` message through @connections, so it can exit cleanly).

Only the developer may be the runner: every stub's role may open a connection ($connect is
IAM-authorized for all of them), so the router checks who signed a runner's $connect, which
API Gateway passes in ``requestContext.identity.userArn``
(https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-mapping-template-reference.html),
against ``PYLIVE_RUNNER_PRINCIPALS``: the comma-separated ARNs the DebugStack was given, by
default the identity that deployed it. An IAM user matches its own ARN; a role session
(``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION``, e.g. an SSO login) matches any session
of the same role, or the role's own ARN. Anyone else is refused with 403 and the reason.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from pylive.in_lambda import protocol

# The process environment; a local host gives each container its own mapping.
environ: Mapping[str, str] = os.environ
TABLE = os.environ.get("PYLIVE_TABLE", "")
CONNECTION_TTL_S = 3 * 60 * 60  # API Gateway closes connections after 2 h

_dynamodb = None
_management: dict[str, Any] = {}


def _table() -> Any:
    global _dynamodb
    if _dynamodb is None:
        _dynamodb = boto3.resource("dynamodb").Table(TABLE)
    return _dynamodb


def _runner_key(app: str, stage: str) -> str:
    return f"runner#{app}#{stage}"


def _get(pk: str) -> dict[str, Any] | None:
    """The item ``pk`` as the last write left it (a strongly consistent read)."""
    item: dict[str, Any] | None = _table().get_item(Key={"pk": pk}, ConsistentRead=True).get("Item")
    return item


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = event["requestContext"]
    route = request["routeKey"]
    connection_id = request["connectionId"]
    if route == "$connect":
        return _connect(connection_id, event.get("queryStringParameters") or {}, request)
    if route == "$disconnect":
        return _disconnect(connection_id)
    return _message(connection_id, event.get("body") or "")


def _connect(connection_id: str, query: dict[str, str], request: dict[str, Any]) -> dict[str, Any]:
    role, app, stage = query.get("role"), query.get("app"), query.get("stage")
    if role not in ("runner", "stub") or not app or not stage:
        return {"statusCode": 400, "body": "expected ?role=runner|stub&app=APP&stage=STAGE"}
    if role == "runner":
        refusal = _runner_refusal(request.get("identity") or {}, app, stage)
        if refusal is not None:
            print(f"refused a runner connection: {refusal}")
            return {"statusCode": 403, "body": refusal}
    expires = int(time.time()) + CONNECTION_TTL_S
    item = {"pk": f"conn#{connection_id}", "role": role, "app": app, "stage": stage}
    _table().put_item(Item={**item, "expires_at": expires})
    if role == "runner":
        key = _runner_key(app, stage)
        older = _get(key)
        _table().put_item(
            Item={
                "pk": _runner_key(app, stage),
                "connection_id": connection_id,
                "expires_at": expires,
            }
        )
        if older and older.get("connection_id") not in (None, connection_id):
            _tell_replaced(request, str(older["connection_id"]), app, stage)
    return {"statusCode": 200}


def _runner_refusal(identity: dict[str, Any], app: str, stage: str) -> str | None:
    """Why the caller may not be the runner of ``app``/``stage``, or None if it may."""
    allowed = [a.strip() for a in environ.get("PYLIVE_RUNNER_PRINCIPALS", "").split(",")]
    allowed = [a for a in allowed if a]
    caller = identity.get("userArn")
    if not caller:
        return "the $connect request carries no caller identity (the route must use IAM auth)"
    if not allowed:
        return (
            f"the debug stack of app {app!r} stage {stage!r} names nobody who may run "
            "`pylive dev`; deploy it again with `pylive dev`"
        )
    if any(_principal(caller) == _principal(a) for a in allowed):
        return None
    return (
        f"{caller} may not connect as the runner of app {app!r} stage {stage!r}: only "
        f"{', '.join(allowed)} may (who deployed its debug stack); a function's role never may"
    )


def _principal(arn: str) -> str:
    """What an ARN is compared by: a role session by its role, anything else as it is."""
    parts = arn.split(":", 5)
    if len(parts) != 6:
        return arn
    _, partition, service, _, account, resource = parts
    if service == "sts" and resource.startswith("assumed-role/"):
        return f"arn:{partition}:iam::{account}:role/{resource.split('/')[1]}"
    if service == "iam" and resource.startswith("role/"):  # a session's ARN has no role path
        return f"arn:{partition}:iam::{account}:role/{resource.rsplit('/', 1)[1]}"
    return arn


def _callback_url(request: dict[str, Any]) -> str:
    """The @connections endpoint of this API: ``https://{domainName}/{stage}``."""
    configured = environ.get("PYLIVE_CALLBACK_URL")
    if configured:
        return configured
    domain, stage = request.get("domainName"), request.get("stage")
    return f"https://{domain}/{stage}" if domain and stage else ""


def _tell_replaced(request: dict[str, Any], older: str, app: str, stage: str) -> None:
    """Best effort: the older runner learns why it no longer gets invocations."""
    url = _callback_url(request)
    if not url:
        print(f"cannot tell runner {older} it was replaced: no callback URL in the event")
        return
    client = _management.get(url)
    if client is None:
        client = _management[url] = boto3.client(
            "apigatewaymanagementapi",
            endpoint_url=url,
            region_name=environ.get("AWS_REGION") or None,
            aws_access_key_id=environ.get("AWS_ACCESS_KEY_ID") or None,
            aws_secret_access_key=environ.get("AWS_SECRET_ACCESS_KEY") or None,
            aws_session_token=environ.get("AWS_SESSION_TOKEN") or None,
            config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5),
        )
    message = protocol.Replaced(
        app=app,
        stage=stage,
        reason=f"another `pylive dev` connected for app {app!r} stage {stage!r}",
    )
    try:
        client.post_to_connection(ConnectionId=older, Data=protocol.encode(message).encode())
    except (ClientError, BotoCoreError) as exc:
        print(f"could not tell runner {older} it was replaced: {exc}")


def _disconnect(connection_id: str) -> dict[str, Any]:
    found = _get(f"conn#{connection_id}")
    _table().delete_item(Key={"pk": f"conn#{connection_id}"})
    if found and found.get("role") == "runner":
        key = _runner_key(found["app"], found["stage"])
        current = _get(key)
        if current and current.get("connection_id") == connection_id:
            _table().delete_item(Key={"pk": key})
    return {"statusCode": 200}


def _message(connection_id: str, body: str) -> dict[str, Any]:
    """``whoami``: a stub learns its own connection id and its runner's, in one round trip.
    ``ping`` (a runner keeping its idle connection alive) is answered with ``pong``.
    Anything else is taken for ``whoami``, as stubs before ``v`` sent it without one."""
    ping = _ping(body)
    if ping is not None:
        return _reply(protocol.Pong(id=ping.id))
    found = _get(f"conn#{connection_id}") or {}
    runner = None
    if found:
        item = _get(_runner_key(found["app"], found["stage"]))
        runner = item.get("connection_id") if item else None
    error = None
    if found and runner is None:
        error = (
            f"no runner is connected for app {found['app']!r} stage {found['stage']!r}: "
            f"run `pylive dev --stage {found['stage']}`"
        )
    return _reply(protocol.WhoAmI(connection_id=connection_id, runner=runner, error=error))


def _reply(message: protocol.Message) -> dict[str, Any]:
    """The route's response: API Gateway sends its body to the caller's connection."""
    return {"statusCode": 200, "body": protocol.encode(message)}


def _ping(body: str) -> protocol.Ping | None:
    if f'"{protocol.Ping.TYPE}"' not in body:
        return None
    try:
        message = protocol.decode(body)
    except protocol.ProtocolError:
        return None
    return message if isinstance(message, protocol.Ping) else None
