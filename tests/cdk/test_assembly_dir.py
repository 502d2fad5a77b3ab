"""`pylive synth -o DIR` removes only what an earlier synthesis wrote there; anything else in
DIR is refused before a single file is touched."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from apphelpers import assert_one_line_error, pylive_cmd

from pylive.cdk.assembly_dir import MARKER, assembly_dir
from pylive.errors import UsageError

APP = Path(__file__).parents[1] / "fixtures" / "apps" / "deployable"


def tree(directory: Path) -> dict[str, bytes | None]:
    """Every path below ``directory`` with its content (None for directories)."""
    return {
        str(p.relative_to(directory)): None if p.is_dir() else p.read_bytes()
        for p in sorted(directory.rglob("*"))
    }


def pylive(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        pylive_cmd(*args), cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture()
def app(tmp_path: Path) -> Path:
    return Path(shutil.copytree(APP, tmp_path / "shop", ignore=shutil.ignore_patterns(".pylive")))


def test_synth_into_the_app_itself_is_refused_and_deletes_nothing(app: Path) -> None:
    # The app holds a file named like a cloud assembly's manifest, and a git repository.
    (app / "manifest.json").write_text('{"version": "1"}')
    (app / ".git").mkdir()
    (app / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    before = tree(app)
    result = pylive("synth", "-o", ".", cwd=app)
    assert_one_line_error(result, 2, "holds files pylive did not write")
    assert ".git" in result.stderr and "manifest.json" in result.stderr
    assert tree(app) == before


def test_synth_into_a_file_or_below_one_is_one_line(app: Path, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("keep me")
    assert_one_line_error(pylive("synth", "-o", str(tmp_path / "a-file"), cwd=app), 2, "a-file")
    result = pylive("synth", "-o", str(tmp_path / "a-file" / "out"), cwd=app)
    assert_one_line_error(result, 2, "a-file")
    assert (tmp_path / "a-file").read_text() == "keep me"


def test_an_assembly_the_cdk_cli_wrote_is_not_pylives(app: Path, tmp_path: Path) -> None:
    out = tmp_path / "cdk.out"
    out.mkdir()
    (out / "manifest.json").write_text('{"version": "36.0.0", "artifacts": {}}')
    (out / "cdk.out").write_text('{"version": "36.0.0"}')
    before = tree(out)
    assert_one_line_error(pylive("synth", "-o", str(out), cwd=app), 2, "did not write")
    assert tree(out) == before


def test_removes_exactly_what_it_wrote(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with assembly_dir(out):
        (out / "manifest.json").write_text("{}")
        (out / "asset.abc").mkdir()
        (out / "asset.abc" / "handler.py").write_text("")
    marker = json.loads((out / MARKER).read_text())
    assert marker["entries"] == ["asset.abc", "manifest.json"] and marker["complete"]
    with assembly_dir(out):
        assert sorted(p.name for p in out.iterdir()) == [MARKER]  # the old run's files are gone
        (out / "manifest.json").write_text("{}")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match=r"notes\.txt"), assembly_dir(out):
        pytest.fail("must not get here")
    assert (out / "notes.txt").read_text() == "mine" and (out / "manifest.json").exists()


def test_a_failed_synthesis_still_records_what_it_wrote(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), assembly_dir(out):
        (out / "half-written").write_text("")
        raise RuntimeError("synth failed")
    assert json.loads((out / MARKER).read_text())["entries"] == ["half-written"]
    with assembly_dir(out):
        assert not (out / "half-written").exists()


def test_a_forged_or_foreign_marker_proves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "src").mkdir()
    (out / MARKER).write_text(json.dumps({"kind": "something else", "entries": ["src"]}))
    with pytest.raises(UsageError), assembly_dir(out):
        pass
    (out / MARKER).write_text(
        json.dumps({"kind": "pylive cloud assembly", "token": "x" * 32, "entries": ["../src"]})
    )
    with pytest.raises(UsageError), assembly_dir(out):
        pass
    assert (out / "src").is_dir()


def test_a_symlinked_entry_is_unlinked_not_followed(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "data").write_text("keep")
    out = tmp_path / "out"
    with assembly_dir(out):
        (out / "link").symlink_to(precious, target_is_directory=True)
    with assembly_dir(out):
        assert not (out / "link").exists()
    assert (precious / "data").read_text() == "keep"


def test_legacy_assemblies_only_in_pylives_own_directory(tmp_path: Path) -> None:
    out = tmp_path / "cdk.out"
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    with pytest.raises(UsageError), assembly_dir(out):
        pass
    with assembly_dir(out, legacy_ok=True):
        assert not (out / "manifest.json").exists()


@pytest.mark.slow
def test_synth_twice_into_one_directory_and_secrets_stay_out(app: Path, tmp_path: Path) -> None:
    functions = app / "functions"
    (functions / "server.key").write_text("-----BEGIN RSA PRIVATE KEY-----\n")
    (functions / ".env").write_text("DB_PASSWORD=hunter2\n")
    (functions / "vpn.ovpn").write_text("<key>\n")
    out = tmp_path / "assembly"
    first = pylive("synth", "-o", str(out), cwd=app)
    assert first.returncode == 0, first.stderr
    for name in ("server.key", ".env", "vpn.ovpn"):
        assert name in first.stdout + first.stderr  # named in a warning
    bundled = {p.name for p in out.rglob("*") if "asset." in str(p)}
    assert "orders.py" in bundled
    assert not bundled & {"server.key", ".env", "vpn.ovpn"}
    # A second synthesis replaces the first one's files...
    second = pylive("synth", "-o", str(out), cwd=app)
    assert second.returncode == 0, second.stderr
    # ...but once the user keeps a file of their own there, the directory is refused.
    (out / "notes.md").write_text("mine")
    assert_one_line_error(pylive("synth", "-o", str(out), cwd=app), 2, "notes.md")
    assert (out / "notes.md").read_text() == "mine" and (out / "manifest.json").is_file()
