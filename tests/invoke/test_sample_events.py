"""`pylive invoke --event sqs|s3|...`: sample events have the shape of AWS's documented ones.

The expected keys are those of the sample events in AWS's documentation (URLs in
pylive.invoke.sample_events); a field renamed or left out fails here."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pylive.emulator.http_events import build_event
from pylive.invoke.sample_events import SOURCES, sample_event

# Keys of each documented sample, top level and of the first record.
DOCUMENTED: dict[str, tuple[set[str], set[str]]] = {
    "sqs": (
        {"Records"},
        {
            "messageId", "receiptHandle", "body", "attributes", "messageAttributes",
            "md5OfBody", "eventSource", "eventSourceARN", "awsRegion",
        },
    ),
    "s3": (
        {"Records"},
        {
            "eventVersion", "eventSource", "awsRegion", "eventTime", "eventName",
            "userIdentity", "requestParameters", "responseElements", "s3",
        },
    ),
    "dynamodb": (
        {"Records"},
        {
            "eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb",
            "eventSourceARN",
        },
    ),
}  # fmt: skip
ENVELOPE = {"version", "id", "detail-type", "source", "account", "time", "region", "resources",
            "detail"}  # fmt: skip


@pytest.mark.parametrize("source", SOURCES)
def test_each_sample_is_json_and_fresh(source: str) -> None:
    first, second = sample_event(source, "eu-west-1"), sample_event(source, "eu-west-1")
    assert json.loads(json.dumps(first)) == first
    assert "eu-west-1" in json.dumps(first) or source == "http"
    assert first != second or (source == "schedule" and first["id"] != second["id"])


@pytest.mark.parametrize("source", sorted(DOCUMENTED))
def test_record_events_have_the_documented_keys(source: str) -> None:
    top, record = DOCUMENTED[source]
    event = sample_event(source)
    assert set(event) == top
    assert set(event["Records"][0]) == record
    assert event["Records"][0]["eventSource"] == f"aws:{source}"


def test_sqs_md5_matches_the_body() -> None:
    import hashlib

    record = sample_event("sqs")["Records"][0]
    assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
    assert set(record["attributes"]) == {
        "ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"
    }  # fmt: skip


def test_s3_object_and_bucket() -> None:
    s3: dict[str, Any] = sample_event("s3")["Records"][0]["s3"]
    assert set(s3) == {"s3SchemaVersion", "configurationId", "bucket", "object"}
    assert set(s3["bucket"]) == {"name", "ownerIdentity", "arn"}
    assert {"key", "size", "eTag", "sequencer"} <= set(s3["object"])


@pytest.mark.parametrize("source", ["eventbridge", "schedule"])
def test_eventbridge_envelope(source: str) -> None:
    event = sample_event(source)
    assert set(event) == ENVELOPE
    assert event["version"] == "0" and len(event["account"]) == 12
    if source == "schedule":
        assert (event["source"], event["detail-type"]) == ("aws.events", "Scheduled Event")
        assert event["resources"][0].startswith("arn:aws:events:")


def test_http_is_what_the_local_http_api_sends() -> None:
    event = sample_event("http")
    reference = build_event(
        method="GET", raw_path="/", raw_query=b"", headers=[], body=b"", route_key="GET /",
        path_parameters={}, source_ip="127.0.0.1", api_id="local", domain_name="x",
        request_id="r", time_epoch_ms=0,
    )  # fmt: skip
    assert set(event) == set(reference)
    assert event["version"] == "2.0" and event["routeKey"] == "GET /"


@pytest.mark.parametrize(
    ("source", "model"),
    [
        ("sqs", "SqsModel"),
        ("s3", "S3Model"),
        ("eventbridge", "EventBridgeModel"),
        ("schedule", "EventBridgeModel"),
        ("dynamodb", "DynamoDBStreamModel"),
        ("http", "APIGatewayProxyEventV2Model"),
    ],
)
def test_aws_own_event_models_accept_each_sample(source: str, model: str) -> None:
    """An independent oracle: Powertools for AWS Lambda's parser models of these events."""
    from aws_lambda_powertools.utilities.parser import models

    getattr(models, model).model_validate(sample_event(source))
