"""Bundling a function for Lambda: source files, requirements installed for the Lambda
platform from local wheels (no network), the content-hash cache and installer errors."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from pylive import bundle as bundle_module
from pylive.bundle import (
    BundleError,
    Platform,
    bundle_function,
    find_requirements,
    source_files,
)

INSTALLERS = ["uv", "pip"]


def make_wheel(directory: Path, name: str, version: str) -> Path:
    """A pure-Python wheel (py3-none-any) holding one module ``<name>``."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": f"VERSION = {version!r}\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


def make_sdist(directory: Path, name: str, version: str) -> Path:
    """A source distribution only: no wheel for any platform."""
    sdist = directory / f"{name}-{version}.tar.gz"
    pkg_info = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    with tarfile.open(sdist, "w:gz") as tar:
        info = tarfile.TarInfo(f"{name}-{version}/PKG-INFO")
        info.size = len(pkg_info)
        tar.addfile(info, io.BytesIO(pkg_info))
    return sdist


@pytest.fixture(scope="module")
def links(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("links")
    make_wheel(directory, "purepkg", "1.0")
    make_wheel(directory, "otherpkg", "2.0")
    make_sdist(directory, "sdistonly", "1.0")
    return directory


@pytest.fixture()
def app(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    (root / "functions").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "a"\n\n[tool.pylive]\nname = "a"\n')
    (root / "functions" / "hello.py").write_text("def handler(event, context):\n    return 1\n")
    (root / "functions" / "__init__.py").write_text("")
    for noise in (".venv/lib/x.py", "tests/test_x.py", "functions/__pycache__/hello.pyc",
                  "node_modules/m.js", "cdk.out/t.json", ".env", ".git/HEAD"):  # fmt: skip
        (root / noise).parent.mkdir(parents=True, exist_ok=True)
        (root / noise).write_text("x")
    return root


def requirements(root: Path, links: Path, *lines: str) -> None:
    (root / "requirements.txt").write_text(
        "\n".join(["--no-index", f"--find-links {links}", *lines]) + "\n"
    )


def test_stdlib_function_bundles_its_source_without_an_install(
    app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundle_module, "install", _no_install)
    result = bundle_function(app, app)
    files = sorted(p.relative_to(result.path).as_posix() for p in result.path.rglob("*"))
    assert files == ["functions", "functions/__init__.py", "functions/hello.py", "pyproject.toml"]
    assert result.path == app / ".pylive" / "bundles" / result.digest
    assert not result.cached


@pytest.mark.parametrize("installer", INSTALLERS)
def test_requirements_are_installed_and_a_cache_hit_installs_nothing(
    app: Path, links: Path, installer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYLIVE_INSTALLER", installer)
    requirements(app, links, "purepkg==1.0", "otherpkg")
    first = bundle_function(app, app)
    assert not first.cached
    assert (first.path / "purepkg.py").read_text() == "VERSION = '1.0'\n"
    assert (first.path / "otherpkg.py").is_file()
    assert (first.path / "functions" / "hello.py").is_file()
    assert not list(first.path.rglob("__pycache__")) and not (first.path / ".lock").exists()

    monkeypatch.setattr(bundle_module, "install", _no_install)
    again = bundle_function(app, app)
    assert again == bundle_module.Bundle(path=first.path, digest=first.digest, cached=True)


def test_the_hash_follows_sources_requirements_and_platform(app: Path, links: Path) -> None:
    requirements(app, links, "purepkg==1.0")
    base = _digest(app)
    (app / "functions" / "hello.py").write_text("def handler(event, context):\n    return 2\n")
    edited = _digest(app)
    requirements(app, links, "purepkg==1.0", "otherpkg")
    more = _digest(app)
    arm = _digest(app, architecture="arm64")
    older = _digest(app, runtime="python3.11")
    assert len({base, edited, more, arm, older}) == 5
    (app / "tests" / "test_x.py").write_text("changed")  # excluded: no new bundle
    (app / "functions" / "__pycache__" / "hello.pyc").write_text("changed")
    assert _digest(app) == more


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_package_without_a_wheel_is_named_in_one_line(
    app: Path, links: Path, installer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYLIVE_INSTALLER", installer)
    requirements(app, links, "purepkg==1.0", "sdistonly==1.0")
    with pytest.raises(BundleError) as caught:
        bundle_function(app, app)
    message = str(caught.value)
    assert "\n" not in message
    assert "sdistonly" in message and "wheel" in message
    assert "python3.12/x86_64" in message and "requirements.txt" in message
    assert not (app / ".pylive" / "bundles").exists() or not [
        p for p in (app / ".pylive" / "bundles").iterdir() if not p.name.startswith(".")
    ]


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_missing_version_is_named(
    app: Path, links: Path, installer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYLIVE_INSTALLER", installer)
    requirements(app, links, "purepkg==9.9")
    with pytest.raises(BundleError, match="purepkg"):
        bundle_function(app, app)


def test_which_requirements_a_function_gets(app: Path) -> None:
    (app / "pyproject.toml").write_text(
        '[project]\nname = "a"\ndependencies = ["pylive>=0.1", "aws-cdk-lib", "Constructs",'
        ' "requests>=2"]\n'
    )
    from_pyproject = find_requirements(app / "functions", app)
    assert from_pyproject.text == "requests>=2\n"
    assert from_pyproject.source == "pyproject.toml [project] dependencies"

    (app / "requirements.txt").write_text("six\n")
    assert find_requirements(app / "functions", app).source == "requirements.txt"
    (app / "functions" / "requirements.txt").write_text("attrs\n")
    own = find_requirements(app / "functions", app)
    assert (own.text, own.source, own.directory) == (
        "attrs\n",
        "functions/requirements.txt",
        app / "functions",
    )


def test_excluded_files_are_never_bundled(app: Path) -> None:
    files = {p.as_posix() for p in source_files(app)}
    assert files == {"pyproject.toml", "functions/__init__.py", "functions/hello.py"}


def test_platform_tags() -> None:
    new = Platform.for_function("python3.12", "x86_64")
    assert new.pip_platforms == ["manylinux2014_x86_64", "manylinux_2_28_x86_64"]
    assert new.uv_platform == "x86_64-manylinux_2_28"
    arm = Platform.for_function("python3.13", "arm64")
    assert arm.pip_platforms == ["manylinux2014_aarch64", "manylinux_2_28_aarch64"]
    old = Platform.for_function("python3.11", "x86_64")  # Amazon Linux 2: glibc 2.26
    assert old.pip_platforms == ["manylinux2014_x86_64"]
    assert old.uv_platform == "x86_64-manylinux2014"
    with pytest.raises(BundleError):
        Platform.for_function("nodejs20.x", "x86_64")


def _digest(app: Path, **platform: str) -> str:
    p = Platform.for_function(
        platform.get("runtime", "python3.12"), platform.get("architecture", "x86_64")
    )
    files = list(source_files(app))
    return bundle_module.bundle_hash(app, files, find_requirements(app, app), p)


def _no_install(*args: object, **kwargs: object) -> None:
    raise AssertionError("nothing should be installed")
