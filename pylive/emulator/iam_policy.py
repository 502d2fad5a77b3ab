"""Evaluate identity-based IAM policies for one request, as AWS does (pure, stdlib only).

::

    decision = evaluate(policies, "execute-api:ManageConnections", resource_arn, context)
    decision.allowed, decision.reason

The rules follow the IAM User Guide's evaluation logic for a principal's own policies
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_AccessPolicyLanguage_Interplay.html):
a request is denied by default; a statement that applies with ``"Effect": "Deny"`` denies it
whatever else allows it (explicit deny); otherwise an applicable ``Allow`` allows it.

A statement applies when its ``Action`` (or ``NotAction``) and ``Resource`` (or
``NotResource``) match and every ``Condition`` holds. Actions match case-insensitively,
resources case-sensitively; ``*`` and ``?`` are wildcards in both
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notaction.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notresource.html).

What this module cannot decide it decides against the caller (it *fails closed*): a condition
operator it does not implement, a condition key the request context does not hold (unless the
operator ends in ``IfExists`` or is ``Null``), a policy variable it cannot substitute, a
malformed statement. Such an ``Allow`` statement does not apply, such a ``Deny`` statement
does, and :attr:`Decision.unevaluated` says what could not be evaluated.

moto's evaluator (``moto.iam.access_control``) does not fit: it lets a ``NotResource``
statement match every resource and turns an unmet condition into an explicit deny.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Policy = Mapping[str, Any]
# Condition keys and their values (a list for multivalued keys).
Context = Mapping[str, str | Sequence[str]]

ALLOW, DENY = "Allow", "Deny"


@dataclass(frozen=True)
class Decision:
    """The outcome: ``allowed``; ``explicit_deny`` when a Deny statement applied;
    ``unevaluated`` lists what could not be evaluated (and was decided against the caller)."""

    allowed: bool
    explicit_deny: bool = False
    unevaluated: tuple[str, ...] = field(default=())

    @property
    def reason(self) -> str:
        """Why, in the words AWS uses in its AccessDenied messages (plus what was not
        evaluated)."""
        if self.allowed:
            text = "an identity-based policy allows it"
        elif self.explicit_deny:
            text = "with an explicit deny in an identity-based policy"
        else:
            text = "because no identity-based policy allows it"
        if self.unevaluated:
            text += (
                " (the local cloud cannot evaluate "
                + "; ".join(self.unevaluated)
                + ", and fails closed)"
            )
        return text


class _Unevaluable(Exception):
    """Part of a statement cannot be evaluated here."""


def evaluate(
    policies: Iterable[Policy], action: str, resource: str, context: Context | None = None
) -> Decision:
    """The decision for ``action`` on ``resource`` under ``policies`` (policy documents)."""
    context = context or {}
    allowed = False
    unevaluated: list[str] = []
    for policy in policies:
        for statement in _statements(policy):
            effect = statement.get("Effect") if isinstance(statement, Mapping) else None
            try:
                if effect not in (ALLOW, DENY):
                    raise _Unevaluable(f"a statement whose Effect is {effect!r}")
                applies = _applies(statement, action, resource, context)
            except _Unevaluable as exc:
                unevaluated.append(str(exc))
                if effect != ALLOW:  # a Deny (or a statement of unknown effect) holds
                    return Decision(False, explicit_deny=True, unevaluated=tuple(unevaluated))
                continue
            if applies and effect == DENY:
                return Decision(False, explicit_deny=True, unevaluated=tuple(unevaluated))
            allowed = allowed or applies
    return Decision(allowed, unevaluated=() if allowed else tuple(unevaluated))


def _statements(policy: Policy) -> list[Any]:
    statements = policy.get("Statement", [])
    return [statements] if isinstance(statements, Mapping) else list(statements)


def _applies(statement: Mapping[str, Any], action: str, resource: str, context: Context) -> bool:
    if "Principal" in statement or "NotPrincipal" in statement:
        # Identity-based policies have no Principal element; IAM refuses such a policy.
        raise _Unevaluable("a Principal element in an identity-based policy")
    if not _matches_element(statement, "Action", action, _action_pattern, context):
        return False
    if not _matches_element(statement, "Resource", resource, _resource_pattern, context):
        return False
    return _conditions_hold(statement.get("Condition"), context)


def _matches_element(
    statement: Mapping[str, Any],
    name: str,
    value: str,
    compile_pattern: Any,
    context: Context,
) -> bool:
    positive, negative = statement.get(name), statement.get(f"Not{name}")
    if (positive is None) == (negative is None):
        raise _Unevaluable(f"a statement with {'both' if positive else 'neither'} {name} and "
                           f"Not{name}")  # fmt: skip
    patterns = _strings(positive if positive is not None else negative, name)
    matched = any(compile_pattern(p, context).fullmatch(value) for p in patterns)
    return matched if positive is not None else not matched


def _strings(value: Any, what: str) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise _Unevaluable(f"a {what} element that is not a string or a list of strings")
    return values


def _action_pattern(pattern: str, context: Context) -> re.Pattern[str]:
    return _glob(pattern, ignore_case=True)


_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_ESCAPES = {"*": "*", "?": "?", "$": "$"}


def _resource_pattern(pattern: str, context: Context) -> re.Pattern[str]:
    """A Resource pattern with its policy variables (``${aws:username}``) substituted."""
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html
    if "${" not in pattern:
        return _glob(pattern)
    parts: list[str] = []
    position = 0
    for match in _VARIABLE.finditer(pattern):
        parts.append(_glob_source(pattern[position : match.start()]))
        name = match.group(1)
        key, _, default = (part.strip() for part in name.partition(","))
        if key in _ESCAPES:
            parts.append(re.escape(_ESCAPES[key]))
        else:
            value = context.get(key)
            if isinstance(value, str):
                parts.append(re.escape(value))
            elif value is None and default.startswith("'") and default.endswith("'"):
                parts.append(re.escape(default[1:-1]))
            else:
                raise _Unevaluable(f"the policy variable ${{{name}}}")
        position = match.end()
    parts.append(_glob_source(pattern[position:]))
    return re.compile("".join(parts), re.DOTALL)


@functools.lru_cache(maxsize=1024)  # the same few patterns, on every request
def _glob(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile(_glob_source(pattern), flags)


def _glob_source(pattern: str) -> str:
    return "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)


# -- conditions -----------------------------------------------------------------------------
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html


def _conditions_hold(conditions: Any, context: Context) -> bool:
    if conditions is None:
        return True
    if not isinstance(conditions, Mapping):
        raise _Unevaluable("a Condition element that is not an object")
    for operator, block in conditions.items():
        if not isinstance(block, Mapping):
            raise _Unevaluable(f"the condition {operator}")
        for key, wanted in block.items():
            if not _condition_holds(str(operator), str(key), wanted, context):
                return False
    return True


def _condition_holds(operator: str, key: str, wanted: Any, context: Context) -> bool:
    what = f"the condition {operator} on {key}"
    name, if_exists = (operator[: -len("IfExists")], True) if operator.endswith("IfExists") else (
        operator, False)  # fmt: skip
    set_operator = ""
    if ":" in name:
        set_operator, _, name = name.partition(":")
        if set_operator not in ("ForAnyValue", "ForAllValues"):
            raise _Unevaluable(what)
    values = _strings([str(v) if isinstance(v, bool) else v for v in
                       (wanted if isinstance(wanted, list) else [wanted])], what)  # fmt: skip
    present = _context_values(context, key)
    if name == "Null":
        if set_operator or if_exists or any(v not in ("true", "false") for v in values):
            raise _Unevaluable(what)
        return (present is None) == (values[0] == "true")
    test = _TESTS.get(name)
    if test is None:
        raise _Unevaluable(what)
    if present is None:
        if if_exists or set_operator == "ForAllValues":
            return True
        if set_operator == "ForAnyValue":
            return False
        # The key may well exist in AWS: the local cloud does not know its value.
        raise _Unevaluable(f"{what} (the request context here has no {key})")
    negated = name.startswith(("StringNot", "ArnNot", "NumericNotEquals", "DateNotEquals",
                               "NotIpAddress"))  # fmt: skip
    try:
        if set_operator == "ForAllValues":
            return all(test(actual, values) for actual in present)
        if set_operator == "ForAnyValue" or not negated:
            return any(test(actual, values) for actual in present)
        return all(test(actual, values) for actual in present)
    except ValueError:
        raise _Unevaluable(what) from None


def _context_values(context: Context, key: str) -> list[str] | None:
    for name, value in context.items():
        if name.lower() == key.lower():  # condition key names are case-insensitive
            return [value] if isinstance(value, str) else list(value)
    return None


def _like(actual: str, patterns: Sequence[str], *, ignore_case: bool = False) -> bool:
    return any(_glob(p, ignore_case=ignore_case).fullmatch(actual) for p in patterns)


def _arn_like(actual: str, patterns: Sequence[str]) -> bool:
    # ARNs compare by their six colon-separated parts, each a glob of its own.
    parts = actual.split(":", 5)
    for pattern in patterns:
        wanted = pattern.split(":", 5)
        if len(wanted) == len(parts) == 6 and all(
            _glob(w).fullmatch(p) for w, p in zip(wanted, parts, strict=True)
        ):
            return True
    return False


def _ip_in(actual: str, networks: Sequence[str]) -> bool:
    address = ipaddress.ip_address(actual)
    return any(address in ipaddress.ip_network(n, strict=False) for n in networks)


def _number(value: str) -> float:
    return float(value)


_TESTS: dict[str, Any] = {
    "StringEquals": lambda a, vs: a in vs,
    "StringNotEquals": lambda a, vs: a not in vs,
    "StringEqualsIgnoreCase": lambda a, vs: a.lower() in {v.lower() for v in vs},
    "StringNotEqualsIgnoreCase": lambda a, vs: a.lower() not in {v.lower() for v in vs},
    "StringLike": lambda a, vs: _like(a, vs),
    "StringNotLike": lambda a, vs: not _like(a, vs),
    "ArnEquals": lambda a, vs: _arn_like(a, vs),
    "ArnLike": lambda a, vs: _arn_like(a, vs),
    "ArnNotEquals": lambda a, vs: not _arn_like(a, vs),
    "ArnNotLike": lambda a, vs: not _arn_like(a, vs),
    "Bool": lambda a, vs: a.lower() in {v.lower() for v in vs},
    "IpAddress": lambda a, vs: _ip_in(a, vs),
    "NotIpAddress": lambda a, vs: not _ip_in(a, vs),
    "NumericEquals": lambda a, vs: any(_number(a) == _number(v) for v in vs),
    "NumericNotEquals": lambda a, vs: all(_number(a) != _number(v) for v in vs),
    "NumericLessThan": lambda a, vs: any(_number(a) < _number(v) for v in vs),
    "NumericLessThanEquals": lambda a, vs: any(_number(a) <= _number(v) for v in vs),
    "NumericGreaterThan": lambda a, vs: any(_number(a) > _number(v) for v in vs),
    "NumericGreaterThanEquals": lambda a, vs: any(_number(a) >= _number(v) for v in vs),
}
