"""The directory a cloud assembly is synthesized into, and what pylive may delete in it.

A new synthesis must not find stale stacks or assets of an older one, so the directory is
emptied first; but only of what pylive wrote there itself. Each synthesis leaves a marker file
naming every entry it wrote (and a random token, so the marker is not a name a user would
pick by chance); the next one removes exactly those entries. A directory holding anything
else (an app's source, ``.git``, a cloud assembly the CDK CLI wrote) is refused with an error
naming what is in the way, and nothing in it is touched.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from pylive.errors import UsageError

MARKER = ".pylive-assembly.json"
_KIND = "pylive cloud assembly"


@contextmanager
def assembly_dir(directory: Path, *, legacy_ok: bool = False) -> Iterator[Path]:
    """Make ``directory`` ready for a synthesis and record what the synthesis wrote.

    Raises :class:`UsageError` before anything is deleted when ``directory`` is a file or
    holds entries pylive cannot prove it wrote. On exit (also after a failed synthesis) the
    marker lists every entry now in the directory: the directory held nothing else when the
    synthesis started, so they are all the synthesis's own.

    ``legacy_ok`` (for pylive's own state directory, which older versions filled without a
    marker) also accepts a directory holding a cloud assembly but no marker.
    """
    directory = directory.absolute()
    _clear(directory, legacy_ok=legacy_ok)
    token = secrets.token_hex(16)
    _write_marker(directory, token, complete=False)
    try:
        yield directory
    except BaseException:
        with suppress(UsageError):  # the synthesis's own error is the one to report
            _write_marker(directory, token, complete=False)
        raise
    _write_marker(directory, token, complete=True)


def _clear(directory: Path, *, legacy_ok: bool) -> None:
    if directory.is_symlink() and not directory.is_dir():
        raise UsageError(f"{directory} is a broken symbolic link; choose another directory")
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} is a file, not a directory; choose another directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        entries = sorted(p.name for p in directory.iterdir())
    except OSError as exc:
        raise UsageError(f"cannot use {directory}: {exc.strerror}") from None
    ours = _written_by_pylive(directory)
    if not ours and legacy_ok and MARKER not in entries and "manifest.json" in entries:
        ours = frozenset(entries)
    foreign = [name for name in entries if name != MARKER and name not in ours]
    if foreign:
        shown = ", ".join(foreign[:5]) + (
            f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        )
        raise UsageError(
            f"{directory} holds files pylive did not write ({shown}); pylive synthesizes only "
            "into an empty directory or one it wrote before: choose another directory"
        )
    for name in entries:
        if name == MARKER:
            continue
        path = directory / name
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError as exc:
            raise UsageError(f"cannot remove {path} (an older synthesis): {exc.strerror}") from None


def _written_by_pylive(directory: Path) -> frozenset[str]:
    """The entries the marker in ``directory`` says pylive wrote; empty without a valid one."""
    marker = directory / MARKER
    if marker.is_symlink():
        return frozenset()
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return frozenset()
    if not isinstance(data, dict) or data.get("kind") != _KIND:
        return frozenset()
    token, entries = data.get("token"), data.get("entries")
    if not isinstance(token, str) or len(token) < 32 or not isinstance(entries, list):
        return frozenset()
    return frozenset(
        name
        for name in entries
        if isinstance(name, str) and name not in ("", ".", "..", MARKER) and "/" not in name
    )


def _write_marker(directory: Path, token: str, *, complete: bool) -> None:
    try:
        entries = sorted(p.name for p in directory.iterdir() if p.name != MARKER)
    except OSError:
        entries = []
    data = {
        "kind": _KIND,
        "token": token,
        "complete": complete,
        "entries": entries,
        "note": "pylive removes these entries before its next synthesis into this directory",
    }
    tmp = directory / f"{MARKER}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(directory / MARKER)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {directory / MARKER}: {exc.strerror}") from None
