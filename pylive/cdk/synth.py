"""Synthesize the app's stacks into an :class:`AppManifest`, in a short-lived process.

Running aws-cdk-lib costs a second or more and hundreds of MB (it drives a Node.js process),
so it never happens in the long-running runner: ``python -m pylive.cdk.synth_main`` does the work
and writes the manifest, and the result is cached in ``.pylive/manifest.json`` under a hash of
the infra code. A cache hit only hashes a few files and reads one JSON file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pylive
from pylive.cdk.assembly_dir import assembly_dir
from pylive.cdk.manifest import AppManifest
from pylive.cdk.node import find_node
from pylive.config import AppConfig
from pylive.errors import SynthError, UsageError

# local: manifest for local runs; dev: stubs in place of functions; deploy: bundled code;
# debug: only the stage's DebugStack (the relay that `pylive dev` needs in the account).
MODES = ("local", "dev", "deploy", "debug")
DEBUG_STACK_ID = "Debug"
# Debug mode: who may be the stage's runner (comma-separated ARNs; `pylive dev` passes the
# identity that deploys the debug stack, plus any the developer set in this variable).
RUNNER_PRINCIPALS_ENV = (
    "PYLIVE_RUNNER_PRINCIPALS"  # the DebugStack's id in the stage: stack <app>-<stage>-Debug
)
SYNTH_TIMEOUT = 300.0
MANIFEST_FILE = "manifest.json"
LOG_FILE = "synth.log"
WARNINGS_FILE = "synth-warnings.txt"
CDK_OUT_DIR = "cdk.out"

# Lines the synth process writes on stderr for the runner; everything else only goes to the log.
WARNING_PREFIX = "pylive:warning: "
ERROR_PREFIX = "pylive:error: "

# jsii prints a large banner for Node.js releases it calls end-of-life; the variable takes a
# comma-separated list of major versions, so naming them all avoids running `node --version`.
_NODE_MAJORS = ",".join(str(major) for major in range(14, 41))

PYLIVE_DIR = Path(pylive.__file__).resolve().parent
# pylive's own code that shapes a manifest: a change to any of it invalidates cached ones,
# even while the version number stays the same.
_PYLIVE_SOURCES = (
    "cdk/synth_main.py",
    "cdk/manifest.py",
    "vpn/__init__.py",  # stacks read the VPN's certificate ARNs through it
    *sorted(f"constructs/{p.name}" for p in (PYLIVE_DIR / "constructs").glob("*.py")),
)


_STAGE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,39}$")
MAX_STACK_NAME = 128


def validate_stage(stage: str) -> str:
    """``stage`` when it can be part of CloudFormation stack names, else a :class:`UsageError`."""
    if not _STAGE_RE.fullmatch(stage):
        raise UsageError(
            f"stage {stage!r} must start with a letter and hold only letters, digits and '-' "
            "(at most 40 characters)"
        )
    return stage


def stage_id(app_name: str, stage: str) -> str:
    """The id of the ``cdk.Stage`` a deployed app lives in, and the prefix of its stack names:
    ``<app>-<stage>`` (stacks are named ``<app>-<stage>-<StackId>``)."""
    return f"{app_name}-{validate_stage(stage)}"


@dataclass(frozen=True)
class SynthResult:
    manifest: AppManifest
    reused: bool  # True when the cached manifest was still valid and no process ran
    warnings: tuple[str, ...] = ()


def _print_warning(line: str) -> None:
    print(f"pylive: warning: {line}", file=sys.stderr)


def synthesize(
    config: AppConfig,
    *,
    mode: str = "local",
    force: bool = False,
    timeout: float = SYNTH_TIMEOUT,
    on_warning: Callable[[str], None] = _print_warning,
) -> SynthResult:
    """The app's manifest: the cached one when the infra code is unchanged, else a fresh synth.

    Warnings from synthesis (environment values that cannot be resolved locally...) go to
    ``on_warning`` (stderr by default), also when the cached manifest is reused.
    """
    if mode not in MODES:
        raise SynthError(f"unknown synth mode {mode!r} (expected one of: {', '.join(MODES)})")
    state_dir = config.state_dir
    manifest_path = state_dir / MANIFEST_FILE
    warnings_path = state_dir / WARNINGS_FILE
    # Hashed before synthesis starts: a save made while it runs must not look synthesized.
    digest = source_hash(config, mode)

    if not force:
        cached = _read_cached(manifest_path)
        if cached is not None and cached.source_hash == _with_helpers(
            digest, config, cached.infra_files
        ):
            warnings = _read_warnings(warnings_path)
            for line in warnings:
                on_warning(line)
            return SynthResult(manifest=cached, reused=True, warnings=warnings)

    node = find_node()
    node.report(on_warning)
    manifest, warnings = _synth_process(
        config, mode, timeout=timeout, env=node.env(dict(os.environ))
    )
    digest = _with_helpers(digest, config, manifest.infra_files)
    manifest = dataclasses.replace(manifest, source_hash=digest)
    for line in warnings:
        on_warning(line)
    if warnings:
        warnings_path.write_text("".join(f"{line}\n" for line in warnings))
    else:
        warnings_path.unlink(missing_ok=True)
    manifest.write(manifest_path)
    return SynthResult(manifest=manifest, reused=False, warnings=warnings)


def synthesize_assembly(
    config: AppConfig,
    cdk_out: Path,
    *,
    mode: str = "deploy",
    env: dict[str, str] | None = None,
    timeout: float = SYNTH_TIMEOUT,
    on_warning: Callable[[str], None] = _print_warning,
    legacy_ok: bool = False,
) -> SynthResult:
    """Synthesize the app for ``mode`` into the cloud assembly directory ``cdk_out``, its
    stacks in the ``cdk.Stage`` ``<app>-<stage>`` (stack names ``<app>-<stage>-<StackId>``).

    Nothing is cached here (deploy mode bundles the functions' code, which has caches of its
    own); ``env`` adds environment variables for the synth process (CDK_DEFAULT_ACCOUNT...).
    ``legacy_ok``: ``cdk_out`` is pylive's own (in ``.pylive/stages``), where an assembly
    without pylive's marker was written by an older pylive.
    """
    if mode not in MODES:
        raise SynthError(f"unknown synth mode {mode!r} (expected one of: {', '.join(MODES)})")
    node = find_node()
    node.report(on_warning)
    # No stale stacks or assets from an older run, but only what pylive wrote is removed:
    # anything else in the directory is refused (see pylive.cdk.assembly_dir).
    with assembly_dir(cdk_out, legacy_ok=legacy_ok):
        manifest, warnings = _synth_process(
            config,
            mode,
            cdk_out=cdk_out,
            env=node.env({**os.environ, **(env or {})}),
            timeout=timeout,
            staged=True,
        )
    for line in warnings:
        on_warning(line)
    return SynthResult(manifest=manifest, reused=False, warnings=warnings)


def _synth_process(
    config: AppConfig,
    mode: str,
    *,
    cdk_out: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float,
    staged: bool = False,
) -> tuple[AppManifest, tuple[str, ...]]:
    """Run ``python -m pylive.cdk.synth_main``: the manifest it wrote and its warnings."""
    state_dir = config.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    out_path = state_dir / f"synth-{os.getpid()}.json"
    log_path = state_dir / LOG_FILE
    command = [
        sys.executable, "-m", "pylive.cdk.synth_main",
        "--root", str(config.root), "--mode", mode, "--out", str(out_path),
        "--stage", config.stage,
        *(["--cdk-out", str(cdk_out)] if cdk_out is not None else []),
        *(["--staged"] if staged else []),
    ]  # fmt: skip
    try:
        stdout, stderr, returncode = _run(command, config.root, timeout, env)
        _write_log(log_path, command, returncode, stdout, stderr)
        if returncode is None:
            raise SynthError(
                f"synthesizing the app's stacks did not finish within {timeout:.0f} s and was "
                f"stopped (full log: {_display(log_path)})"
            )
        if returncode != 0 or not out_path.is_file():
            raise SynthError(_failure_line(stderr, returncode, log_path))
        manifest = AppManifest.read(out_path)
    finally:
        out_path.unlink(missing_ok=True)
    warnings = tuple(
        line[len(WARNING_PREFIX) :]
        for line in stderr.splitlines()
        if line.startswith(WARNING_PREFIX)
    )
    return manifest, warnings


def source_hash(config: AppConfig, mode: str) -> str:
    """A hash of everything the manifest depends on: pylive itself, the app root, the mode,
    the stage, pyproject.toml and the stacks module's source (its whole tree when it is a
    package)."""
    h = hashlib.sha256()

    def feed(label: str, data: bytes) -> None:
        h.update(f"{label}\0{len(data)}\0".encode())
        h.update(data)

    feed("pylive-version", pylive.__version__.encode())
    for name in _PYLIVE_SOURCES:
        feed(f"pylive/{name}", _read_bytes(PYLIVE_DIR / name))
    feed("root", str(config.root).encode())  # the manifest holds absolute code paths
    feed("mode", mode.encode())
    feed("stage", config.stage.encode())
    feed("pyproject.toml", _read_bytes(config.root / "pyproject.toml"))
    for path in sorted(_stacks_sources(config)):
        feed(path.relative_to(config.root).as_posix(), _read_bytes(path))
    return h.hexdigest()


def infra_sources(config: AppConfig, manifest: AppManifest | None = None) -> list[Path]:
    """The app's files a manifest depends on: pyproject.toml, the stacks module's source and
    the app modules it imported when ``manifest`` was synthesized (a watcher re-synthesizes
    when one of them changes)."""
    helpers = _helper_files(config, manifest.infra_files) if manifest is not None else []
    return [config.root / "pyproject.toml", *sorted(_stacks_sources(config)), *helpers]


def _helper_files(config: AppConfig, infra_files: Iterable[str]) -> list[Path]:
    """``infra_files`` (relative to the root) without the stacks module's own files."""
    stacks = set(_stacks_sources(config))
    return sorted(p for p in (config.root / f for f in infra_files) if p not in stacks)


