"""Who signs requests to the local cloud: IAM principals, their access keys and their policies.

API Gateway authorizes an ``AWS_IAM`` route and every @connections call against the
identity-based policies of the principal whose key signed the request
(https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-control-access-iam.html),
and tells the integration who that was in ``requestContext.identity`` (``accountId``,
``caller``, ``user``, ``userArn``, ``accessKey``;
https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-mapping-template-reference.html).
A :class:`Principal` holds what that needs; an :class:`AccessKey` is one signing key of it.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pylive.emulator.iam_policy import Decision, evaluate

DECISIONS_KEPT = 1024  # per principal
LOCAL_ACCOUNT = "123456789012"  # the account of the local cloud (the Lambda host's too)

# What a developer who deploys the app may do with its WebSocket API (AdministratorAccess
# allows it all; this is the part the local cloud looks at).
DEVELOPER_POLICY: Mapping[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "execute-api:*", "Resource": "*"}],
}


@dataclass(frozen=True)
class Principal:
    """An IAM user or a role session: its ARN as AWS reports it, its unique id, and the
    identity-based policies that apply to it (documents as IAM stores them)."""

    arn: str  # arn:aws:iam::ACCT:user/NAME or arn:aws:sts::ACCT:assumed-role/ROLE/SESSION
    user_id: str  # AIDA... for a user; AROA...:SESSION for a role session
    policies: tuple[Mapping[str, Any], ...] = ()
    # A decision depends only on the policies (fixed for a principal: new policies make a new
    # Principal) and on what authorize() is given, so each is evaluated once. A warm relay
    # asks the same two questions on every invocation.
    _decisions: dict[tuple[str, str, str], Decision] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    @property
    def account(self) -> str:
        return self.arn.split(":")[4]

    @property
    def role_arn(self) -> str | None:
        """The role a role session belongs to (``aws:PrincipalArn`` of the session)."""
        resource = self.arn.split(":", 5)[5]
        kind, _, rest = resource.partition("/")
        if kind != "assumed-role":
            return None
        return f"arn:aws:iam::{self.account}:role/{rest.split('/')[0]}"

    def identity(self, access_key_id: str) -> dict[str, str]:
        """The IAM fields of ``requestContext.identity`` for a request it signed."""
        return {
            "accountId": self.account,
            "caller": self.user_id,
            "user": self.user_id,
            "userArn": self.arn,
            "accessKey": access_key_id,
        }

    def context(self, source_ip: str) -> dict[str, str]:
        """The global condition keys the local cloud knows for its requests.

        https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html
        """
        keys = {
            "aws:PrincipalArn": self.role_arn or self.arn,
            "aws:PrincipalAccount": self.account,
            "aws:PrincipalType": "AssumedRole" if self.role_arn else "User",
            "aws:userid": self.user_id,
            "aws:SourceIp": source_ip,
            "aws:SecureTransport": "true",  # API Gateway's endpoints are HTTPS only
        }
        if self.role_arn is None:
            keys["aws:username"] = self.arn.rsplit("/", 1)[-1]
        return keys

    def authorize(self, action: str, resource: str, source_ip: str) -> Decision:
        key = (action, resource, source_ip)
        decision = self._decisions.get(key)
        if decision is None:
            decision = evaluate(self.policies, action, resource, self.context(source_ip))
            if len(self._decisions) >= DECISIONS_KEPT:
                self._decisions.clear()  # connection ids come and go: start again
            self._decisions[key] = decision
        return decision


@dataclass(frozen=True)
class AccessKey:
    """One key of a principal; temporary keys (a role session's) carry a session token that
    every signed request must present."""

    access_key_id: str
    secret_access_key: str
    principal: Principal
    session_token: str | None = field(default=None, repr=False)


def denial_message(principal: Principal, action: str, resource: str, decision: Decision) -> str:
    """AWS's AccessDenied message (as botocore shows it), e.g. aws/aws-cdk#18410:
    ``User: arn:aws:sts::…:assumed-role/… is not authorized to perform:
    execute-api:ManageConnections on resource: arn:aws:execute-api:…``."""
    return (
        f"User: {principal.arn} is not authorized to perform: {action} on resource: "
        f"{resource} {decision.reason}"
    )


def _unique_id(prefix: str) -> str:
    alphabet = string.ascii_uppercase + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(17))


def user(
    name: str, policies: Sequence[Mapping[str, Any]], account: str = LOCAL_ACCOUNT
) -> Principal:
    return Principal(f"arn:aws:iam::{account}:user/{name}", _unique_id("AIDA"), tuple(policies))


def role_session(
    role_name: str,
    session_name: str,
    policies: Sequence[Mapping[str, Any]],
    account: str = LOCAL_ACCOUNT,
) -> Principal:
    """A session of role ``role_name``, as Lambda's is (the session is the function's name)."""
    return Principal(
        f"arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}",
        f"{_unique_id('AROA')}:{session_name}",
        tuple(policies),
    )


def developer(account: str = LOCAL_ACCOUNT) -> Principal:
    """The developer who runs ``pylive dev`` (and deployed the app)."""
    return user("developer", [DEVELOPER_POLICY], account)


def new_key(principal: Principal, *, temporary: bool = False) -> AccessKey:
    """A fresh key: ``AKIA…`` for a user, ``ASIA…`` with a session token for a session."""
    prefix = "ASIA" if temporary else "AKIA"
    key_id = prefix + secrets.token_hex(8).upper()
    token = secrets.token_urlsafe(48) if temporary else None
    return AccessKey(key_id, secrets.token_urlsafe(30), principal, token)
