"""Reading a process's resident memory."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pylive.runner.memory import rss_mb


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_rss_counts_what_a_process_touched() -> None:
    code = "import sys; held = b'x' * (64 << 20); print('ok', flush=True); sys.stdin.read()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ok\n"
        used = rss_mb(proc.pid)
        assert used is not None and used >= 64
    finally:
        proc.communicate("")
    assert rss_mb(proc.pid) is None  # gone
