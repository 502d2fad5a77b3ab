"""A function's Lambda asset: its source directory plus its requirements, installed for the
Lambda platform (manylinux wheels of the function's architecture and Python version), with no
Docker.

Which requirements a function gets (the first that exists):

1. ``requirements.txt`` in the function's code directory;
2. ``requirements.txt`` in the app root (next to pyproject.toml);
3. ``[project] dependencies`` of the app's pyproject.toml, without the packages that only the
   infrastructure code needs (pylive, aws-cdk-lib, constructs...).

Bundles are cached under ``<app>/.pylive/bundles/<hash>/`` by a hash of the source files, the
requirements text, the platform and the Python version: a cache hit installs nothing. A bundle
directory only appears (by an atomic rename) once it is complete.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pylive.cdk.shipped import handlers_dir, runtime_files
from pylive.errors import PyliveError

BUNDLE_FORMAT = "4"  # bump when the layout of a bundle changes, to invalidate the cache
BUNDLES_DIR = Path(".pylive") / "bundles"
REQUIREMENTS_FILE = "requirements.txt"
INSTALL_TIMEOUT = 600.0
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024  # Lambda's limit for a function's unzipped code

# Never part of a function's code: hidden entries (.git, .venv, .env...) and these names.
EXCLUDES = (
    "venv",
    "__pycache__",
    "*.pyc",
    "tests",
    "cdk.out",
    "node_modules",
)
# Private keys and secrets: never part of a bundle, whatever directory they are in. Each one
# left out is named in a warning (a key next to the code is usually a mistake to fix).
SECRETS = (
    ".env*", "*.env", "*.key", "*.pem", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.ovpn",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", ".netrc", ".pgpass", "credentials",
)  # fmt: skip
WARNING_PREFIX = "pylive:warning: "  # what the synth process passes on to the user
# The part of pylive that runs inside Lambda (pylive.in_lambda, see pylive.cdk.shipped) ships
# as a small `pylive` package in every bundle whose code imports pylive.
STUB_REQUIREMENTS = "websockets>=13\n"
STUB_SOURCE_DIR = Path(".pylive") / "stub-src"
ROUTER_REQUIREMENTS = "# nothing: boto3 is part of the Lambda Python runtime\n"
ROUTER_SOURCE_DIR = Path(".pylive") / "router-src"
_IMPORTS_PYLIVE = re.compile(rb"^\s*(from|import)\s+pylive\b", re.MULTILINE)

# Packages an app's pyproject.toml may list for its infrastructure code; never bundled from it.
INFRA_PACKAGES = frozenset({"pylive", "aws-cdk-lib", "constructs", "aws-cdk", "jsii"})

# Lambda's Python 3.12+ runtimes run on Amazon Linux 2023, older ones on Amazon Linux 2
# (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html), whose glibc is 2.34
# and 2.26 (https://docs.aws.amazon.com/linux/al2023/ug/glibc-gcc-and-binutils.html): a
# manylinux_2_N wheel runs there when N is at most that minor version.
AL2023_GLIBC: tuple[int, int] = (2, 34)
AL2_GLIBC: tuple[int, int] = (2, 26)
# The legacy manylinux names of glibc versions (PEP 600); 1 and 2010 exist for x86 only.
_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
_FIRST_GLIBC_MINOR = {"x86_64": 5, "aarch64": 17}  # the oldest manylinux tag of each machine
# uv's --python-platform targets below manylinux_2_28 stop at manylinux_2_17 (2014).
_UV_MANYLINUX_MINORS = (17, 28, *range(31, 41))
_ARCH = {"x86_64": "x86_64", "arm64": "aarch64"}
_RUNTIME_RE = re.compile(r"^python(3\.\d+)$")
_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


class BundleError(PyliveError):
    """A function's code and requirements could not be bundled for Lambda."""

    exit_code = 3


