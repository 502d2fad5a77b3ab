"""Which requirements a function's bundle gets (the first that exists):

1. ``requirements.txt`` in the function's code directory;
2. ``requirements.txt`` in the app root (next to pyproject.toml);
3. ``[project] dependencies`` of the app's pyproject.toml, without the packages that only the
   infrastructure code needs (pylive, aws-cdk-lib, constructs...).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

REQUIREMENTS_FILE = "requirements.txt"
# Packages an app's pyproject.toml may list for its infrastructure code; never bundled from it.
INFRA_PACKAGES = frozenset({"pylive", "aws-cdk-lib", "constructs", "aws-cdk", "jsii"})
_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class Requirements:
    """What to install: the requirements text and where it came from."""

    text: str
    source: str  # "functions/requirements.txt", "pyproject.toml [project] dependencies"...
    directory: Path  # relative paths in the text (--find-links ./wheels) resolve from here

    @property
    def empty(self) -> bool:
        return not any(_is_requirement_line(line) for line in self.text.splitlines())


def find_requirements(code_dir: Path, root: Path) -> Requirements:
    """The function's requirements, by the rules in this module's docstring."""
    for directory in dict.fromkeys((code_dir, root)):
        path = directory / REQUIREMENTS_FILE
        if path.is_file():
            return Requirements(
                text=path.read_text(), source=app_relative(path, root), directory=directory
            )
    return Requirements(
        text="".join(f"{dep}\n" for dep in _project_dependencies(root / "pyproject.toml")),
        source="pyproject.toml [project] dependencies",
        directory=root,
    )


def _project_dependencies(pyproject: Path) -> list[str]:
    try:
        with pyproject.open("rb") as f:
            project = tomllib.load(f).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return []
    deps = project.get("dependencies", []) if isinstance(project, dict) else []
    return [
        dep
        for dep in deps
        if isinstance(dep, str) and _canonical(_requirement_name(dep)) not in INFRA_PACKAGES
    ]


def _requirement_name(line: str) -> str:
    found = _NAME_RE.match(line)
    return found.group(1) if found else ""


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _is_requirement_line(line: str) -> bool:
    stripped = line.split("#", 1)[0].strip()
    return bool(stripped) and not stripped.startswith("-")


def app_relative(path: Path, root: Path) -> str:
    try:
        relative = path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
    return relative if relative != "." else "the app root's code"
