"""GET / — edit this file while `pylive dev --local` runs: the next request runs the new code."""

import json


def handler(event, context):
    params = event.get("queryStringParameters") or {}
    name = params.get("name", "world")
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"message": f"Hello, {name}!", "requestId": context.aws_request_id}),
    }