@dataclass(frozen=True)
class Platform:
    """The Lambda platform a bundle targets."""

    python_version: str  # "3.12"
    architecture: str  # "x86_64" | "arm64"

    @classmethod
    def for_function(cls, runtime: str, architecture: str) -> Platform:
        found = _RUNTIME_RE.fullmatch(runtime)
        if not found:
            raise BundleError(f"runtime {runtime!r} is not a Python runtime such as 'python3.12'")
        if architecture not in _ARCH:
            raise BundleError(f"architecture {architecture!r} must be one of: x86_64, arm64")
        return cls(python_version=found.group(1), architecture=architecture)

    @property
    def machine(self) -> str:
        return _ARCH[self.architecture]

    @property
    def glibc(self) -> tuple[int, int]:
        """The glibc version of the runtime's Amazon Linux."""
        python = tuple(int(p) for p in self.python_version.split("."))
        return AL2023_GLIBC if python >= (3, 12) else AL2_GLIBC

    @property
    def pip_platforms(self) -> list[str]:
        """``--platform`` values for pip: every manylinux tag the runtime's glibc runs,
        newest first. pip takes each literally (``manylinux_2_28`` does not imply 2_27),
        so all of them are listed, with the legacy names of 2_17, 2_12 and 2_5."""
        tags: list[str] = []
        major, newest = self.glibc
        for minor in range(newest, _FIRST_GLIBC_MINOR[self.machine] - 1, -1):
            tags.append(f"manylinux_{major}_{minor}_{self.machine}")
            legacy = _LEGACY_MANYLINUX.get(minor)
            if legacy and (legacy == "manylinux2014" or self.machine == "x86_64"):
                tags.append(f"{legacy}_{self.machine}")
        return tags

    @property
    def uv_platform(self) -> str:
        """``--python-platform`` for uv (it accepts every older manylinux tag too): the
        newest target uv knows that the runtime's glibc runs."""
        minor = max(m for m in _UV_MANYLINUX_MINORS if m <= self.glibc[1])
        name = "manylinux2014" if minor == 17 else f"manylinux_2_{minor}"
        return f"{self.machine}-{name}"

    def marker_environment(self) -> dict[str, str]:
        """The values of environment markers (PEP 508) in this Lambda runtime, so that
        requirements are chosen for it rather than for the machine that bundles."""
        return {
            "implementation_name": "cpython",
            "implementation_version": f"{self.python_version}.0",
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": f"{self.python_version}.0",
            "platform_python_implementation": "CPython",
            "python_version": self.python_version,
            "sys_platform": "linux",
        }

    def describe(self) -> str:
        return f"python{self.python_version}/{self.architecture} ({self.pip_platforms[0]})"


@dataclass(frozen=True)
class Requirements:
    """What to install: the requirements text and where it came from."""

    text: str
    source: str  # "functions/requirements.txt", "pyproject.toml [project] dependencies"...
    directory: Path  # relative paths in the text (--find-links ./wheels) resolve from here

    @property
    def empty(self) -> bool:
        return not any(_is_requirement_line(line) for line in self.text.splitlines())


@dataclass(frozen=True)
class Bundle:
    path: Path  # the complete asset directory
    digest: str  # its content hash (also its directory name)
    cached: bool  # True when it already existed and nothing was installed


def bundle_function(
    code_dir: Path, root: Path, *, runtime: str = "python3.12", architecture: str = "x86_64"
) -> Bundle:
    """The asset directory of a function whose code is ``code_dir`` in the app at ``root``."""
    platform = Platform.for_function(runtime, architecture)
    code_dir, root = code_dir.resolve(), root.resolve()
    if not code_dir.is_dir():
        raise BundleError(f"code directory {code_dir} does not exist")
    requirements = find_requirements(code_dir, root)
    files = list(source_files(code_dir))
    _warn_secrets(code_dir, root)
    shipped = _pylive_runtime_files(code_dir, files)
    digest = bundle_hash(code_dir, files, requirements, platform, shipped)
    cache = root / BUNDLES_DIR
    target = cache / digest
    if target.is_dir():
        return Bundle(path=target, digest=digest, cached=True)

    cache.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".building-{digest[:12]}-", dir=cache))
    try:
        if not requirements.empty:
            install(requirements, building, platform, label=_display(code_dir, root))
        _remove_caches(building)
        for relative in files:
            destination = building / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(code_dir / relative, destination)
        for module, relative_path in shipped:
            destination = building / relative_path
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(module, destination)
        size = _tree_size(building)
        if size > MAX_UNZIPPED_BYTES:
            raise BundleError(
                f"the bundle of {_display(code_dir, root)} is {size / 2**20:.0f} MB unzipped; "
                f"Lambda allows {MAX_UNZIPPED_BYTES // 2**20} MB (requirements from "
                f"{requirements.source})"
            )
        try:
            building.rename(target)
        except OSError:
            if not target.is_dir():  # not a concurrent build of the same bundle
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return Bundle(path=target, digest=digest, cached=False)


def find_requirements(code_dir: Path, root: Path) -> Requirements:
    """The function's requirements, by the rules in this module's docstring."""
    for directory in dict.fromkeys((code_dir, root)):
        path = directory / REQUIREMENTS_FILE
        if path.is_file():
            return Requirements(
                text=path.read_text(), source=_display(path, root), directory=directory
            )
    return Requirements(
        text="".join(f"{dep}\n" for dep in _project_dependencies(root / "pyproject.toml")),
        source="pyproject.toml [project] dependencies",
        directory=root,
    )


