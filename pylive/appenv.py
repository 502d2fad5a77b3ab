"""The app's own environment: ``<app>/.venv``, which the workers run on.

It holds what a function has in Lambda and nothing of pylive's own tools:

- the app's requirements, found as a function's bundle finds them: ``requirements.txt`` next
  to pyproject.toml, else ``[project] dependencies`` without the infrastructure packages,
  and the ``requirements.txt`` of each function whose code directory has its own;
- the ``dev`` dependency group of pyproject.toml (``[dependency-groups]``, PEP 735: test
  tools such as pytest), which is never bundled;
- boto3, which the Lambda Python runtime provides;
- pylive's runtime modules (``pylive.db``...) as the small ``pylive`` package a bundle
  carries, so ``from pylive import db`` works as it does deployed.

``pylive init`` creates it with uv; ``pylive dev`` syncs it when those inputs change. A stamp
in the environment holds a hash of the inputs, so an unchanged app costs one hash of a few
small files. Installs try uv's cache alone first (``--offline``: works with no network when
the cache is warm), then the package index.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import time
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pylive.cdk.manifest import AppManifest
from pylive.cdk.requirements import find_requirements
from pylive.cdk.shipped import runtime_files
from pylive.config import AppConfig
from pylive.errors import PyliveError
from pylive.streamed import run_streamed

ENV_DIR = ".venv"
STAMP_FILE = ".pylive-env.json"
SHIM_MARKER = "PYLIVE_RUNTIME"  # in site-packages/pylive/ when pylive wrote that package
LAMBDA_RUNTIME_PACKAGES = ("boto3",)  # what the Lambda Python runtime has preinstalled
DEV_GROUP = "dev"
INSTALL_TIMEOUT = 900.0
REQUIREMENTS_FILE = "requirements.txt"
_NO_MODULE = re.compile(r"No module named '([A-Za-z0-9_.]+)'")


class EnvError(PyliveError):
    """The app's environment could not be created or synced."""

    exit_code = 6


@dataclass(frozen=True)
class EnvPlan:
    """What the environment should hold."""

    root: Path
    code_dirs: tuple[Path, ...]  # the functions' code directories (other than the root)
    requirements_files: tuple[Path, ...]  # installed with -r: the root's, then the functions'
    packages: tuple[str, ...]  # everything else, as requirement strings
    source: str  # where the app's requirements come from, for messages

    @property
    def venv(self) -> Path:
        return self.root / ENV_DIR

    @property
    def python(self) -> Path:
        return venv_python(self.venv)

    def dependency_file(self, code_dir: Path | None = None) -> str:
        """The file a package missing for the function in ``code_dir`` belongs in: the one
        its bundle is built from."""
        if code_dir is not None and code_dir != self.root:
            own = code_dir / REQUIREMENTS_FILE
            if own.is_file():
                return _relative(own, self.root)
        if (self.root / REQUIREMENTS_FILE).is_file():
            return REQUIREMENTS_FILE
        return "pyproject.toml"

    def inputs(self) -> list[Path]:
        """The files whose change calls for a sync (a function's requirements.txt also
        before it exists)."""
        return [
            self.root / "pyproject.toml",
            self.root / REQUIREMENTS_FILE,
            *(d / REQUIREMENTS_FILE for d in self.code_dirs),
        ]

    def digest(self) -> str:
        h = hashlib.sha256()
        h.update(f"{sys.version_info[:2]}\0{self.packages}\0".encode())
        for path in self.requirements_files:
            h.update(str(path).encode() + b"\0" + _read(path))
        for module, relative_path in runtime_files():
            h.update(str(relative_path).encode() + b"\0" + _read(module))
        return h.hexdigest()


def plan(root: Path, code_dirs: Iterable[str | Path] = ()) -> EnvPlan:
    """What ``root/.venv`` should hold for functions whose code is in ``code_dirs`` (see the
    module's docstring): every requirements file a bundle of theirs is built from."""
    root = root.resolve()
    others = tuple(sorted({Path(d).resolve() for d in code_dirs} - {root}))
    files = [root / REQUIREMENTS_FILE] if (root / REQUIREMENTS_FILE).is_file() else []
    if files:
        app: list[str] = []  # installed with -r, so its options and includes keep working
    else:
        # the bundle's rule 3: pyproject.toml's dependencies without the infra packages
        text = find_requirements(root, root).text
        app = [line.strip() for line in text.splitlines() if line.strip()]
    files += [d / REQUIREMENTS_FILE for d in others if (d / REQUIREMENTS_FILE).is_file()]
    packages = [*app, *dependency_group(root / "pyproject.toml", DEV_GROUP)]
    packages += [p for p in LAMBDA_RUNTIME_PACKAGES if p not in packages]
    names = [_relative(f, root) for f in files]
    if not (root / REQUIREMENTS_FILE).is_file():
        names.insert(0, "pyproject.toml [project] dependencies")
    return EnvPlan(root, others, tuple(files), tuple(packages), " + ".join(names))


