"""GET /items lists items; POST /items with {"name": "..."} creates one."""

import json

import sqlalchemy

from functions.schema import ensure_local_schema, items
from pylive import db

MAX_NAME = 200


def list_items(event, context):
    ensure_local_schema()
    with db.engine().connect() as conn:
        rows = conn.execute(sqlalchemy.select(items.c.id, items.c.name).order_by(items.c.id))
        return {"items": [{"id": row.id, "name": row.name} for row in rows]}


def create_item(event, context):
    ensure_local_schema()
    try:
        name = _name_from(event)
    except ValueError as problem:
        return _json(400, {"message": str(problem)})
    with db.engine().begin() as conn:
        result = conn.execute(sqlalchemy.insert(items).values(name=name))
        item_id = result.inserted_primary_key[0]
    return _json(201, {"id": item_id, "name": name})


def _name_from(event):
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        import base64

        body = base64.b64decode(body).decode("utf-8", "replace")
    try:
        data = json.loads(body)
    except ValueError:
        raise ValueError('the body must be JSON such as {"name": "pen"}') from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ValueError('the body must be a JSON object with a string "name"')
    name = data["name"].strip()
    if not name or len(name) > MAX_NAME:
        raise ValueError(f'"name" must hold 1 to {MAX_NAME} characters')
    return name


def _json(status, body):
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body),
    }
