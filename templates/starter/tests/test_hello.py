import json
from types import SimpleNamespace

from functions.hello import handler


def test_hello_greets_by_name():
    event = {"queryStringParameters": {"name": "Ada"}}
    context = SimpleNamespace(aws_request_id="test-request")
    response = handler(event, context)
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"message": "Hello, Ada!", "requestId": "test-request"}


def test_hello_defaults_to_world():
    response = handler({}, SimpleNamespace(aws_request_id="r"))
    assert json.loads(response["body"])["message"] == "Hello, world!"
