"""What a session prints: one place decides wording, labels and colour."""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

_COLORS = {"dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34", "cyan": "36"}


class Console:
    def __init__(self, stream: TextIO | None = None, *, color: bool | None = None) -> None:
        self._stream = stream or sys.stdout
        self._color = self._stream.isatty() if color is None else color
        self._flush_scheduled = False

    def _paint(self, text: str, color: str) -> str:
        return f"\x1b[{_COLORS[color]}m{text}\x1b[0m" if self._color else text

    def _write(self, line: str) -> None:
        self._stream.write(line + "\n")
        if self._flush_scheduled:
            return
        try:
            # Under load, flush once per event-loop turn instead of once per line.
            asyncio.get_running_loop().call_soon(self._flush)
            self._flush_scheduled = True
        except RuntimeError:
            self._stream.flush()

    def _flush(self) -> None:
        self._flush_scheduled = False
        self._stream.flush()

    def info(self, message: str) -> None:
        self._write(message)

    def event(self, message: str) -> None:
        """Something pylive did: a reload, a re-synthesis, a worker that could not start."""
        self._write(self._paint("pylive", "cyan") + " " + message)

    def warn(self, message: str) -> None:
        self._write(self._paint("pylive", "yellow") + " " + message)

    def output(self, function_id: str, line: str) -> None:
        """A line the function printed."""
        self._write(self._paint(f"{function_id} |", "dim") + " " + line)

    def request(self, method: str, path: str, function_id: str, status: int, ms: float) -> None:
        color = "green" if status < 400 else "yellow" if status < 500 else "red"
        self._write(
            f"{method} {path} -> {function_id} {self._paint(str(status), color)} {ms:.1f} ms"
        )
