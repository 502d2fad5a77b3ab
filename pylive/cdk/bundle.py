"""A function's Lambda asset: its source directory plus its requirements, installed for the
Lambda platform (manylinux wheels of the function's architecture and Python version), with no
Docker.

Which requirements a function gets: :mod:`pylive.cdk.requirements`; how they are installed:
:mod:`pylive.cdk.install`.

Bundles are cached under ``<app>/.pylive/bundles/<hash>/`` by a hash of the source files, the
requirements text, the platform and the Python version: a cache hit installs nothing. A bundle
directory only appears (by an atomic rename) once it is complete.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pylive.cdk.install import install
from pylive.cdk.lambda_platform import BundleError, Platform
from pylive.cdk.requirements import (
    REQUIREMENTS_FILE,
    Requirements,
    app_relative,
    find_requirements,
)
from pylive.cdk.shipped import handlers_dir, runtime_files

__all__ = [
    "Bundle",
    "BundleError",
    "Platform",
    "Requirements",
    "bundle_function",
    "bundle_router",
    "bundle_stub",
    "find_requirements",
]

BUNDLE_FORMAT = "4"  # bump when the layout of a bundle changes, to invalidate the cache
BUNDLES_DIR = Path(".pylive") / "bundles"
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
            install(requirements, building, platform, label=app_relative(code_dir, root))
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
                f"the bundle of {app_relative(code_dir, root)} is {size / 2**20:.0f} MB unzipped; "
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
        where = app_relative(code_dir, root)
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


# -- helpers -----------------------------------------------------------------------------------


def _excluded(name: str) -> bool:
    return name.startswith(".") or any(fnmatch.fnmatchcase(name, p) for p in EXCLUDES)


def _remove_caches(directory: Path) -> None:
    (directory / ".lock").unlink(missing_ok=True)  # uv's lock file in the target
    for cache in list(directory.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)


def _tree_size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
