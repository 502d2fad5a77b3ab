import json
from types import SimpleNamespace

import pytest

from pylive import db


@pytest.fixture(autouse=True)
def local_database(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'test.db'}")
    monkeypatch.delenv("PYLIVE_DB_HOST", raising=False)
    db.reset()
    import functions.schema as schema

    schema._ready = False
    yield
    db.reset()


def call(handler, body=None):
    from functions import items

    event = {"body": body} if body is not None else {}
    return getattr(items, handler)(event, SimpleNamespace(aws_request_id="test"))


def test_create_then_list():
    created = call("create_item", json.dumps({"name": "pen"}))
    assert created["statusCode"] == 201
    assert json.loads(created["body"])["name"] == "pen"
    assert call("list_items") == {"items": [{"id": 1, "name": "pen"}]}


@pytest.mark.parametrize("body", ["not json", "[]", '{"name": 3}', '{"name": ""}'])
def test_invalid_bodies_are_400(body):
    response = call("create_item", body)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["message"]