def managed(root: Path, python: Path) -> bool:
    """True when ``root/.venv`` was created by pylive (so pylive keeps it in sync) and
    ``python``, the workers' interpreter, is its interpreter."""
    venv = root / ENV_DIR
    same = os.path.normpath(os.path.abspath(python)) == os.path.normpath(venv_python(venv))
    return same and (venv / STAMP_FILE).is_file()


def in_sync(env: EnvPlan) -> bool:
    try:
        stamp = json.loads((env.venv / STAMP_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(stamp, dict) and stamp.get("digest") == env.digest()


def create(root: Path, *, on_status: Callable[[str], None] = lambda _: None) -> EnvPlan:
    """Create ``root/.venv`` on pylive's own Python version and install the app's
    environment into it."""
    env = plan(root)
    uv = find_uv()
    interpreter = sys.executable
    started = time.perf_counter()
    on_status(f"creating {ENV_DIR} (Python {sys.version_info[0]}.{sys.version_info[1]}) with uv")
    _run(
        [uv, "venv", "--quiet", "--python", interpreter, str(env.venv)],
        cwd=root,
        on_line=on_status,
        what=f"creating {ENV_DIR}",
    )
    # pylive keeps this environment from now on, also when the install below fails: the next
    # `pylive dev` tries it again.
    (env.venv / STAMP_FILE).write_text(json.dumps({"digest": ""}))
    try:
        install(env, on_status=on_status)
    except EnvError as exc:
        raise EnvError(f"{exc}; the app is created, and `pylive dev` will try again") from None
    on_status(f"{ENV_DIR} ready in {time.perf_counter() - started:.1f} s")
    return env


def sync(
    root: Path,
    code_dirs: Iterable[str | Path] = (),
    *,
    on_status: Callable[[str], None] = lambda _: None,
    force: bool = False,
) -> bool:
    """Install what changed into a pylive-managed ``root/.venv``; True when it installed."""
    env = plan(root, code_dirs)
    if not force and in_sync(env):
        return False
    install(env, on_status=on_status)
    return True


def prepare_for(
    config: AppConfig, manifest: AppManifest, *, on_status: Callable[[str], None]
) -> None:
    """:func:`prepare` for an app's configured interpreter and its synthesized functions."""
    prepare(config.root, config.python, manifest.code_dirs(), on_status=on_status)


def prepare(
    root: Path,
    python: Path,
    code_dirs: Iterable[str | Path] = (),
    *,
    on_status: Callable[[str], None],
) -> None:
    """Before workers start on ``python``: bring a pylive-managed environment in line with
    the app's dependencies (nothing to do, and no process, when they are unchanged)."""
    if not managed(root, python):
        return
    env = plan(root, code_dirs)
    if in_sync(env):
        return
    started = time.perf_counter()
    try:
        install(env, on_status=on_status)
    except EnvError as exc:
        # The functions still run, on the environment as it is; a missing package shows as
        # an import error with its hint.
        on_status(f"warning: {exc}; the functions run on {ENV_DIR} as it is")
        return
    on_status(f"synced {ENV_DIR} with {env.source} in {time.perf_counter() - started:.1f} s")


def missing_module_hint(root: Path, python: Path, code_dir: str, message: str) -> str:
    """For an import error ``No module named 'x'`` of a module that is not the app's own:
    where to add it. Empty when it does not apply."""
    found = _NO_MODULE.search(message)
    if found is None:
        return ""
    top = found.group(1).split(".")[0]
    if (root / top).exists() or (root / f"{top}.py").exists():
        return ""  # the app's own module: a wrong path, not a missing package
    where = plan(root).dependency_file(Path(code_dir).resolve())
    if managed(root, python):
        return f"add the package that provides {top!r} to {where}; pylive dev installs it"
    return (
        f"add the package that provides {top!r} to {where} and install it into the "
        "interpreter the functions run on"
    )


def install(env: EnvPlan, *, on_status: Callable[[str], None] = lambda _: None) -> None:
    """Install the plan's packages (uv's cache alone first, then the index) and pylive's
    runtime modules, then write the stamp."""
    digest = env.digest()
    uv = find_uv()
    parts = [env.source] if env.requirements_files or _app_packages(env) else []
    if dependency_group(env.root / "pyproject.toml"):
        parts.append(f"[dependency-groups] {DEV_GROUP}")
    on_status(f"installing {' + '.join([*parts, 'boto3'])} into {ENV_DIR}")
    command = [uv, "pip", "install", "--python", str(env.python)]
    for path in env.requirements_files:
        command += ["-r", str(path)]
    command += list(env.packages)
    offline: list[str] = []
    try:
        _run([*command, "--offline"], cwd=env.root, on_line=offline.append, what="")
    except EnvError:
        _run(command, cwd=env.root, on_line=on_status, what=f"installing into {ENV_DIR}")
    else:
        for line in offline:  # uv's progress, shown once the cache alone was enough
            on_status(line)
    install_runtime(env.venv)
    stamp = {"digest": digest, "pylive": str(Path(__file__).resolve().parent)}
    (env.venv / STAMP_FILE).write_text(json.dumps(stamp))


def install_runtime(venv: Path) -> None:
    """pylive's runtime modules as the ``pylive`` package of the environment, unless a full
    pylive is installed there."""
    site = site_packages(venv)
    package = site / "pylive"
    if package.exists() and not (package / SHIM_MARKER).exists():
        return  # pylive itself is installed in this environment
    building = site / ".pylive-runtime-tmp"
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir()
    for module, relative_path in runtime_files():
        destination = building.joinpath(*relative_path.parts[1:])  # inside pylive/
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(module, destination)
    (building / SHIM_MARKER).write_text(
        "pylive's runtime modules, as a function's bundle carries them; written by pylive\n"
    )
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(package)
    building.rename(package)


def dependency_group(pyproject: Path, name: str = DEV_GROUP) -> list[str]:
    """The requirement strings of a PEP 735 dependency group (``include-group`` followed)."""
    try:
        with pyproject.open("rb") as f:
            groups = tomllib.load(f).get("dependency-groups", {})
    except (OSError, tomllib.TOMLDecodeError):
        return []
    found: list[str] = []

    def collect(group: str, seen: tuple[str, ...]) -> None:
        entries = groups.get(group, []) if isinstance(groups, dict) else []
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, str):
                found.append(entry)
            elif isinstance(entry, dict) and isinstance(entry.get("include-group"), str):
                included = entry["include-group"]
                if included not in seen:
                    collect(included, (*seen, included))

    collect(name, (name,))
    return found


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def site_packages(venv: Path) -> Path:
    if os.name == "nt":
        return venv / "Lib" / "site-packages"
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if not found:
        raise EnvError(f"{venv} has no site-packages folder; delete it and run `pylive init`")
    return found[-1]


def find_uv() -> str:
    """uv, which pylive depends on: the one installed with it, else uv on PATH."""
    try:
        import uv

        return str(uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        pass
    found = shutil.which("uv")
    if found is None:
        raise EnvError("uv is needed to create the app's environment: `pip install uv`")
    return found


def _app_packages(env: EnvPlan) -> list[str]:
    extra = {*dependency_group(env.root / "pyproject.toml"), *LAMBDA_RUNTIME_PACKAGES}
    return [p for p in env.packages if p not in extra]


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b"\0missing"


def _run(command: list[str], *, cwd: Path, on_line: Callable[[str], None], what: str) -> None:
    """Run uv, passing each line it prints to ``on_line``; an :class:`EnvError` naming
    ``what`` and uv's reason when it fails."""
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("VIRTUAL_ENV", None)  # uv must not install into the shell's active environment

    def show(line: str) -> None:
        if line.strip():
            on_line(f"  {line.strip()}")

    try:
        run = run_streamed(command, cwd=cwd, env=env, on_line=show, timeout=INSTALL_TIMEOUT)
    except OSError as exc:
        raise EnvError(f"cannot run uv ({command[0]}): {exc}") from None
    if run.timed_out:
        raise EnvError(f"{what} did not finish within {INSTALL_TIMEOUT:.0f} s")
    if run.returncode != 0:
        detail = _uv_failure([line for line in run.lines if line.strip()])
        raise EnvError(
            f"{what} failed (uv exit code {run.returncode})" + (f": {detail}" if detail else "")
        )


def _uv_failure(lines: list[str]) -> str:
    """The line of uv's output that says what went wrong: why no solution was found, else its
    error with its cause, else its last line."""
    text = [line.strip().lstrip("\u2570\u2500\u25b6\u00d7\u2502 ").strip() for line in lines]
    for line in text:
        if line.startswith("Because "):
            return line
    for index, line in enumerate(text):
        if line.startswith(("error:", "No solution found")):
            cause = next((c for c in text[index + 1 :] if c.startswith("cause:")), "")
            message = line.removeprefix("error:").strip()
            return f"{message} ({cause.removeprefix('cause:').strip()})" if cause else message
    return next((line for line in reversed(text) if line), "")