def _with_helpers(digest: str, config: AppConfig, infra_files: Iterable[str]) -> str:
    """``digest`` extended with the content of the infra helper modules (unchanged when there
    are none)."""
    helpers = _helper_files(config, infra_files)
    if not helpers:
        return digest
    h = hashlib.sha256(digest.encode())
    for path in helpers:
        data = _read_bytes(path)
        h.update(f"{path.relative_to(config.root).as_posix()}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def _stacks_sources(config: AppConfig) -> Iterator[Path]:
    parts = config.stacks_module.split(".")
    # parent packages' __init__ files run when the module is imported
    for depth in range(1, len(parts)):
        init = config.root.joinpath(*parts[:depth], "__init__.py")
        if init.is_file():
            yield init
    package = config.root.joinpath(*parts)
    if (package / "__init__.py").is_file():
        for path in package.rglob("*.py"):
            if "__pycache__" not in path.parts:
                yield path
    else:
        yield package.with_suffix(".py")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b"\0missing"


def _read_cached(path: Path) -> AppManifest | None:
    try:
        return AppManifest.read(path)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _read_warnings(path: Path) -> tuple[str, ...]:
    try:
        return tuple(line for line in path.read_text().splitlines() if line)
    except OSError:
        return ()


def _synth_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **(extra or {})}
    env.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", _NODE_MAJORS)
    env.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    env.setdefault("JSII_DEPRECATED", "quiet")
    env["PYTHONUNBUFFERED"] = "1"
    # make `-m pylive.cdk.synth_main` importable even when pylive runs from a source checkout
    pylive_parent = str(PYLIVE_DIR.parent)
    existing = env.get("PYTHONPATH", "")
    if pylive_parent not in existing.split(os.pathsep):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (existing, pylive_parent) if p)
    return env


