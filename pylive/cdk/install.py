"""Installing a bundle's requirements for Lambda without Docker: wheels only, with uv (or
pip) told the runtime's platform, and one line that says why an install failed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pylive.cdk.lambda_platform import BundleError, Platform
from pylive.cdk.requirements import Requirements

INSTALL_TIMEOUT = 600.0


def install(requirements: Requirements, target: Path, platform: Platform, *, label: str) -> None:
    """Install ``requirements`` into ``target`` for ``platform``; wheels only."""
    with tempfile.NamedTemporaryFile(
        "w", suffix="-requirements.txt", dir=target.parent, delete=False
    ) as f:
        f.write(requirements.text)
        requirements_path = Path(f.name)
    try:
        command = installer_command(requirements_path, target, platform)
        try:
            done = subprocess.run(
                command,
                cwd=requirements.directory,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise BundleError(
                f"installing the requirements of {label} ({requirements.source}) did not "
                f"finish within {INSTALL_TIMEOUT:.0f} s"
            ) from None
    finally:
        requirements_path.unlink(missing_ok=True)
    if done.returncode != 0:
        reason = explain_failure(done.stdout + "\n" + done.stderr, platform)
        raise BundleError(
            f"cannot bundle {label} for Lambda {platform.describe()}: {reason} "
            f"(requirements from {requirements.source})"
        )


def installer_command(requirements: Path, target: Path, platform: Platform) -> list[str]:
    """uv when it is available (``PYLIVE_INSTALLER=pip`` forces pip), else pip."""
    choice = os.environ.get("PYLIVE_INSTALLER", "")
    uv = find_uv() if choice != "pip" else None
    if choice == "uv" and uv is None:
        raise BundleError("PYLIVE_INSTALLER=uv, but uv is not installed (`pip install uv`)")
    if uv is not None:
        return [
            uv, "pip", "install", "--target", str(target),
            "--python", sys.executable,
            "--python-version", platform.python_version,
            "--python-platform", platform.uv_platform,
            "--only-binary", ":all:", "--no-progress",
            "-r", str(requirements),
        ]  # fmt: skip
    platforms = [arg for tag in platform.pip_platforms for arg in ("--platform", tag)]
    return [
        sys.executable, "-c", _PIP_FOR_LAMBDA, json.dumps(platform.marker_environment()),
        "install", "--target", str(target),
        *platforms, "--only-binary=:all:",
        "--python-version", platform.python_version, "--implementation", "cp",
        "--no-compile", "--disable-pip-version-check", "--no-input",
        "-r", str(requirements),
    ]  # fmt: skip


# pip evaluates environment markers (direct and transitive) for the machine it runs on,
# whatever --platform and --python-version say; uv evaluates them for its target. So pip
# runs with its marker environment replaced by the Lambda runtime's (the first argument).
_PIP_FOR_LAMBDA = """
import json, sys
from pip._vendor.packaging import markers
lambda_environment = json.loads(sys.argv.pop(1))
markers.default_environment = lambda: dict(lambda_environment)
from pip._internal.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def find_uv() -> str | None:
    """uv next to the running interpreter (installed into the same venv), else on PATH."""
    beside = Path(sys.executable).parent / "uv"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("uv")


_UV_BECAUSE = re.compile(r"Because (?:only )?(?P<what>.+?)(?:,| and you require| we can)")
_PIP_MISSING = re.compile(r"No matching distribution found for (?P<what>\S+)")


def explain_failure(output: str, platform: Platform) -> str:
    """One line from the installer's output: which requirement failed, and why."""
    text = " ".join(output.split())
    found = _UV_BECAUSE.search(text)
    if found:
        what = found.group("what").strip()
        name = what.split(" ", 1)[0]
        if "no usable wheels" in what or "no wheels" in what:
            return (
                f"{name} has no wheel for this platform and only wheels can be installed "
                "without Docker; pick a version that publishes manylinux wheels"
            )
        if "was not found" in what:
            return f"{name} was not found in the package index"
        return what
    found = _PIP_MISSING.search(text)
    if found:
        return (
            f"no wheel of {found.group('what')} for this platform (it does not exist, or only "
            "publishes a source distribution; only wheels can be installed without Docker)"
        )
    for line in reversed(output.splitlines()):
        line = line.strip()
        if line.lower().startswith(("error", "\u00d7")) or "error:" in line.lower():
            return line.removeprefix("ERROR: ").removeprefix("error: ")
    last = next((line.strip() for line in reversed(output.splitlines()) if line.strip()), "")
    return last or "the installer failed"
