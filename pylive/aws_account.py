"""The AWS account and region a deploy goes to, from the usual credential chain (environment,
``AWS_PROFILE``, SSO, instance roles...). ``AWS_ENDPOINT_URL`` (honoured by boto3 and by the
CDK toolkit alike) points every AWS call at another endpoint, such as a local emulator."""

from __future__ import annotations

import importlib
import os
import time
from dataclasses import dataclass
from typing import Any

from pylive.errors import PyliveError


def bootstrap_version_parameter(qualifier: str) -> str:
    """The SSM parameter the CDK bootstrap stack with ``qualifier`` publishes its version in."""
    return f"/cdk-bootstrap/{qualifier}/version"


_TIMEOUTS = {"connect_timeout": 10, "read_timeout": 30, "retries": {"max_attempts": 2}}


class CredentialsError(PyliveError):
    """No usable AWS credentials."""

    exit_code = 6


@dataclass(frozen=True)
class AwsTarget:
    account: str
    region: str
    endpoint_url: str | None
    caller_arn: str = ""  # who the credentials are (sts get-caller-identity's Arn)

    @property
    def environment(self) -> str:
        return f"aws://{self.account}/{self.region}"

    def describe(self) -> str:
        via = f" via {self.endpoint_url}" if self.endpoint_url else ""
        return f"account {self.account}, region {self.region}{via}"


def checked_session(region: str) -> Any:
    """A boto3 session for ``region`` that has credentials, else a one-line
    :class:`CredentialsError` saying how to provide them."""
    boto3, botocore = _boto()
    session = boto3.Session(region_name=region)
    try:
        credentials = session.get_credentials()
    except botocore.exceptions.BotoCoreError as exc:
        raise CredentialsError(f"cannot load AWS credentials: {exc}") from None
    if credentials is None:
        raise CredentialsError(
            "no AWS credentials found: set AWS_PROFILE (after `aws configure` or "
            "`aws sso login`), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    return session


def resolve_target(region: str) -> AwsTarget:
    """The account of the current credentials (one STS call); a :class:`CredentialsError` with
    a one-line explanation when there are none or they are rejected."""
    _, botocore = _boto()
    session = checked_session(region)
    sts = session.client("sts", config=botocore.config.Config(**_TIMEOUTS))
    try:
        identity: dict[str, Any] = sts.get_caller_identity()
    except botocore.exceptions.ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", str(exc))
        raise CredentialsError(f"AWS rejected the credentials: {message}") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise CredentialsError(f"cannot reach AWS to check the credentials: {exc}") from None
    return AwsTarget(
        account=str(identity["Account"]),
        region=region,
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
        caller_arn=str(identity.get("Arn", "")),
    )


def is_bootstrapped(target: AwsTarget, qualifier: str) -> bool | None:
    """Whether the CDK bootstrap stack exists in the target (its version parameter is
    readable); None when that cannot be told (no permission...), so the deploy decides."""
    _, botocore = _boto()
    ssm = _client(target, "ssm")
    try:
        ssm.get_parameter(Name=bootstrap_version_parameter(qualifier))
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
            return False
        return None
    except botocore.exceptions.BotoCoreError:
        return None
    return True


def _client(target: AwsTarget, service: str) -> Any:
    """A boto3 client for ``service`` in the target's region, with pylive's timeouts."""
    boto3, botocore = _boto()
    return boto3.Session(region_name=target.region).client(
        service, config=botocore.config.Config(**_TIMEOUTS)
    )


def _boto() -> tuple[Any, Any]:
    """boto3 and botocore (with its config and exceptions modules), imported on first use."""
    for name in ("botocore.config", "botocore.exceptions"):
        importlib.import_module(name)
    return importlib.import_module("boto3"), importlib.import_module("botocore")


def existing_stacks(target: AwsTarget, names: list[str]) -> set[str]:
    """Which of the CloudFormation stacks ``names`` exist in the target."""
    _, botocore = _boto()
    cloudformation = _client(target, "cloudformation")
    found: set[str] = set()
    for name in names:
        try:
            stacks = cloudformation.describe_stacks(StackName=name).get("Stacks", [])
        except botocore.exceptions.ClientError as exc:
            if "does not exist" in str(exc):
                continue
            raise CredentialsError(f"cannot look up stack {name}: {exc}") from None
        if any(s.get("StackStatus") != "DELETE_COMPLETE" for s in stacks):
            found.add(name)
    return found


def tagged_stacks(target: AwsTarget, app: str, stage: str) -> list[str]:
    """The live stacks tagged as stage ``stage`` of app ``app`` (pylive tags every stack it
    deploys), newest first: the order that deletes dependents before what they depend on."""
    _, botocore = _boto()
    cloudformation = _client(target, "cloudformation")
    found: list[tuple[Any, str]] = []
    try:
        for page in cloudformation.get_paginator("describe_stacks").paginate():
            for stack in page.get("Stacks", []):
                tags = {t.get("Key"): t.get("Value") for t in stack.get("Tags", [])}
                if (
                    tags.get("pylive:app") == app
                    and tags.get("pylive:stage") == stage
                    and stack.get("StackStatus") != "DELETE_COMPLETE"
                ):
                    found.append((stack["CreationTime"], stack["StackName"]))
    except botocore.exceptions.ClientError as exc:
        raise CredentialsError(f"cannot list the stacks: {exc}") from None
    return [name for _, name in sorted(found, reverse=True)]


def delete_stack(target: AwsTarget, name: str, *, poll: float = 2.0) -> str | None:
    """Delete stack ``name`` and wait for the end; None when it is gone, else CloudFormation's
    reason for failing."""
    cloudformation = _client(target, "cloudformation")
    stack_id = cloudformation.describe_stacks(StackName=name)["Stacks"][0]["StackId"]
    cloudformation.delete_stack(StackName=stack_id)
    while True:
        stack = cloudformation.describe_stacks(StackName=stack_id)["Stacks"][0]
        status = stack.get("StackStatus", "")
        if status == "DELETE_COMPLETE":
            return None
        if status.endswith("_FAILED"):
            return str(stack.get("StackStatusReason") or status)
        time.sleep(poll)