def source_files(code_dir: Path) -> Iterator[Path]:
    """The function's source files, relative to ``code_dir``, without :data:`EXCLUDES`."""
    for current, dirs, names in os.walk(code_dir):
        dirs[:] = sorted(d for d in dirs if not _excluded(d))
        base = Path(current).relative_to(code_dir)
        for name in sorted(names):
            if not _excluded(name) and not _secret(name) and (Path(current) / name).is_file():
                yield base / name


def secret_files(code_dir: Path) -> Iterator[Path]:
    """The files under ``code_dir`` (relative) that :data:`SECRETS` keeps out of its bundle,
    in the directories a bundle takes files from."""
    for current, dirs, names in os.walk(code_dir):
        dirs[:] = sorted(d for d in dirs if not _excluded(d))
        base = Path(current).relative_to(code_dir)
        for name in sorted(names):
            if _secret(name):
                yield base / name


def _warn_secrets(code_dir: Path, root: Path) -> None:
    secrets = [path.as_posix() for path in secret_files(code_dir)]
    if secrets:
        where = _display(code_dir, root)
        print(
            f"{WARNING_PREFIX}left out of the bundle of {where} (private keys and secrets are "
            f"never bundled): {', '.join(secrets)}",
            file=sys.stderr,
            flush=True,
        )


def _secret(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in SECRETS)


def bundle_stub(root: Path, *, runtime: str = "python3.12", architecture: str = "x86_64") -> Bundle:
    """The dev-mode asset: the relay stub, pylive's protocol and ``websockets``."""
    return _bundle_relay_code(
        root,
        STUB_SOURCE_DIR,
        "stub.py",
        STUB_REQUIREMENTS,
        runtime=runtime,
        architecture=architecture,
    )


def bundle_router(root: Path, *, runtime: str = "python3.12") -> Bundle:
    """The debug stack's router with pylive's protocol; nothing to install (boto3 is part of
    the Lambda Python runtime)."""
    return _bundle_relay_code(
        root, ROUTER_SOURCE_DIR, "router.py", ROUTER_REQUIREMENTS, runtime=runtime
    )


def _bundle_relay_code(
    root: Path,
    source_dir: Path,
    module: str,
    requirements: str,
    *,
    runtime: str,
    architecture: str = "x86_64",
) -> Bundle:
    """``module`` of the relay's deployed code (see :mod:`pylive.cdk.shipped`), bundled with its
    ``requirements`` and pylive's runtime modules (it imports pylive)."""
    source = root.resolve() / source_dir
    source.mkdir(parents=True, exist_ok=True)
    wanted = {
        module: (handlers_dir() / module).read_bytes(),
        REQUIREMENTS_FILE: requirements.encode(),
    }
    for name, data in wanted.items():
        path = source / name
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
    for stale in source.iterdir():
        if stale.name in wanted:
            continue
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink()
    return bundle_function(source, root, runtime=runtime, architecture=architecture)


def _pylive_runtime_files(code_dir: Path, files: list[Path]) -> list[tuple[Path, PurePosixPath]]:
    """pylive's shipped modules when the function's code imports pylive, else nothing."""
    for relative in files:
        if relative.suffix == ".py" and _IMPORTS_PYLIVE.search((code_dir / relative).read_bytes()):
            return runtime_files()
    return []


def bundle_hash(
    code_dir: Path,
    files: list[Path],
    requirements: Requirements,
    platform: Platform,
    shipped: list[tuple[Path, PurePosixPath]] | None = None,
) -> str:
    h = hashlib.sha256()

    def feed(label: str, data: bytes) -> None:
        h.update(f"{label}\0{len(data)}\0".encode())
        h.update(data)

    feed("format", BUNDLE_FORMAT.encode())
    feed("platform", f"{platform.python_version} {platform.architecture}".encode())
    feed("requirements", requirements.text.encode())
    for relative in files:
        path = code_dir / relative
        mode = "x" if os.access(path, os.X_OK) else "-"
        feed(f"file:{relative.as_posix()}:{mode}", path.read_bytes())
    for module, relative_path in shipped or []:
        feed(f"shipped:{relative_path}", module.read_bytes())
    return h.hexdigest()[:32]


# -- installing --------------------------------------------------------------------------------


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


# -- helpers -----------------------------------------------------------------------------------


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


def _excluded(name: str) -> bool:
    return name.startswith(".") or any(fnmatch.fnmatchcase(name, p) for p in EXCLUDES)


def _remove_caches(directory: Path) -> None:
    (directory / ".lock").unlink(missing_ok=True)  # uv's lock file in the target
    for cache in list(directory.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)


def _tree_size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def _display(path: Path, root: Path) -> str:
    try:
        relative = path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
    return relative if relative != "." else "the app root's code"
