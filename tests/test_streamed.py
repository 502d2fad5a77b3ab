"""run_streamed: what the uv installs and the CDK toolkit runs share."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pylive.streamed import run_streamed


def test_every_line_reaches_the_callback_in_order(tmp_path: Path) -> None:
    seen: list[str] = []
    script = "import sys\nfor w in ('one', 'two', 'three'):\n    print(w, flush=True)\n"
    script += "print('err', file=sys.stderr, flush=True)\nsys.exit(3)\n"
    run = run_streamed(
        [sys.executable, "-c", script], cwd=tmp_path, env={}, on_line=seen.append, timeout=60
    )
    assert seen == ["one", "two", "three", "err"]
    assert run.lines == seen
    assert (run.returncode, run.timed_out) == (3, False)


@pytest.mark.parametrize("own_session", [False, True])
def test_a_command_past_its_time_limit_is_stopped(tmp_path: Path, own_session: bool) -> None:
    script = "import time\nprint('started', flush=True)\ntime.sleep(600)\n"
    run = run_streamed(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={},
        on_line=lambda line: None,
        timeout=0.5,
        own_session=own_session,
        stop_grace=2.0,
    )
    assert run.timed_out
    assert run.lines[0] == "started"
    assert run.returncode != 0


def test_a_command_that_cannot_start_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        run_streamed([str(tmp_path / "missing")], cwd=tmp_path, env={}, on_line=print, timeout=5)
