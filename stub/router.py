"""The debug stack's router: the Lambda behind the WebSocket API's $connect, $disconnect and
$default routes. It keeps connection state in DynamoDB; it never carries invocations.

Runs on the plain Lambda Python runtime (boto3 is part of it).

Connections say who they are in the $connect query string: ``?role=runner&app=A&stage=S``
for the developer's runner, ``?role=stub&app=A&stage=S`` for a deployed stub. A newer runner
replaces an older one for the same app and stage.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import boto3

TABLE = os.environ.get("PYLIVE_TABLE", "")
CONNECTION_TTL_S = 3 * 60 * 60  # API Gateway closes connections after 2 h

_dynamodb = None


def _table() -> Any:
    global _dynamodb
    if _dynamodb is None:
        _dynamodb = boto3.resource("dynamodb").Table(TABLE)
    return _dynamodb


def _runner_key(app: str, stage: str) -> str:
    return f"runner#{app}#{stage}"


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = event["requestContext"]
    route = request["routeKey"]
    connection_id = request["connectionId"]
    if route == "$connect":
        return _connect(connection_id, event.get("queryStringParameters") or {})
    if route == "$disconnect":
        return _disconnect(connection_id)
    return _message(connection_id, event.get("body") or "")


def _connect(connection_id: str, query: dict[str, str]) -> dict[str, Any]:
    role, app, stage = query.get("role"), query.get("app"), query.get("stage")
    if role not in ("runner", "stub") or not app or not stage:
        return {"statusCode": 400, "body": "expected ?role=runner|stub&app=APP&stage=STAGE"}
    expires = int(time.time()) + CONNECTION_TTL_S
    item = {"pk": f"conn#{connection_id}", "role": role, "app": app, "stage": stage}
    _table().put_item(Item={**item, "expires_at": expires})
    if role == "runner":
        _table().put_item(
            Item={
                "pk": _runner_key(app, stage),
                "connection_id": connection_id,
                "expires_at": expires,
            }
        )
    return {"statusCode": 200}


def _disconnect(connection_id: str) -> dict[str, Any]:
    found = _table().get_item(Key={"pk": f"conn#{connection_id}"}).get("Item")
    _table().delete_item(Key={"pk": f"conn#{connection_id}"})
    if found and found.get("role") == "runner":
        key = _runner_key(found["app"], found["stage"])
        current = _table().get_item(Key={"pk": key}).get("Item")
        if current and current.get("connection_id") == connection_id:
            _table().delete_item(Key={"pk": key})
    return {"statusCode": 200}


def _message(connection_id: str, body: str) -> dict[str, Any]:
    """``whoami``: a stub learns its own connection id and its runner's, in one round trip."""
    found = _table().get_item(Key={"pk": f"conn#{connection_id}"}).get("Item") or {}
    runner = None
    if found:
        item = _table().get_item(Key={"pk": _runner_key(found["app"], found["stage"])}).get("Item")
        runner = item.get("connection_id") if item else None
    reply: dict[str, Any] = {"type": "whoami", "connection_id": connection_id, "runner": runner}
    if found and runner is None:
        reply["error"] = (
            f"no runner is connected for app {found['app']!r} stage {found['stage']!r}: "
            f"run `pylive dev --stage {found['stage']}`"
        )
    return {"statusCode": 200, "body": json.dumps(reply)}
