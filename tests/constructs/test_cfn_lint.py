"""cfn-lint on every template of the aurora sample app, synthesized in local and deploy modes.

Allowed findings (warnings only, never errors):

- W3005 "dependency already enforced": aws-cdk-lib itself adds ``DependsOn`` entries that
  a ``Ref``/``GetAtt`` already implies (a Lambda function on its role, the RDS Proxy target
  group on the cluster). Harmless, and not something an app can change.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

cfnlint_api = pytest.importorskip("cfnlint.api")

APP_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "apps" / "aurora"
MODES = ("local", "deploy")
ALLOWED_WARNINGS = {"W3005"}


def load_stacks_function(app_dir: Path) -> Any:
    """The sample app's ``stacks(app)``, imported from its file under a name of its own."""
    spec = importlib.util.spec_from_file_location(
        "_pylive_fixture_aurora_stacks", app_dir / "stacks.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.stacks


def synth(mode: str, app_dir: Path, outdir: Path) -> list[Path]:
    app = cdk.App(
        outdir=str(outdir),
        context={
            "pylive:mode": mode,
            "pylive:root": str(app_dir),
            "pylive:stage": "test",
            "pylive:app": "aurora-app",
            "@aws-cdk/core:defaultCrossStackReferences": "strong",
        },
    )
    load_stacks_function(app_dir)(app)
    assembly = app.synth()
    return [outdir / stack.template_file for stack in assembly.stacks]


@pytest.fixture(scope="module")
def linted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[Path, list[Any]]]]:
    """mode -> [(template, cfn-lint matches)]; one synthesis and one lint per template."""
    # a copy, so that deploy mode's bundles (under the app root) stay out of the repository
    app_dir = tmp_path_factory.mktemp("apps") / "aurora"
    shutil.copytree(APP_DIR, app_dir, ignore=shutil.ignore_patterns(".pylive", "__pycache__"))
    results: dict[str, list[tuple[Path, list[Any]]]] = {}
    for mode in MODES:
        templates = synth(mode, app_dir, tmp_path_factory.mktemp(f"cdk-{mode}"))
        results[mode] = [(t, list(cfnlint_api.lint_file(t))) for t in templates]
    return results


def describe(match: Any) -> str:
    return f"{match.rule.id} {'/'.join(map(str, getattr(match, 'path', [])))}: {match.message}"


@pytest.mark.parametrize("mode", MODES)
def test_every_template_is_free_of_errors(
    linted: dict[str, list[tuple[Path, list[Any]]]], mode: str
) -> None:
    results = linted[mode]
    assert results, "the app synthesized no templates"
    errors = [
        f"{path.name}: {describe(m)}"
        for path, matches in results
        for m in matches
        if not m.rule.id.startswith(("W", "I"))
    ]
    assert errors == []


@pytest.mark.parametrize("mode", MODES)
def test_only_allowed_warnings(linted: dict[str, list[tuple[Path, list[Any]]]], mode: str) -> None:
    unexpected = [
        f"{path.name}: {describe(m)}"
        for path, matches in linted[mode]
        for m in matches
        if m.rule.id.startswith("W") and m.rule.id not in ALLOWED_WARNINGS
    ]
    assert unexpected == []


@pytest.mark.parametrize("mode", MODES)
def test_the_sample_app_has_the_whole_stack(
    linted: dict[str, list[tuple[Path, list[Any]]]], mode: str
) -> None:
    [(path, _)] = linted[mode]
    types = {r["Type"] for r in json.loads(path.read_text())["Resources"].values()}
    assert {
        "AWS::EC2::VPC", "AWS::EC2::NatGateway", "AWS::RDS::DBCluster", "AWS::RDS::DBProxy",
        "AWS::EC2::ClientVpnEndpoint", "AWS::ApiGatewayV2::Api", "AWS::Lambda::Function",
    } <= types  # fmt: skip


def test_deploy_mode_code_is_an_asset(linted: dict[str, list[tuple[Path, list[Any]]]]) -> None:
    for mode, expected in (("local", "ZipFile"), ("deploy", "S3Bucket")):
        [(path, _)] = linted[mode]
        functions = [
            r["Properties"]
            for r in json.loads(path.read_text())["Resources"].values()
            if r["Type"] == "AWS::Lambda::Function"
        ]
        assert functions and all(expected in f["Code"] for f in functions)
