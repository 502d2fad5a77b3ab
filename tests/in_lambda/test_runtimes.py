"""What the stub ships (stub.py and pylive's runtime modules) runs on every Python runtime
pylive deploys it to: the oldest is python3.9, and the bundle must import and work there.
The router's bundle (router.py and the same modules) is held to the same rule."""

from __future__ import annotations

import ast
import glob
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pylive.cdk.bundle import bundle_router, bundle_stub
from pylive.cdk.shipped import runtime_files
from pylive.constructs.function_settings import OLDEST_RUNTIME

SHIPPED = [path for path, _ in runtime_files()]
OLDEST = tuple(int(p) for p in OLDEST_RUNTIME.removeprefix("python").split("."))

# Names that only exist from Python 3.10 or 3.11 on: importing one fails on older runtimes.
_NEWER_TYPING = {"Never", "Self", "TypeAlias", "ParamSpec", "TypeGuard", "Concatenate",
                 "LiteralString", "Required", "NotRequired", "Unpack", "TypeVarTuple",
                 "assert_never", "assert_type", "reveal_type", "dataclass_transform"}  # fmt: skip
_NEWER_MODULES = {"tomllib"}
_NEWER_FROM = {
    ("datetime", "UTC"), ("enum", "StrEnum"), ("itertools", "pairwise"),
    ("contextlib", "chdir"), ("asyncio", "TaskGroup"), ("asyncio", "timeout"),
}  # fmt: skip


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _annotation_nodes(tree: ast.Module) -> set[int]:
    """ids of the nodes inside annotations (never evaluated: the modules use PEP 563)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        annotations: list[ast.expr | None] = []
        if isinstance(node, ast.AnnAssign | ast.arg):
            annotations.append(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            annotations.append(node.returns)
        for annotation in annotations:
            if annotation is not None:
                inside.update(id(n) for n in ast.walk(annotation))
    return inside


def newer_python_uses(source: str) -> list[str]:
    """What in ``source`` needs a Python newer than the oldest runtime, as "line: what"."""
    tree = ast.parse(source, feature_version=OLDEST)  # syntax (match, except*...) too new
    problems: list[str] = []
    guarded = _type_checking_lines(tree)
    in_annotation = _annotation_nodes(tree)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.ImportFrom) and line not in guarded:
            for alias in node.names:
                if node.module == "typing" and alias.name in _NEWER_TYPING:
                    problems.append(f"{line}: typing.{alias.name}")
                if (node.module, alias.name) in _NEWER_FROM:
                    problems.append(f"{line}: {node.module}.{alias.name}")
        if isinstance(node, ast.Import):
            problems += [f"{line}: {a.name}" for a in node.names if a.name in _NEWER_MODULES]
        if isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            keywords = {k.arg for k in node.keywords}
            if name == "zip" and "strict" in keywords:
                problems.append(f"{line}: zip(strict=...)")
            if name.endswith("dataclass") and keywords & {"slots", "kw_only", "match_args"}:
                problems.append(f"{line}: dataclass({', '.join(sorted(keywords))})")
            if name in {"aiter", "anext"}:
                problems.append(f"{line}: {name}()")
        if (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.BitOr)
            and id(node) not in in_annotation
            and any(_looks_like_a_type(side) for side in (node.left, node.right))
        ):
            problems.append(f"{line}: runtime X | Y union: {ast.unparse(node)}")
    return problems


def _looks_like_a_type(node: ast.expr) -> bool:
    builtins = {"int", "float", "str", "bytes", "bool", "list", "dict", "tuple", "None"}
    if isinstance(node, ast.Constant) and node.value is None:
        return True
    if isinstance(node, ast.Name):
        return node.id in builtins or node.id[:1].isupper()
    return isinstance(node, ast.Attribute) and node.attr[:1].isupper()


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_what_the_stub_ships_uses_nothing_newer_than_the_oldest_runtime(path: Path) -> None:
    assert newer_python_uses(path.read_text()) == []


def test_the_router_bundle_is_what_the_checks_cover(tmp_path: Path) -> None:
    """Every Python file of the router's bundle (it installs nothing) is checked above."""
    bundle = bundle_router(tmp_path)
    shipped = sorted(p.relative_to(bundle.path).as_posix() for p in bundle.path.rglob("*.py"))
    assert "pylive/in_lambda/protocol/__init__.py" in shipped and "router.py" in shipped
    assert set(shipped) <= {"router.py", *(str(name) for _, name in runtime_files())}
    for relative in shipped:
        assert newer_python_uses((bundle.path / relative).read_text()) == [], relative


