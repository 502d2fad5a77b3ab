"""The stacks of a synthesized cloud assembly (``cdk.out``), read from its manifests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pylive.errors import SynthError

STACK_TYPE = "aws:cloudformation:stack"
NESTED_TYPE = "cdk:cloud-assembly"


@dataclass(frozen=True)
class StackArtifact:
    artifact_id: str
    display_name: str  # "<app>-<stage>/<StackId>": what the toolkit selects stacks by
    stack_name: str  # the CloudFormation stack name
    template: Path


def stage_stacks(cdk_out: Path, stage: str) -> list[StackArtifact]:
    """The stacks of the nested assembly of ``cdk.Stage`` ``stage`` in ``cdk_out``."""
    manifest = _read(cdk_out / "manifest.json")
    for artifact in manifest.get("artifacts", {}).values():
        properties = artifact.get("properties", {})
        if artifact.get("type") == NESTED_TYPE and properties.get("displayName") == stage:
            return _stacks(cdk_out / str(properties["directoryName"]))
    return []


def construct_paths(stacks: list[StackArtifact]) -> dict[str, str]:
    """Logical id -> construct path (``aws:cdk:path`` metadata) of every resource in the
    stacks' templates, to say which construct an error message's logical id belongs to."""
    paths: dict[str, str] = {}
    for stack in stacks:
        try:
            template = json.loads(stack.template.read_text())
        except (OSError, ValueError):
            continue
        for logical_id, resource in (template.get("Resources") or {}).items():
            path = (resource.get("Metadata") or {}).get("aws:cdk:path")
            if isinstance(path, str):
                paths[logical_id] = path.removesuffix("/Resource")
    return paths


def _stacks(directory: Path) -> list[StackArtifact]:
    manifest = _read(directory / "manifest.json")
    stacks = []
    for artifact_id, artifact in manifest.get("artifacts", {}).items():
        if artifact.get("type") != STACK_TYPE:
            continue
        properties = artifact.get("properties", {})
        stacks.append(
            StackArtifact(
                artifact_id=artifact_id,
                display_name=str(artifact.get("displayName", artifact_id)),
                stack_name=str(properties.get("stackName", artifact_id)),
                template=directory / str(properties.get("templateFile", "")),
            )
        )
    return stacks


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SynthError(f"cannot read the cloud assembly manifest {path}: {exc}") from None
    if not isinstance(data, dict):
        raise SynthError(f"{path} is not a cloud assembly manifest")
    return data
