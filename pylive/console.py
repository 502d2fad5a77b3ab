"""What a session prints: one place decides wording, labels and colour."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING, Any, Literal, TextIO

if TYPE_CHECKING:
    from pylive.runner.record import Invocation

Level = Literal["quiet", "normal", "verbose"]
VERBOSE_MAX_LINES = 40  # of an event or a result, with --verbose

_COLORS = {"dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34", "cyan": "36"}


class Console:
    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        color: bool | None = None,
        level: Level = "normal",
    ) -> None:
        self._stream = stream or sys.stdout
        self._color = self._stream.isatty() if color is None else color
        self._flush_scheduled = False
        self._ended: list[Invocation] = []  # invocations whose line is yet to be written
        self.level = level

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
        if self.level == "quiet":
            return
        self._write(self._paint(f"{function_id} |", "dim") + " " + line)

    def request(self, method: str, path: str, function_id: str, status: int, ms: float) -> None:
        color = "green" if status < 400 else "yellow" if status < 500 else "red"
        self._write(
            f"{method} {path} -> {function_id} {self._paint(str(status), color)} {ms:.1f} ms"
        )

    def http_answer(self, method: str, path: str, function_id: str, status: int, ms: float) -> None:
        """The local HTTP API's answer to one request. A request that ran a function has its
        line from :meth:`invocation`; those answered without one (no route, a CORS
        preflight, the integration timeout) are shown here."""
        if (status == 503 or function_id in ("-", "CORS")) and self.level != "quiet":
            self.request(method, path, function_id, status, ms)

    def invocation(self, record: Invocation, kind: str = "end") -> None:
        """One line per finished invocation: what invoked it, the outcome, the time, and
        whether it started a worker (cold); with --verbose its event and result too.

        Written once the event loop is free again, after the caller has its answer."""
        if kind != "end" or (self.level == "quiet" and record.ok):
            return
        if self._ended:  # the lines of this turn of the event loop are already due
            self._ended.append(record)
            return
        try:
            asyncio.get_running_loop().call_soon(self._invocation_lines)
        except RuntimeError:
            self._invocation_line(record)
            return
        self._ended.append(record)

    def _invocation_lines(self) -> None:
        ended, self._ended = self._ended, []
        for record in ended:
            self._invocation_line(record)

    def _invocation_line(self, record: Invocation) -> None:
        request = record.http_request()
        what = f"{request[0]} {request[1]}" if request is not None else record.source()
        http_status = record.http_status()
        error = record.error()
        if http_status is not None:
            status = str(http_status)
            color = "green" if http_status < 400 else "yellow" if http_status < 500 else "red"
        else:
            status, color = ("ok", "green") if record.ok else ("error", "red")
        line = f"{what} -> {record.function} {self._paint(status, color)}"
        if error is not None:
            line += " " + self._paint(f"{error['errorType']}: {error['errorMessage']}", "red")
        start = f"cold (init {record.init_ms:.0f} ms)" if record.init_ms else "cold"
        line += f" {record.duration_ms or 0:.1f} ms {start if record.cold else 'warm'}"
        if record.replay_of is not None:
            line += self._paint(" (replay)", "dim")
        self._write(line)
        if self.level == "verbose":
            self._block("event", _redacted(record.event_value()))
            self._block("error" if error is not None else "result", record.result_value())

    def _block(self, label: str, value: Any) -> None:
        text = json.dumps(value, indent=2, default=str).splitlines()
        if len(text) > VERBOSE_MAX_LINES:
            text = [*text[:VERBOSE_MAX_LINES], f"... ({len(text) - VERBOSE_MAX_LINES} more lines)"]
        for line in text:
            self._write(self._paint(f"  {label} |", "dim") + " " + line)


# Request headers that carry credentials: not printed (the record keeps them, for replay).
SECRET_HEADERS = frozenset(
    {"authorization", "cookie", "proxy-authorization", "x-api-key", "x-amz-security-token"}
)


def _redacted(event: Any) -> Any:
    if not isinstance(event, dict):
        return event
    copy = dict(event)
    for key in ("headers", "multiValueHeaders"):
        headers = copy.get(key)
        if isinstance(headers, dict):
            copy[key] = {
                name: "[redacted]" if name.lower() in SECRET_HEADERS else value
                for name, value in headers.items()
            }
    if isinstance(copy.get("cookies"), list):
        copy["cookies"] = ["[redacted]"]
    return copy
