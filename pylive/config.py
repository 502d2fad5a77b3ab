"""``[tool.pylive]`` in the app's pyproject.toml: the one home of pylive's defaults.

[tool.pylive]
name = "my-app"          # required: names stacks and resources
region = "us-east-1"     # default AWS region
stage = "dev"            # default stage for `pylive dev`
stacks = "stacks"        # module (importable from the app root) with `def stacks(app)`
python = ".venv/bin/python"  # interpreter for workers; default: the app's .venv, else pylive's
bootstrap_qualifier = "hnb659fds"  # the CDK bootstrap stack to deploy with (the CDK's default)
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pylive.errors import ConfigError

DEFAULT_REGION = "us-east-1"
DEFAULT_STAGE = "dev"
DEFAULT_STACKS_MODULE = "stacks"
DEFAULT_BOOTSTRAP_QUALIFIER = "hnb659fds"  # the CDK's own default
STATE_DIR_NAME = ".pylive"

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,39}$")
_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_KNOWN_KEYS = {"name", "region", "stage", "stacks", "python", "bootstrap_qualifier"}
# What `cdk bootstrap --qualifier` accepts, lower-case only: the qualifier is part of the
# bootstrap stack's bucket name (cdk-<qualifier>-assets-<account>-<region>), and S3 bucket
# names hold no upper-case letters
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html).
_QUALIFIER_RE = re.compile(r"^[a-z0-9]{1,10}$")


@dataclass(frozen=True)
class AppConfig:
    root: Path  # the directory holding pyproject.toml
    name: str
    region: str
    stage: str
    stacks_module: str
    python: Path  # interpreter the workers run on
    bootstrap_qualifier: str = DEFAULT_BOOTSTRAP_QUALIFIER

    @property
    def state_dir(self) -> Path:
        """Where pylive keeps its per-app state (manifest cache, dev.json...)."""
        return self.root / STATE_DIR_NAME

    @property
    def stacks_file(self) -> Path:
        """The source file of the stacks module (module.py or package/__init__.py)."""
        base = self.root.joinpath(*self.stacks_module.split("."))
        package_init = base / "__init__.py"
        return package_init if package_init.exists() else base.with_suffix(".py")


def find_project_root(start: Path) -> Path:
    """The nearest directory at or above ``start`` whose pyproject.toml has ``[tool.pylive]``."""
    start = start.resolve()
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if (
            candidate.is_file()
            and "tool" in _read_toml(candidate)
            and ("pylive" in _read_toml(candidate)["tool"])
        ):
            return directory
    raise ConfigError(
        f"no pyproject.toml with a [tool.pylive] table in {start} or its parents; "
        "run `pylive init DIR` to create an app, or cd into one"
    )


def load_config(start: Path | None = None, *, stage: str | None = None) -> AppConfig:
    root = find_project_root(start or Path.cwd())
    table = _read_toml(root / "pyproject.toml")["tool"]["pylive"]
    if not isinstance(table, dict):
        raise ConfigError(f"{root / 'pyproject.toml'}: [tool.pylive] must be a table")
    unknown = sorted(set(table) - _KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"{root / 'pyproject.toml'}: unknown key(s) in [tool.pylive]: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_KNOWN_KEYS))})"
        )
    name = _require_str(table, "name", root)
    if not _NAME_RE.match(name):
        raise ConfigError(
            f"{root / 'pyproject.toml'}: [tool.pylive] name {name!r} must start with a letter and "
            "hold only letters, digits and '-' (at most 40 characters)"
        )
    stacks_module = _optional_str(table, "stacks", root) or DEFAULT_STACKS_MODULE
    if not _MODULE_RE.match(stacks_module):
        raise ConfigError(
            f"{root / 'pyproject.toml'}: [tool.pylive] stacks {stacks_module!r} "
            "is not a Python module name"
        )
    qualifier = _optional_str(table, "bootstrap_qualifier", root) or DEFAULT_BOOTSTRAP_QUALIFIER
    if not _QUALIFIER_RE.match(qualifier):
        raise ConfigError(
            f"{root / 'pyproject.toml'}: [tool.pylive] bootstrap_qualifier {qualifier!r} must be "
            "1 to 10 lower-case letters or digits (the qualifier your CDK bootstrap stack was "
            "created with; it is part of the bootstrap bucket's name, and S3 bucket names are "
            "lower-case)"
        )
    return AppConfig(
        root=root,
        name=name,
        region=_optional_str(table, "region", root)
        or os.environ.get("AWS_REGION")
        or DEFAULT_REGION,
        stage=stage or _optional_str(table, "stage", root) or DEFAULT_STAGE,
        stacks_module=stacks_module,
        python=_interpreter(root, _optional_str(table, "python", root)),
        bootstrap_qualifier=qualifier,
    )


def _interpreter(root: Path, configured: str | None) -> Path:
    if configured:
        # Not resolved: a venv's python is a symlink, and only run by its own path does it
        # use the venv's packages.
        path = Path(os.path.normpath(root / configured))
        if not path.exists():
            raise ConfigError(f"[tool.pylive] python = {configured!r}: {path} does not exist")
        return path
    for candidate in (root / ".venv" / "bin" / "python", root / "venv" / "bin" / "python"):
        if candidate.exists():
            return candidate
    return Path(sys.executable)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _require_str(table: dict[str, Any], key: str, root: Path) -> str:
    value = _optional_str(table, key, root)
    if not value:
        raise ConfigError(f'{root / "pyproject.toml"}: [tool.pylive] needs `{key} = "..."`')
    return value


def _optional_str(table: dict[str, Any], key: str, root: Path) -> str | None:
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(
            f"{root / 'pyproject.toml'}: [tool.pylive] {key} must be a string, "
            f"not {type(value).__name__}"
        )
    return value
