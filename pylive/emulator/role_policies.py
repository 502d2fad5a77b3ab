"""A function's role policies as a synthesized CloudFormation template states them, and their
CloudFormation intrinsics resolved for the local cloud (pure, no CDK).

:func:`role_policies` collects the policy documents that apply to the role a function resource
runs with: the role's inline ``Policies`` and every ``AWS::IAM::Policy`` /
``AWS::IAM::ManagedPolicy`` of the template attached to it (what CDK's ``grant_*`` methods
and ``add_to_role_policy`` write). :func:`resolve` then replaces the pseudo parameters
(``AWS::Region``, ``AWS::AccountId``, ``AWS::Partition``, ``AWS::URLSuffix``) and ``Fn::Join``,
``Fn::Sub``, ``Fn::Select``, ``Fn::Split`` with their values
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference.html).
A value only known once deployed (a ``Ref`` or ``Fn::GetAtt`` of another resource, an import)
becomes a policy variable the evaluator cannot fill, so a statement that depends on it fails
closed (:mod:`pylive.emulator.iam_policy`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

Template = Mapping[str, Any]


def role_policies(template: Template, function_logical_id: str) -> list[dict[str, Any]]:
    """The policy documents of the role that function ``function_logical_id`` runs with
    (empty when the role is not a resource of ``template``)."""
    resources: Mapping[str, Any] = template.get("Resources", {})
    function = resources.get(function_logical_id, {})
    role_ref = function.get("Properties", {}).get("Role")
    if not (isinstance(role_ref, dict) and isinstance(role_ref.get("Fn::GetAtt"), list)):
        return []
    role_id = role_ref["Fn::GetAtt"][0]
    role = resources.get(role_id, {})
    documents = [
        p["PolicyDocument"]
        for p in role.get("Properties", {}).get("Policies", [])
        if isinstance(p, dict) and "PolicyDocument" in p
    ]
    for resource in resources.values():
        if resource.get("Type") not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            continue
        properties = resource.get("Properties", {})
        if {"Ref": role_id} in properties.get("Roles", []):
            documents.append(properties["PolicyDocument"])
    return [json.loads(json.dumps(d)) for d in documents]  # plain, mutable copies


def resolve(value: Any, *, region: str, account: str) -> Any:
    """``value`` with its intrinsics resolved for ``region`` and ``account``."""
    pseudo = {
        "AWS::Region": region,
        "AWS::AccountId": account,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
    }
    return _resolve(value, pseudo)


def _resolve(value: Any, pseudo: Mapping[str, str]) -> Any:
    if isinstance(value, list):
        return [_resolve(v, pseudo) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        return {k: _resolve(v, pseudo) for k, v in value.items()}
    (name, argument), = value.items()  # fmt: skip
    if name == "Ref":
        return pseudo.get(argument, _unknown(f"Ref {argument}"))
    if name == "Fn::Join" and isinstance(argument, list) and len(argument) == 2:
        separator, parts = argument
        resolved = _resolve(parts, pseudo)
        if isinstance(resolved, list) and all(isinstance(p, str) for p in resolved):
            return str(separator).join(resolved)
        return _unknown("Fn::Join")
    if name == "Fn::Sub":
        text, variables = (argument, {}) if isinstance(argument, str) else [*argument, {}][:2]
        values = {**pseudo, **{k: _resolve(v, pseudo) for k, v in variables.items()}}

        def substitute(match: re.Match[str]) -> str:
            found = values.get(match.group(1))
            return found if isinstance(found, str) else _unknown(f"${{{match.group(1)}}}")

        return re.sub(r"\$\{([^!}][^}]*)\}", substitute, str(text))
    if name == "Fn::Select" and isinstance(argument, list) and len(argument) == 2:
        index, items = _resolve(argument[0], pseudo), _resolve(argument[1], pseudo)
        if isinstance(items, list) and str(index).isdigit() and int(index) < len(items):
            return items[int(index)]
        return _unknown("Fn::Select")
    if name == "Fn::Split" and isinstance(argument, list) and len(argument) == 2:
        text = _resolve(argument[1], pseudo)
        return str(text).split(str(argument[0])) if isinstance(text, str) else _unknown(name)
    if name.startswith("Fn::"):
        if isinstance(argument, str):
            return _unknown(f"{name} {argument}")
        if isinstance(argument, list):
            return _unknown(f"{name} {'.'.join(map(str, argument))}")
        return _unknown(name)
    return {name: _resolve(argument, pseudo)}


def _unknown(what: str) -> str:
    """A placeholder for a value known only in AWS: a policy variable nothing fills."""
    return "${" + what.replace("}", ")") + " (known once deployed)}"
