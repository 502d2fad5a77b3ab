"""Run a command whose output is shown as it arrives: each line goes to a callback, with a
time limit, and the command is stopped when pylive is interrupted."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StreamedRun:
    returncode: int
    lines: list[str]  # stdout and stderr, in order, without line ends
    timed_out: bool


def run_streamed(
    command: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    on_line: Callable[[str], None],
    timeout: float,
    own_session: bool = False,
    stop_grace: float = 15.0,
) -> StreamedRun:
    """Run ``command``, passing each output line to ``on_line`` as it arrives.

    Past ``timeout``, or when the caller is interrupted (Ctrl-C, which is re-raised), the
    command is stopped. With ``own_session`` it runs in a session of its own, so Ctrl-C
    reaches pylive only and pylive stops the command's whole process group: SIGINT first,
    SIGKILL after ``stop_grace`` seconds; without, it is killed at once. Raises OSError when
    the command cannot be started.
    """
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=own_session,
    )
    timed_out = threading.Event()

    def on_timeout() -> None:
        timed_out.set()
        _stop(proc, own_session, stop_grace)

    timer = threading.Timer(timeout, on_timeout)
    timer.daemon = True
    timer.start()
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            lines.append(line)
            on_line(line)
        returncode = proc.wait()
    except BaseException:
        _stop(proc, own_session, stop_grace)
        raise
    finally:
        timer.cancel()
        if proc.stdout is not None:
            proc.stdout.close()
    return StreamedRun(returncode=returncode, lines=lines, timed_out=timed_out.is_set())


def _stop(proc: subprocess.Popen[str], own_session: bool, grace: float) -> None:
    if proc.poll() is not None:
        return
    if not own_session:
        proc.kill()
        proc.wait()
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
