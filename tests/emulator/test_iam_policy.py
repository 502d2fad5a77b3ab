"""The local cloud's IAM policy evaluator, held to the examples of AWS's own documentation."""

from __future__ import annotations

from typing import Any

import pytest

from pylive.emulator.iam_policy import evaluate

# https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-control-access-iam.html
# "allows everyone to send a message (Invoke) for all routes except for a secret route in the
# prod stage and prevents everyone from sending a message back to connected clients
# (ManageConnections) for all stages".
WEBSOCKET_EXAMPLE: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["execute-api:Invoke"],
            "Resource": ["arn:aws:execute-api:us-east-1:111122223333:api-id/prod/*"],
        },
        {
            "Effect": "Deny",
            "Action": ["execute-api:Invoke"],
            "Resource": ["arn:aws:execute-api:us-east-1:111122223333:api-id/prod/secret"],
        },
        {
            "Effect": "Deny",
            "Action": ["execute-api:ManageConnections"],
            "Resource": ["arn:aws:execute-api:us-east-1:111122223333:api-id/*"],
        },
    ],
}
API = "arn:aws:execute-api:us-east-1:111122223333:api-id"


@pytest.mark.parametrize(
    ("action", "resource", "allowed", "explicit"),
    [
        ("execute-api:Invoke", f"{API}/prod/$connect", True, False),
        ("execute-api:Invoke", f"{API}/prod/sendmessage", True, False),
        ("execute-api:Invoke", f"{API}/prod/secret", False, True),
        ("execute-api:Invoke", f"{API}/dev/$connect", False, False),
        ("execute-api:ManageConnections", f"{API}/prod/POST/@connections/abc=", False, True),
        ("EXECUTE-API:invoke", f"{API}/prod/$connect", True, False),  # actions ignore case
        ("execute-api:Invoke", f"{API.upper()}/prod/$connect", False, False),  # resources don't
    ],
)
def test_the_websocket_iam_example(action: str, resource: str, allowed: bool, explicit: bool):
    decision = evaluate([WEBSOCKET_EXAMPLE], action, resource)
    assert (decision.allowed, decision.explicit_deny) == (allowed, explicit)


# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_AccessPolicyLanguage_Interplay.html
INTERPLAY_EXAMPLE = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "AllowGetList", "Effect": "Allow", "Action": ["iam:Get*", "iam:List*"],
         "Resource": "*"},
        {"Sid": "DenyReports", "Effect": "Deny", "Action": "iam:*Report", "Resource": "*"},
    ],
}  # fmt: skip
# "If someone adds another policy to this principal to grant them access to IAM reports, such
# as iam:GenerateCredentialReport, report-related requests are still denied."
GRANT_REPORTS = {
    "Statement": {"Effect": "Allow", "Action": "iam:GenerateCredentialReport", "Resource": "*"}
}


@pytest.mark.parametrize(
    ("action", "allowed", "explicit"),
    [
        ("iam:GetUser", True, False),
        ("iam:ListRoles", True, False),
        ("iam:CreatePolicy", False, False),
        ("iam:GetOrganizationsAccessReport", False, True),
        ("iam:GenerateCredentialReport", False, True),
    ],
)
def test_explicit_and_implicit_denies(action: str, allowed: bool, explicit: bool):
    decision = evaluate([INTERPLAY_EXAMPLE, GRANT_REPORTS], action, "*")
    assert (decision.allowed, decision.explicit_deny) == (allowed, explicit)


# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notaction.html
def test_not_action_with_allow_and_a_resource_scope():
    s3_but_delete = {"Statement": {"Effect": "Allow", "NotAction": "s3:DeleteBucket",
                                   "Resource": "arn:aws:s3:::*"}}  # fmt: skip
    assert evaluate([s3_but_delete], "s3:ListBucket", "arn:aws:s3:::b").allowed
    assert not evaluate([s3_but_delete], "s3:DeleteBucket", "arn:aws:s3:::b").allowed
    # other services' actions do not apply to S3 resources
    assert not evaluate([s3_but_delete], "ec2:RunInstances", "arn:aws:ec2:::instance/i").allowed
    all_but_iam = {"Statement": {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}}
    assert evaluate([all_but_iam], "execute-api:Invoke", f"{API}/prod/$connect").allowed
    assert not evaluate([all_but_iam], "iam:CreateUser", "*").allowed


# The same page: "DenyAllUsersNotUsingMFA" denies every action but IAM's without MFA.
DENY_WITHOUT_MFA = {
    "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {
            "Sid": "DenyAllUsersNotUsingMFA",
            "Effect": "Deny",
            "NotAction": "iam:*",
            "Resource": "*",
            "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
        },
    ]
}


