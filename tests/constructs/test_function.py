from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from pylive.constructs import Function
from pylive.constructs.function_settings import handler_module_file, split_handler


def only_function(template: Template) -> dict[str, Any]:
    functions = template.find_resources("AWS::Lambda::Function")
    assert len(functions) == 1
    props: dict[str, Any] = next(iter(functions.values()))["Properties"]
    return props


def test_settings_reach_the_template(make_stack: Callable[..., cdk.Stack]) -> None:
    stack = make_stack()
    Function(
        stack,
        "hello",
        handler="functions/hello.handler",
        runtime="python3.13",
        architecture="arm64",
        memory_size=512,
        timeout=cdk.Duration.minutes(2),
        environment={"GREETING": "hi"},
    )
    props = only_function(Template.from_stack(stack))
    assert props["Handler"] == "functions/hello.handler"
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["MemorySize"] == 512
    assert props["Timeout"] == 120
    assert props["Environment"] == {"Variables": {"GREETING": "hi"}}


def test_defaults_and_recorded_attributes(
    make_stack: Callable[..., cdk.Stack], tmp_path: Path
) -> None:
    stack = make_stack()
    fn = Function(stack, "hello", handler="functions/hello.handler", code="src")
    props = only_function(Template.from_stack(stack))
    assert props["Runtime"] == "python3.12"
    assert props["MemorySize"] == 128
    assert props["Timeout"] == 3
    assert props["Architectures"] == ["x86_64"]
    assert (fn.handler, fn.runtime, fn.architecture) == (
        "functions/hello.handler",
        "python3.12",
        "x86_64",
    )
    assert (fn.memory_size, fn.timeout, fn.environment) == (128, 3.0, {})
    assert fn.code_dir == (tmp_path / "src").resolve()
    assert fn.code_dir.is_absolute()
    assert fn.role is not None


def test_local_mode_uses_inline_placeholder_code(make_stack: Callable[..., cdk.Stack]) -> None:
    stack = make_stack()  # no pylive:mode context: "local"
    fn = Function(stack, "hello", handler="functions/hello.handler")
    assert fn.mode == "local"
    code = only_function(Template.from_stack(stack))["Code"]
    assert set(code) == {"ZipFile"}
    assert "pylive deploy" in code["ZipFile"]


def test_deploy_mode_uses_an_asset_without_local_clutter(
    make_stack: Callable[..., cdk.Stack], tmp_path: Path
) -> None:
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "hello.py").write_text("def handler(e, c):\n    return 1\n")
    for clutter in (".venv/lib/x.py", ".pylive/manifest.json", "tests/test_x.py",
                    "functions/__pycache__/hello.cpython-311.pyc", ".git/HEAD"):  # fmt: skip
        (tmp_path / clutter).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / clutter).write_text("x")
    stack = make_stack("deploy")
    Function(stack, "hello", handler="functions/hello.handler")
    code = only_function(Template.from_stack(stack))["Code"]
    assert "S3Bucket" in code and "S3Key" in code

    assembly = cdk.App.of(stack).synth()  # type: ignore[union-attr]
    assets = json.loads(Path(assembly.directory, "Test.assets.json").read_text())["files"]
    (asset,) = [a for a in assets.values() if a["source"]["packaging"] == "zip"]
    asset_dir = Path(assembly.directory, asset["source"]["path"])
    copied = sorted(p.relative_to(asset_dir).as_posix() for p in asset_dir.rglob("*"))
    assert copied == ["functions", "functions/hello.py"]


def test_deploy_mode_needs_an_existing_code_dir(make_stack: Callable[..., cdk.Stack]) -> None:
    with pytest.raises(ValueError, match="code directory 'missing'"):
        Function(make_stack("deploy"), "hello", handler="hello.handler", code="missing")


def test_unknown_mode_is_rejected(make_stack: Callable[..., cdk.Stack]) -> None:
    with pytest.raises(ValueError, match="pylive:mode='prod' is not a pylive mode"):
        Function(make_stack("prod"), "hello", handler="hello.handler")


def test_add_environment_updates_template_and_local_settings(
    make_stack: Callable[..., cdk.Stack],
) -> None:
    stack = make_stack()
    fn = Function(stack, "hello", handler="hello.handler", environment={"A": "1"})
    fn.add_environment("B", "2")
    assert fn.environment == {"A": "1", "B": "2"}
    Template.from_stack(stack).has_resource_properties(
        "AWS::Lambda::Function",
        {"Environment": {"Variables": Match.object_equals({"A": "1", "B": "2"})}},
    )


@pytest.mark.parametrize(
    "handler",
    ["hello", "functions/hello", "functions/hello.", ".handler", "functions\\hello.handler",
     "/abs/hello.handler", "../up/hello.handler", "functions/hello.handler()", "1mod.handler",
     "functions/hello.handler ", "hello.handler\n", ""],
)  # fmt: skip
def test_invalid_handler_is_a_clear_error(
    make_stack: Callable[..., cdk.Stack], handler: str
) -> None:
    with pytest.raises(ValueError, match=r"must look like 'path/module\.func'"):
        Function(make_stack(), "fn", handler=handler)


@pytest.mark.parametrize(
    ("handler", "module", "func", "file"),
    [
        ("functions/hello.handler", "functions/hello", "handler", "functions/hello.py"),
        ("hello.main", "hello", "main", "hello.py"),
        ("app.api.users.create", "app.api.users", "create", "app/api/users.py"),
        ("src/my-pkg/mod.run", "src/my-pkg/mod", "run", "src/my-pkg/mod.py"),
    ],
)
def test_valid_handler_forms(handler: str, module: str, func: str, file: str) -> None:
    assert split_handler(handler) == (module, func)
    assert handler_module_file(handler) == file


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout": 1.5}, "whole number of seconds"),
        ({"timeout": 0}, "from 1 to 900"),
        ({"timeout": 901}, "from 1 to 900"),
        ({"timeout": cdk.Duration.millis(1500)}, "timeout"),
        ({"timeout": "3"}, "number of seconds or a Duration"),
        ({"memory_size": 64}, "from 128 to 10240"),
        ({"memory_size": 256.0}, "whole number of MB"),
        ({"architecture": "arm"}, "x86_64, arm64"),
        ({"runtime": "nodejs20.x"}, "must be a Python runtime"),
        ({"runtime": "python3.8"}, "older than python3.9"),
    ],
)
def test_invalid_settings_are_clear_errors(
    make_stack: Callable[..., cdk.Stack], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Function(make_stack(), "fn", handler="hello.handler", **kwargs)
