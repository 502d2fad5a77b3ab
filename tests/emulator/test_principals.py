"""A principal's decisions: each question is evaluated once, and every part of it counts."""

from __future__ import annotations

from typing import Any

from pylive.emulator import principals
from pylive.emulator.principals import role_session

API = "arn:aws:execute-api:us-east-1:123456789012:api-id/dev/POST/@connections"
ACTION = "execute-api:ManageConnections"

# May post to connection "a" only, and only from 10.0.0.0/8.
POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ACTION,
            "Resource": f"{API}/a",
            "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        }
    ],
}


def test_a_remembered_decision_still_depends_on_the_resource_and_the_source() -> None:
    principal = role_session("StubRole", "fn", [POLICY])
    asked = [
        (f"{API}/a", "10.1.2.3", True),
        (f"{API}/b", "10.1.2.3", False),
        (f"{API}/a", "192.0.2.1", False),
        (f"{API}/a", "10.1.2.3", True),
        (f"{API}/b", "10.1.2.3", False),
    ]
    for resource, source_ip, allowed in asked:
        assert principal.authorize(ACTION, resource, source_ip).allowed is allowed
    assert principal.authorize("execute-api:Invoke", f"{API}/a", "10.1.2.3").allowed is False


def test_new_policies_are_a_new_principal_that_decides_anew() -> None:
    before = role_session("StubRole", "fn", [POLICY])
    assert before.authorize(ACTION, f"{API}/b", "10.1.2.3").allowed is False
    allow_all = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ACTION, "Resource": "*"}],
    }
    after = role_session("StubRole", "fn", [POLICY, allow_all])
    assert after.authorize(ACTION, f"{API}/b", "10.1.2.3").allowed is True
    assert before.authorize(ACTION, f"{API}/b", "10.1.2.3").allowed is False


def test_decisions_kept_are_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr(principals, "DECISIONS_KEPT", 4)
    principal = role_session("StubRole", "fn", [POLICY])
    for index in range(10):
        principal.authorize(ACTION, f"{API}/c{index}", "10.1.2.3")
        assert len(principal._decisions) <= 4
    assert principal.authorize(ACTION, f"{API}/a", "10.1.2.3").allowed is True
