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

from pylive.cdk import bundle as bundle_module
from pylive.cdk.bundle import (
    BundleError,
    Platform,
    bundle_function,
    find_requirements,
    source_files,
)

INSTALLERS = ["uv", "pip"]


def make_wheel(
    directory: Path,
    name: str,
    version: str,
    *,
    platform: str = "any",
    requires: tuple[str, ...] = (),
) -> Path:
    """A wheel (py3-none-``platform``) holding one module ``<name>``, depending on
    ``requires`` (``Requires-Dist`` lines, markers allowed)."""
    dist = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {requirement}\n" for requirement in requires)
    files = {
        f"{name}.py": f"VERSION = {version!r}\n",
        f"{dist}/METADATA": metadata,
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        f"Tag: py3-none-{platform}\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    wheel = directory / f"{name}-{version}-py3-none-{platform}.whl"
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
    # manylinux wheels of the glibc versions around Lambda's: Amazon Linux 2 has 2.26,
    # Amazon Linux 2023 (python3.12 and newer) 2.34
    for glibc in ("2_24", "2_26", "2_27", "2_31", "2_34", "2_35"):
        make_wheel(directory, f"glibc{glibc}", "1.0", platform=f"manylinux_{glibc}_x86_64")
    # markers that only Lambda's platform satisfies, not this machine's (Python 3.11 here)
    make_wheel(
        directory,
        "markerpkg",
        "1.0",
        requires=(
            'otherpkg; python_version >= "3.12" and sys_platform == "linux"',
            'purepkg; sys_platform == "win32" or python_version < "3.12"',
        ),
    )
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


@pytest.mark.parametrize("installer", INSTALLERS)
@pytest.mark.parametrize(
    ("runtime", "fits", "too_new"),
    [
        ("python3.12", ["2_24", "2_26", "2_27", "2_31", "2_34"], ["2_35"]),  # AL2023
        ("python3.11", ["2_24", "2_26"], ["2_27", "2_31"]),  # Amazon Linux 2
    ],
)
def test_every_manylinux_wheel_the_runtimes_glibc_runs_is_accepted(
    app: Path,
    links: Path,
    installer: str,
    runtime: str,
    fits: list[str],
    too_new: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if installer == "uv" and runtime == "python3.11":
        # uv's only target below manylinux_2_28 is manylinux_2_17 (2014): for Amazon Linux 2
        # it cannot accept wheels of glibc 2.18 to 2.26 (pip can)
        fits = []
    monkeypatch.setenv("PYLIVE_INSTALLER", installer)
    for tag in fits:
        requirements(app, links, f"glibc{tag}")
        bundle = bundle_function(app, app, runtime=runtime)
        assert (bundle.path / f"glibc{tag}.py").is_file(), tag
    for tag in too_new:
        requirements(app, links, f"glibc{tag}")
        with pytest.raises(BundleError, match=f"glibc2[-_]{tag[2:]}"):
            bundle_function(app, app, runtime=runtime)


@pytest.mark.parametrize("installer", INSTALLERS)
def test_markers_are_evaluated_for_lambdas_platform_not_this_machine(
    app: Path, links: Path, installer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Direct and transitive requirements: Lambda's python3.12 on Linux, not the Python
    that runs pylive (3.11 here) nor its operating system."""
    monkeypatch.setenv("PYLIVE_INSTALLER", installer)
    requirements(
        app,
        links,
        "markerpkg",
        'glibc2_24; python_version >= "3.12" and platform_machine == "x86_64"',
        'sdistonly; python_version < "3.12" or sys_platform != "linux"',
    )
    bundle = bundle_function(app, app, runtime="python3.12")
    installed = {p.stem for p in bundle.path.glob("*.py")}
    assert {"markerpkg", "otherpkg", "glibc2_24"} <= installed
    assert "purepkg" not in installed


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
    new = Platform.for_function("python3.12", "x86_64")  # Amazon Linux 2023: glibc 2.34
    assert new.pip_platforms[0] == "manylinux_2_34_x86_64"
    assert {"manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
            "manylinux2010_x86_64", "manylinux1_x86_64"} <= set(new.pip_platforms)  # fmt: skip
    assert "manylinux_2_35_x86_64" not in new.pip_platforms
    assert new.uv_platform == "x86_64-manylinux_2_34"
    arm = Platform.for_function("python3.13", "arm64")
    assert arm.pip_platforms[0] == "manylinux_2_34_aarch64"
    assert "manylinux2014_aarch64" in arm.pip_platforms
    assert not any(tag.startswith(("manylinux1", "manylinux2010")) for tag in arm.pip_platforms)
    old = Platform.for_function("python3.11", "x86_64")  # Amazon Linux 2: glibc 2.26
    assert old.pip_platforms[0] == "manylinux_2_26_x86_64"
    assert "manylinux_2_27_x86_64" not in old.pip_platforms
    assert old.uv_platform == "x86_64-manylinux2014"
    assert new.marker_environment()["python_version"] == "3.12"
    assert arm.marker_environment()["platform_machine"] == "aarch64"
    assert old.marker_environment()["sys_platform"] == "linux"
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