def test_the_checker_finds_what_older_runtimes_lack() -> None:
    source = (
        "from __future__ import annotations\n"
        "from typing import Never, TypeAlias\n"
        "Json: TypeAlias = int | str\n"
        "def f(x: int | None) -> Never:\n"
        "    return isinstance(x, int | float), zip(a, b, strict=True)\n"
    )
    found = newer_python_uses(source)
    assert [p.split(":")[0] for p in found] == ["2", "2", "3", "5", "5"], found


def _interpreter(version: str) -> str | None:
    """A working CPython ``version`` on this machine (on PATH, from uv or pyenv), else None."""
    candidates = [shutil.which(f"python{version}")]
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    if Path(uv).is_file():
        done = subprocess.run(
            [uv, "python", "find", "--no-python-downloads", version],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        candidates.append(done.stdout.strip() if done.returncode == 0 else None)
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python")))
    for candidate in candidates:
        if candidate and _runs_version(candidate, version):
            return candidate
    return None


def _runs_version(python: str, version: str) -> bool:
    try:
        done = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except OSError:
        return False
    return done.returncode == 0 and done.stdout.strip() == version


_EXERCISE = """
import sys
sys.path.insert(0, sys.argv[1])
import stub
from pylive.in_lambda import protocol
invoke = protocol.Invoke("r1", "App/hello", 0, {"n": 1.5}, protocol.InvokeContext("a"),
                         environment={"TABLE": "t"})
assert protocol.decode(protocol.encode(invoke)) == invoke
parts = protocol.split(protocol.encode(protocol.Result("r1", "x" * 300000)), max_frame_bytes=32000)
feed = protocol.Reassembler()
results = [feed.feed(p) for p in parts]
assert results[-1] == protocol.Result("r1", "x" * 300000), results[-1]
print("ok", sys.version_info[:2])
"""


@pytest.mark.slow
@pytest.mark.parametrize("version", ["3.9", "3.10"])
def test_the_stub_bundle_imports_and_works_on_older_runtimes(version: str, tmp_path: Path) -> None:
    def stub() -> Path:
        (tmp_path / "pyproject.toml").write_text('[tool.pylive]\nname = "a"\n')
        return bundle_stub(tmp_path, runtime=f"python{version}").path

    _exercise(version, stub, _EXERCISE)


_ROUTER_EXERCISE = """
import sys
sys.path.insert(0, sys.argv[1])
compile(open(sys.argv[1] + "/router.py").read(), "router.py", "exec")
from pylive.in_lambda import protocol
for message in (protocol.Pong("p1"), protocol.Replaced("a", "s", "why"),
                protocol.WhoAmI("S1=", None, "no runner")):
    assert protocol.decode(protocol.encode(message)) == message
print("ok", sys.version_info[:2])
"""


@pytest.mark.slow
def test_the_router_bundle_works_on_the_oldest_runtime(tmp_path: Path) -> None:
    """What the router sends, encoded on the oldest runtime (boto3, which Lambda's runtime
    has, is not on this interpreter: router.py is compiled there, not imported)."""
    version = ".".join(map(str, OLDEST))
    _exercise(version, lambda: bundle_router(tmp_path).path, _ROUTER_EXERCISE)


def _exercise(version: str, bundle: Callable[[], Path], script: str) -> None:
    """Run ``script`` on CPython ``version`` with the directory ``bundle()`` builds as its
    first argument; skipped when this machine has no such Python."""
    python = _interpreter(version)
    if python is None:
        pytest.skip(f"no Python {version} on this machine (the static check above still runs)")
    done = subprocess.run(
        [python, "-I", "-c", script, str(bundle())],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("ok")
