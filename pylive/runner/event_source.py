"""Where an event comes from, read from its shape: the AWS service (``sqs``, ``s3``, ...) or
the HTTP API route, for the invocation record's ``source`` (the console and the terminal show
it for every invocation)."""

from __future__ import annotations

from typing import Any

_HTTP_HEAD = b'{"version":"2.0","routeKey":"'


def http_head(event: bytes) -> tuple[str, str, str] | None:
    """Method, raw path and route key from the start of an event as pylive's HTTP API
    serializes it (``{"version":"2.0","routeKey":"GET /x","rawPath":"/x",...``); None for
    anything else (or anything escaped), which is then decoded whole."""
    if not event.startswith(_HTTP_HEAD):
        return None
    start = len(_HTTP_HEAD)
    end = event.find(b'"', start)
    after = b'","rawPath":"'
    if end < 0 or not event.startswith(after, end):
        return None
    path_end = event.find(b'"', end + len(after))
    key, path = event[start:end], event[end + len(after) : path_end]
    if path_end < 0 or b"\\" in key or b"\\" in path or b" " not in key or key[:4] == b"ANY ":
        return None
    return key.split(b" ", 1)[0].decode(), path.decode(), key.decode()


def http_source(method: str, path: str, route_key: str) -> str:
    """The source of an HTTP API request: ``http GET /items/{id}`` for a route, the method
    and path (``http GET /x``) for ``$default``."""
    if route_key != "$default":
        return f"http {route_key}"
    return f"http {method} {path}".rstrip()


def infer_source(event: Any) -> str:
    """Which AWS service an event comes from, by its shape: ``http GET /items/{id}``,
    ``sqs``, ``s3``, ``eventbridge``, ``schedule``, ``dynamodb``, ``sns``, else ``direct``.

    The shapes are those of AWS's documented sample events (see pylive.invoke.sample_events)."""
    if not isinstance(event, dict):
        return "direct"
    context = event.get("requestContext")
    if isinstance(context, dict):
        http = context.get("http")
        if isinstance(http, dict):  # HTTP API, payload format 2.0
            key = event.get("routeKey")
            route_key = key if isinstance(key, str) else "$default"
            return http_source(str(http.get("method", "")), str(http.get("path", "")), route_key)
        if "httpMethod" in event:  # REST API or payload format 1.0
            return f"http {event.get('httpMethod')} {event.get('path', '')}".rstrip()
        if "connectionId" in context:
            return f"websocket {context.get('routeKey', '')}".rstrip()
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        first = records[0]
        name = first.get("eventSource") or first.get("EventSource") or ""
        known = {"aws:sqs": "sqs", "aws:s3": "s3", "aws:dynamodb": "dynamodb", "aws:sns": "sns"}
        if name in known:
            return known[name]
        if isinstance(name, str) and name.startswith("aws:"):
            return name[4:]
    if "detail-type" in event and "source" in event:
        if event.get("detail-type") == "Scheduled Event" and event.get("source") == "aws.events":
            return "schedule"
        return "eventbridge"
    return "direct"
