"""One `pylive dev` per app: a lock held for the session's lifetime in ``.pylive/dev.lock``.

Sessions of one app share its state directory (``dev.json``, the workers' preload files), so
a second session is refused, with the pid and address of the running one, instead of
overwriting or deleting the first one's files. The lock is an ``flock`` on the file: the
kernel releases it when the process ends, however it ends, so a crashed session never blocks
the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pylive.errors import ServeError

LOCK_FILE = "dev.lock"


class AlreadyRunning(ServeError):
    """Another `pylive dev` holds the app's lock."""


@contextlib.contextmanager
def dev_lock(state_dir: Path, **info: Any) -> Iterator[None]:
    """Hold the app's dev lock while the block runs; ``info`` (mode, host, port, stage) is
    what a refused second session reports about this one."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ServeError(f"cannot create {state_dir / LOCK_FILE}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunning(_running_message(fd, state_dir)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), **info}).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays (removing it would race a new holder)


def _running_message(fd: int, state_dir: Path) -> str:
    try:
        holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        holder = {}
    if not isinstance(holder, dict):
        holder = {}
    pid = holder.get("pid", "?")
    what = [f"pid {pid}"]
    if holder.get("mode") == "local":
        url = _served_url(state_dir, pid)
        what.append(url if url else f"port {holder.get('port', '?')}")
    if holder.get("stage"):
        what.append(f"stage {holder['stage']}")
    app = state_dir.parent
    return (
        f"pylive dev is already running for the app in {app} ({', '.join(what)}); stop it "
        "(Ctrl-C in its terminal) before starting another"
    )


def _served_url(state_dir: Path, pid: object) -> str | None:
    """The URL the running local session announced in ``dev.json`` (once it is serving)."""
    try:
        data = json.loads((state_dir / "dev.json").read_text())
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and data.get("pid") == pid and data.get("http_url"):
        return str(data["http_url"])
    return None
