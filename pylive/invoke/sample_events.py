"""Realistic sample events of the AWS services that invoke functions, for `pylive invoke
FUNCTION --event sqs` and friends. Each has the shape of AWS's documented sample event, with
fresh ids and times; edit a saved one (``--save``) to fit a handler.

- sqs: https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html
  ("Example standard queue message event")
- s3: https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html
  and https://docs.aws.amazon.com/lambda/latest/dg/with-s3.html
- eventbridge: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html
- schedule: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-run-lambda-schedule.html
  (a scheduled rule's event: source ``aws.events``, detail-type ``Scheduled Event``)
- dynamodb: https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html
- http: https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
  (payload format version 2.0, as pylive's HTTP API sends)
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

ACCOUNT = "123456789012"  # the documentation's example account

Event = dict[str, Any]


def _iso(epoch: float, *, millis: bool = False) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))
    return stamp + (f".{int(epoch % 1 * 1000):03d}Z" if millis else "Z")


def sqs(region: str) -> Event:
    now = int(time.time() * 1000)
    body = '{"orderId": "1001", "quantity": 2}'
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": base64.b64encode(os.urandom(48)).decode(),
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": str(now - 20),
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": str(now),
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{region}:{ACCOUNT}:my-queue",
                "awsRegion": region,
            }
        ]
    }


def s3(region: str) -> Event:
    bucket, key = "amzn-s3-demo-bucket", "uploads/HappyFace.jpg"
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": _iso(time.time(), millis=True),
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:AIDAINPONIXQXHT3IKHL2"},
                "requestParameters": {"sourceIPAddress": "205.255.255.255"},
                "responseElements": {
                    "x-amz-request-id": os.urandom(8).hex().upper(),
                    "x-amz-id-2": base64.b64encode(os.urandom(48)).decode(),
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "uploads-notification",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "A3I5XTEXAMAI3E"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": key,
                        "size": 1024,
                        "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                        "sequencer": os.urandom(9).hex().upper(),
                    },
                },
            }
        ]
    }


def _eventbridge_event(
    region: str, detail_type: str, source: str, resources: list[str], detail: Event
) -> Event:
    """The envelope EventBridge wraps every event in (a schedule's too)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": _iso(time.time()),
        "region": region,
        "resources": resources,
        "detail": detail,
    }


def eventbridge(region: str) -> Event:
    detail = {"orderId": "1001", "customerId": "c-42", "total": 25.5}
    return _eventbridge_event(region, "Order Placed", "com.example.orders", [], detail)


def schedule(region: str) -> Event:
    rule = f"arn:aws:events:{region}:{ACCOUNT}:rule/my-schedule"
    return _eventbridge_event(region, "Scheduled Event", "aws.events", [rule], {})


def dynamodb(region: str) -> Event:
    stream = f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/items/stream/" + _iso(
        time.time(), millis=True
    ).rstrip("Z")
    return {
        "Records": [
            {
                "eventID": uuid.uuid4().hex,
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": region,
                "dynamodb": {
                    "ApproximateCreationDateTime": int(time.time()),
                    "Keys": {"Id": {"N": "101"}},
                    "NewImage": {"Message": {"S": "New item!"}, "Id": {"N": "101"}},
                    "SequenceNumber": str(int(time.time() * 1e6)),
                    "SizeBytes": 26,
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
                "eventSourceARN": stream,
            }
        ]
    }


def http(region: str) -> Event:
    """``GET /``, as pylive's local HTTP API builds it (pylive.emulator.http_events)."""
    from pylive.emulator.http_events import build_event

    return build_event(
        method="GET",
        raw_path="/",
        raw_query=b"",
        headers=[(b"host", b"127.0.0.1:3000"), (b"user-agent", b"pylive-invoke")],
        body=b"",
        route_key="GET /",
        path_parameters={},
        source_ip="127.0.0.1",
        stage="$default",
        api_id="local",
        domain_name="127.0.0.1:3000",
        request_id=base64.b64encode(os.urandom(10)).decode(),
        time_epoch_ms=int(time.time() * 1000),
    )


BUILDERS: dict[str, Callable[[str], Event]] = {
    "sqs": sqs,
    "s3": s3,
    "eventbridge": eventbridge,
    "schedule": schedule,
    "dynamodb": dynamodb,
    "http": http,
}
SOURCES = tuple(BUILDERS)


def sample_event(source: str, region: str = "us-east-1") -> Event:
    """A fresh sample event of ``source`` (one of :data:`SOURCES`)."""
    return BUILDERS[source](region)
