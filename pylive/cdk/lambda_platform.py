"""The Lambda platform a bundle targets: its Python version, machine and glibc, as the
installer's platform tags and environment markers name them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pylive.errors import PyliveError

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