def test_not_action_with_deny_and_a_condition():
    with_mfa = {"aws:MultiFactorAuthPresent": "true"}
    assert evaluate([DENY_WITHOUT_MFA], "s3:GetObject", "*", with_mfa).allowed
    denied = evaluate([DENY_WITHOUT_MFA], "s3:GetObject", "*", {})  # IfExists: no key, applies
    assert denied.explicit_deny
    assert evaluate([DENY_WITHOUT_MFA], "iam:ListUsers", "*", {}).allowed


# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notresource.html
PAYROLL = {
    "Version": "2012-10-17",
    "Statement": {
        "Effect": "Deny",
        "Action": "s3:*",
        "NotResource": ["arn:aws:s3:::HRBucket/Payroll", "arn:aws:s3:::HRBucket/Payroll/*"],
    },
}
ALLOW_S3 = {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


def test_not_resource_with_deny():
    assert evaluate([PAYROLL, ALLOW_S3], "s3:GetObject", "arn:aws:s3:::HRBucket/Payroll/a").allowed
    other = evaluate([PAYROLL, ALLOW_S3], "s3:GetObject", "arn:aws:s3:::HRBucket/Other")
    assert other.explicit_deny
    # "this policy does not grant the user access to any resources"
    assert not evaluate([PAYROLL], "s3:GetObject", "arn:aws:s3:::HRBucket/Payroll").allowed


# aws-cdk#18410: grantManagementApiAccess grants POST only; AWS then refuses DELETE (and GET).
CDK_GRANT = {
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "execute-api:ManageConnections",
            "Resource": f"{API}/prod/POST/@connections/*",
        }
    ]
}


@pytest.mark.parametrize(("method", "allowed"), [("POST", True), ("GET", False), ("DELETE", False)])
def test_management_api_grants_are_per_method(method: str, allowed: bool):
    resource = f"{API}/prod/{method}/@connections/Ab1=="
    assert evaluate([CDK_GRANT], "execute-api:ManageConnections", resource).allowed is allowed


def test_single_character_wildcard():
    policy = {"Statement": {"Effect": "Allow", "Action": "execute-api:Invok?",
                            "Resource": f"{API}/pro?/*"}}  # fmt: skip
    assert evaluate([policy], "execute-api:Invoke", f"{API}/prod/x").allowed
    assert not evaluate([policy], "execute-api:Invoke", f"{API}/production/x").allowed


def test_conditions_on_the_principal():
    policy = {
        "Statement": {
            "Effect": "Allow",
            "Action": "execute-api:Invoke",
            "Resource": "*",
            "Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:user/*"}},
        }
    }
    user = {"aws:PrincipalArn": "arn:aws:iam::111122223333:user/ada"}
    role = {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/fn"}
    assert evaluate([policy], "execute-api:Invoke", "x", user).allowed
    assert not evaluate([policy], "execute-api:Invoke", "x", role).allowed


def test_a_condition_it_cannot_evaluate_fails_closed_and_says_so():
    allow_in_vpc = {
        "Statement": {
            "Effect": "Allow",
            "Action": "execute-api:*",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceVpc": "vpc-1"}},
        }
    }
    decision = evaluate([allow_in_vpc], "execute-api:Invoke", "x", {})
    assert not decision.allowed
    assert "cannot evaluate the condition StringEquals on aws:SourceVpc" in decision.reason
    assert "fails closed" in decision.reason
    deny_unknown_operator = {
        "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "*", "Resource": "*",
             "Condition": {"DateLessThanOrBetween": {"aws:CurrentTime": "2020"}}},
        ]
    }  # fmt: skip
    decision = evaluate([deny_unknown_operator], "execute-api:Invoke", "x", {})
    assert decision.explicit_deny
    assert "DateLessThanOrBetween" in decision.reason


def test_policy_variables():
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html
    policy = {"Statement": {"Effect": "Allow", "Action": "s3:*",
                            "Resource": "arn:aws:s3:::bucket/${aws:username}/*"}}  # fmt: skip
    ada = {"aws:username": "ada"}
    assert evaluate([policy], "s3:GetObject", "arn:aws:s3:::bucket/ada/x", ada).allowed
    assert not evaluate([policy], "s3:GetObject", "arn:aws:s3:::bucket/bob/x", ada).allowed
    unknown = evaluate([policy], "s3:GetObject", "arn:aws:s3:::bucket/ada/x", {})
    assert not unknown.allowed and "${aws:username}" in unknown.reason


def test_malformed_statements_fail_closed():
    both = {"Statement": {"Effect": "Allow", "Action": "*", "NotAction": "iam:*", "Resource": "*"}}
    assert not evaluate([both], "s3:GetObject", "*").allowed
    no_effect = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"},
                               {"Effect": "deny", "Action": "*", "Resource": "*"}]}  # fmt: skip
    assert evaluate([no_effect], "s3:GetObject", "*").explicit_deny
