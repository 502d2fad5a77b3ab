"""cfn-lint finds no errors in any template app, synthesized for `pylive deploy` (bundled
code) and, by `pylive synth --dev`, for `pylive dev` (its debug stack, and the app with the
relay stub in place of each function)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from apphelpers import pylive_cmd

from pylive.cdk.synth import synthesize_assembly
from pylive.config import load_config

pytestmark = pytest.mark.slow

CERTIFICATES = {
    "server_certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/"
    "11111111-2222-3333-4444-555555555555",
    "client_certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/"
    "66666666-7777-8888-9999-000000000000",
    "region": "us-east-1",
}


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("templates")
    made = {}
    for template in ("starter", "aurora"):
        app = root / template
        subprocess.run(pylive_cmd("init", str(app), "--template", template, "--no-env"), check=True)
        vpn = app / ".pylive" / "vpn"
        vpn.mkdir(parents=True)
        (vpn / "arns.json").write_text(json.dumps(CERTIFICATES))
        made[template] = app
    return made


def _lint(template: Path) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "cfnlint", "--format", "parseable", str(template)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return [line for line in result.stdout.splitlines() if ":E" in line.split(" ", 1)[0]]


@pytest.mark.parametrize("template", ["starter", "aurora"])
def test_templates_lint_clean(apps: dict[str, Path], tmp_path: Path, template: str) -> None:
    config = load_config(apps[template])
    out = tmp_path / "cdk.out"
    env = {k: v for k, v in os.environ.items() if k.startswith("CDK_")}
    synthesize_assembly(config, out, mode="deploy", env=env, on_warning=lambda line: None)
    templates = sorted(out.rglob("*.template.json"))
    assert templates, f"no templates in {out}"
    for path in templates:
        assert _lint(path) == [], path.name
    if template == "aurora":
        _check_the_schema_step_runs_on_deploy_only(templates, "deploy")


@pytest.mark.parametrize("template", ["starter", "aurora"])
def test_synth_dev_writes_what_pylive_dev_deploys_and_it_lints_clean(
    apps: dict[str, Path], tmp_path: Path, template: str
) -> None:
    """`pylive synth --dev`, the real command: the debug stack and the app in dev mode."""
    out = tmp_path / "dev.out"
    done = subprocess.run(
        pylive_cmd("synth", "--dev", "--out", str(out)),
        cwd=apps[template], capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    debug = sorted((out / "debug").rglob("*.template.json"))
    app = sorted((out / "app").rglob("*.template.json"))
    assert len(debug) == 1
    assert f"{load_config(apps[template]).name}-dev-Debug  " in done.stdout
    assert app, done.stdout
    for path in [*debug, *app]:
        assert _lint(path) == [], path.name
        assert path.name in done.stdout  # each stack's name and template are printed
    text = "\n".join(p.read_text() for p in app)
    assert '"Handler": "stub.handler"' in text or '"Handler":"stub.handler"' in text
    assert "wss://relayapiid.execute-api." in text
    if template == "aurora":
        _check_the_schema_step_runs_on_deploy_only(app, "dev")


def _check_the_schema_step_runs_on_deploy_only(templates: list[Path], mode: str) -> None:
    """`pylive deploy` runs `migrate` once the database (cluster, proxy, its targets) is up;
    under `pylive dev` the stubs cannot answer during the deploy, so nothing runs."""
    resources: dict[str, dict[str, object]] = {}
    for path in templates:
        resources.update(json.loads(path.read_text()).get("Resources", {}))
    triggers = {k: v for k, v in resources.items() if v["Type"] == "Custom::Trigger"}
    if mode == "dev":
        assert triggers == {}
        return
    ((name, trigger),) = triggers.items()
    assert name.startswith("migrateOnDeploy")
    after = trigger["DependsOn"]
    assert isinstance(after, list)
    kinds = {resources[dependency]["Type"] for dependency in after}
    assert {
        "AWS::RDS::DBCluster",
        "AWS::RDS::DBInstance",
        "AWS::RDS::DBProxy",
        "AWS::RDS::DBProxyTargetGroup",
    } <= kinds
