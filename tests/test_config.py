"""[tool.pylive] loading: defaults, discovery from a subfolder, the workers' interpreter."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pylive.config import load_config
from pylive.errors import ConfigError


def _app(root: Path, table: str = 'name = "shop"') -> Path:
    (root / "pyproject.toml").write_text(f"[project]\nname = 'x'\n\n[tool.pylive]\n{table}\n")
    return root


def test_defaults_and_discovery_from_a_subfolder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    root = _app(tmp_path)
    (root / "functions" / "deep").mkdir(parents=True)
    config = load_config(root / "functions" / "deep")
    assert config.root == root.resolve()
    assert (config.name, config.region, config.stage, config.stacks_module) == (
        "shop",
        "us-east-1",
        "dev",
        "stacks",
    )
    assert config.python == Path(sys.executable)
    assert config.state_dir == root.resolve() / ".pylive"


def test_explicit_values_and_stage_override(tmp_path: Path) -> None:
    root = _app(tmp_path, 'name = "shop"\nregion = "eu-west-1"\nstage = "qa"\nstacks = "infra.app"')
    (root / "infra").mkdir()
    (root / "infra" / "app.py").write_text("")
    config = load_config(root, stage="ada")
    assert (config.region, config.stage, config.stacks_module) == ("eu-west-1", "ada", "infra.app")
    assert config.stacks_file == root.resolve() / "infra" / "app.py"


def test_the_apps_venv_is_the_workers_interpreter(tmp_path: Path) -> None:
    root = _app(tmp_path)
    python = root / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    assert load_config(root).python == python


def test_a_configured_venv_interpreter_is_kept_as_its_own_path(tmp_path: Path) -> None:
    """A venv's python is a symlink to the base interpreter; run by the resolved path it would
    not see the venv's packages."""
    root = _app(tmp_path, 'name = "shop"\npython = "./envs/py/bin/python"')
    python = root / "envs" / "py" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    assert load_config(root).python == python


def test_a_configured_interpreter_must_exist(tmp_path: Path) -> None:
    root = _app(tmp_path, 'name = "shop"\npython = "envs/py/bin/python"')
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(root)


def test_a_pyproject_without_the_table_is_skipped_for_its_parent(tmp_path: Path) -> None:
    root = _app(tmp_path)
    nested = root / "lib"
    nested.mkdir()
    (nested / "pyproject.toml").write_text("[project]\nname = 'lib'\n")
    assert load_config(nested).root == root.resolve()


def test_the_bootstrap_qualifier_defaults_to_the_cdks_and_is_checked(tmp_path: Path) -> None:
    assert load_config(_app(tmp_path)).bootstrap_qualifier == "hnb659fds"
    custom = _app(tmp_path, 'name = "shop"\nbootstrap_qualifier = "team42"')
    assert load_config(custom).bootstrap_qualifier == "team42"
    for bad in ("team-42", "elevenchars"):
        _app(tmp_path, f'name = "shop"\nbootstrap_qualifier = "{bad}"')
        with pytest.raises(ConfigError, match="1 to 10 lower-case letters or digits"):
            load_config(tmp_path)


def test_an_upper_case_bootstrap_qualifier_is_refused_before_any_deploy(tmp_path: Path) -> None:
    """The qualifier is part of the bootstrap stack's bucket name, and S3 bucket names are
    lower-case: `Team42` would only fail when the bootstrap stack is created."""
    _app(tmp_path, 'name = "shop"\nbootstrap_qualifier = "Team42"')
    with pytest.raises(ConfigError, match="lower-case") as raised:
        load_config(tmp_path)
    assert "bucket" in str(raised.value)
