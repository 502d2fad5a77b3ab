"""The checks of a ``Function``'s settings: handler, runtime, architecture, memory, timeout.

``Function`` runs them before it creates anything, and ``Api`` and the synth process use the
handler's parsing, so a setting Lambda would refuse fails at synth with one message.
"""

from __future__ import annotations

import re
from typing import Final

import aws_cdk as cdk

ARCHITECTURES: Final = ("x86_64", "arm64")
# The oldest Python runtime the dev-mode stub (and pylive's runtime modules) support; older
# ones are past Lambda's deprecation (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html).
OLDEST_RUNTIME: Final = "python3.9"

MIN_MEMORY, MAX_MEMORY = 128, 10240
MAX_TIMEOUT = 900

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
# "dir/sub/module.func" or "package.module.func" (both forms Lambda's Python runtime accepts)
_HANDLER_RE = re.compile(rf"^(?:[A-Za-z0-9_-]+/)*{_IDENT}(?:\.{_IDENT})*\.{_IDENT}$")
_RUNTIME_RE = re.compile(r"^python3\.\d+$")


def split_handler(handler: str) -> tuple[str, str]:
    """``"functions/hello.handler"`` -> ``("functions/hello", "handler")``, after validation."""
    if not isinstance(handler, str) or not _HANDLER_RE.fullmatch(handler):
        raise ValueError(
            f"handler {handler!r} must look like 'path/module.func' "
            "(for example 'functions/hello.handler': function `handler` in functions/hello.py)"
        )
    module, _, func = handler.rpartition(".")
    return module, func


def handler_module_file(handler: str) -> str:
    """The handler's module as a relative file path: ``"functions/hello.py"``."""
    module, _ = split_handler(handler)
    directory, _, dotted = module.rpartition("/")
    relative = dotted.replace(".", "/") + ".py"
    return f"{directory}/{relative}" if directory else relative


def check_runtime(runtime: str) -> None:
    """A Python runtime Lambda still supports, such as ``"python3.12"``."""
    if not isinstance(runtime, str) or not _RUNTIME_RE.fullmatch(runtime):
        raise ValueError(f"runtime {runtime!r} must be a Python runtime such as 'python3.12'")
    if python_version(runtime) < python_version(OLDEST_RUNTIME):
        raise ValueError(
            f"runtime {runtime!r} is older than {OLDEST_RUNTIME}, the oldest Python "
            "runtime pylive supports (Lambda no longer supports older ones); use "
            "'python3.12' or newer"
        )


def check_architecture(architecture: str) -> None:
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"architecture {architecture!r} must be one of: {', '.join(ARCHITECTURES)}"
        )


def check_memory(name: str, value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not MIN_MEMORY <= value <= MAX_MEMORY
    ):
        raise ValueError(
            f"{name} {value!r} must be a whole number of MB from {MIN_MEMORY} to {MAX_MEMORY}"
        )


def python_version(runtime: str) -> tuple[int, ...]:
    """``"python3.12"`` -> ``(3, 12)``."""
    return tuple(int(part) for part in runtime.removeprefix("python").split("."))


def timeout_seconds(timeout: int | float | cdk.Duration) -> float:
    if isinstance(timeout, cdk.Duration):
        try:
            seconds: float = timeout.to_seconds()
        except RuntimeError as exc:
            raise ValueError(f"timeout: {str(exc).splitlines()[0]}") from None
    elif isinstance(timeout, int | float) and not isinstance(timeout, bool):
        seconds = timeout
    else:
        raise ValueError(f"timeout {timeout!r} must be a number of seconds or a Duration")
    if not 1 <= seconds <= MAX_TIMEOUT or seconds != int(seconds):
        raise ValueError(
            f"timeout {seconds!r} s must be a whole number of seconds from 1 to {MAX_TIMEOUT}"
        )
    return float(seconds)