def _run(
    command: list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None
) -> tuple[str, str, int | None]:
    """Run the synth process; the return code is None when it timed out (and was killed)."""
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            env=_synth_env(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return _text(exc.stdout), _text(exc.stderr), None
    return done.stdout, done.stderr, done.returncode


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def _write_log(
    path: Path, command: list[str], returncode: int | None, stdout: str, stderr: str
) -> None:
    status = "timed out" if returncode is None else f"exit code {returncode}"
    path.write_text(
        f"$ {' '.join(command)}\n# {status}\n\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    )


def _failure_line(stderr: str, returncode: int | None, log_path: Path) -> str:
    """One line for the user: where and what failed in their stacks code."""
    log_note = f"(full log: {_display(log_path)})"
    for line in reversed(stderr.splitlines()):
        if line.startswith(ERROR_PREFIX):
            try:
                error = json.loads(line[len(ERROR_PREFIX) :])
            except ValueError:
                break
            message = str(error.get("message", "")) or "(no message)"
            kind = str(error.get("type", ""))
            what = f"{kind}: {message}" if kind else message
            location = str(error.get("location", ""))
            return f"synth failed: {location + ': ' if location else ''}{what} {log_note}"
    last = next((line.strip() for line in reversed(stderr.splitlines()) if line.strip()), "")
    detail = f": {last}" if last else ""
    return f"synth failed: the synth process exited with code {returncode}{detail} {log_note}"


def _display(path: Path) -> str:
    """``path`` relative to the working directory when it is below it, else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
