"""The AWS CDK toolkit (the ``aws-cdk`` npm package), pinned and installed on first use.

pylive synthesizes the cloud assembly itself and hands it to the toolkit for ``deploy``,
``destroy`` and ``bootstrap``. The toolkit is installed with npm into
``~/.cache/pylive/cdk-cli-<version>`` (``$PYLIVE_CACHE_DIR``, else ``$XDG_CACHE_HOME/pylive``)
the first time it is needed; ``PYLIVE_CDK_CLI`` may point at another ``cdk`` executable.
It always runs without a shell.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pylive.cdk.node import NodeRuntime, find_node
from pylive.errors import PyliveError
from pylive.streamed import run_streamed

CDK_CLI_VERSION = "2.1148.1"
INSTALL_TIMEOUT = 300.0
RUN_TIMEOUT = 3 * 3600.0  # CloudFormation itself gives up on most operations within hours
_STOP_GRACE = 15.0

# Keep the toolkit quiet and offline apart from AWS: no version check against npm, no
# telemetry, no Node.js deprecation banners. Users may override every one of them.
_TOOLKIT_ENV_DEFAULTS = {
    "CDK_DISABLE_VERSION_CHECK": "1",
    "CDK_DISABLE_CLI_TELEMETRY": "true",
    "NODE_NO_WARNINGS": "1",
}


class ToolkitError(PyliveError):
    """The CDK toolkit could not be installed or started."""

    exit_code = 5


@dataclass(frozen=True)
class ToolkitRun:
    returncode: int
    lines: list[str]


def cache_dir() -> Path:
    configured = os.environ.get("PYLIVE_CACHE_DIR")
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "pylive"


def toolkit_command(on_status: Callable[[str], None] = lambda _: None) -> list[str]:
    """The command that runs the pinned CDK toolkit, installing it first when it is absent."""
    configured = os.environ.get("PYLIVE_CDK_CLI")
    if configured:
        path = shutil.which(configured)
        if path is None:
            raise ToolkitError(f"PYLIVE_CDK_CLI={configured!r} was not found")
        return [path]
    node = find_node()
    node.report(on_status)
    home = cache_dir() / f"cdk-cli-{CDK_CLI_VERSION}"
    entry = home / "node_modules" / "aws-cdk" / "bin" / "cdk"
    if not entry.is_file():
        on_status(f"installing the AWS CDK toolkit {CDK_CLI_VERSION} into {home} (once)")
        install_toolkit(home, node)
    return [node.node, str(entry)]


def install_toolkit(home: Path, node: NodeRuntime) -> None:
    """``npm install aws-cdk@<version>`` into a temporary directory renamed to ``home``, so a
    half-finished install is never used."""
    home.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{home.name}-", dir=home.parent))
    command = [
        *node.npm_command(), "install", "--prefix", str(staging), "--no-audit", "--no-fund",
        "--no-save", "--loglevel=error", f"aws-cdk@{CDK_CLI_VERSION}",
    ]  # fmt: skip
    try:
        try:
            done = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT,
                check=False,
                env=node.env(dict(os.environ)),
            )
        except subprocess.TimeoutExpired:
            raise ToolkitError(
                f"installing the AWS CDK toolkit with npm did not finish within "
                f"{INSTALL_TIMEOUT:.0f} s"
            ) from None
        if done.returncode != 0:
            detail = _last_line(done.stderr) or _last_line(done.stdout)
            raise ToolkitError(
                f"`npm install aws-cdk@{CDK_CLI_VERSION}` failed (exit code {done.returncode})"
                + (f": {detail}" if detail else "")
            )
        try:
            staging.rename(home)
        except OSError:
            if not home.is_dir():  # not installed concurrently by another pylive
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def toolkit_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**_TOOLKIT_ENV_DEFAULTS, **os.environ, **(extra or {})}
    env.pop("FORCE_COLOR", None)
    if not env.get("PYLIVE_CDK_CLI"):
        env = find_node().env(env)  # the toolkit's own child processes run `node` by name
    return env


def run_toolkit(
    command: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    on_line: Callable[[str], None],
    timeout: float = RUN_TIMEOUT,
) -> ToolkitRun:
    """Run the toolkit, passing each output line (stdout and stderr, in order) to ``on_line``
    as it arrives. Ctrl-C stops the toolkit (SIGINT, then SIGKILL) and is re-raised."""
    try:
        run = run_streamed(
            command,
            cwd=cwd,
            env=env,
            on_line=on_line,
            timeout=timeout,
            own_session=True,  # Ctrl-C reaches pylive only; pylive stops the toolkit
            stop_grace=_STOP_GRACE,
        )
    except OSError as exc:
        raise ToolkitError(f"cannot run the AWS CDK toolkit ({command[0]}): {exc}") from None
    if run.timed_out:
        raise ToolkitError(f"the AWS CDK toolkit did not finish within {timeout:.0f} s")
    return ToolkitRun(returncode=run.returncode, lines=run.lines)


def _last_line(text: str) -> str:
    return next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "")
