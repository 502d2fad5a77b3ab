"""Every invocation the worker pool runs, remembered: a bounded ring in memory and a bounded,
rotated file under ``.pylive/`` (mode 0600), for the console, replay and the terminal.

The pool calls :meth:`InvocationLog.begin` and :meth:`InvocationLog.end` on its hot path, so
both only keep references (the event and result stay the bytes they are); decoding, the
source guess and the file write happen later, when something reads or every
``FLUSH_INTERVAL_S`` for the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from pylive import exact_json
from pylive.runner.event_source import http_head, http_source, infer_source

MAX_RECORDS = 500  # invocations kept in memory (and about as many in the file)
MAX_PAYLOAD_BYTES = 32 * 1024  # of an event or a result, kept in a record; more is cut
MAX_OUTPUT_BYTES = 32 * 1024  # of one invocation's output lines
MAX_FILE_BYTES = 4 * 1024 * 1024  # then the file rotates to <name>.1 (one older file kept)
FLUSH_INTERVAL_S = 0.25
FILE_NAME = "invocations.jsonl"

_UNSET: Any = object()
_CUT_END = b" kept]"  # how a payload cut at MAX_PAYLOAD_BYTES ends

Listener = Callable[["Invocation", str], None]  # (record, "start" | "end" | "output")


class Invocation:
    """One invocation of one function, as the pool ran it.

    A plain class whose defaults live on the class: creating one on the invocation's path
    sets five attributes, nothing more."""

    duration_ms: float | None = None  # None while it runs
    ok: bool | None = None
    result: bytes = b""
    content_type: str = "application/json"
    cold: bool = False  # the first invocation of a new worker (its init just ran)
    init_ms: float | None = None  # that worker's init, on a cold start
    memory_mb: float | None = None  # the worker's peak resident memory so far (VmHWM)
    replay_of: str | None = None
    output_bytes: int = 0
    # Derived once, when first read (never on the invocation's path).
    _event_value: Any = _UNSET
    _result_value: Any = _UNSET
    _source: str | None = None
    _http: Any = _UNSET
    _http_status: int | None = None

    def __init__(
        self,
        id: str,  # the request id
        function: str,
        event: bytes,
        started: float,  # epoch seconds
        *,
        replay_of: str | None = None,
        log: InvocationLog | None = None,
    ) -> None:
        self.id = id
        self.function = function
        self.event = event
        self.started = started
        self.output: list[str] = []
        self._log = log
        if replay_of is not None:
            self.replay_of = replay_of

    @property
    def cut(self) -> bool:
        """The event was larger than MAX_PAYLOAD_BYTES: only its start is kept."""
        return self.event.endswith(_CUT_END)

    @property
    def status(self) -> str:
        return "running" if self.ok is None else "ok" if self.ok else "error"

    def add_output(self, line: str) -> None:
        if self.output_bytes >= MAX_OUTPUT_BYTES:
            return
        self.output_bytes += len(line) + 1
        if self.output_bytes >= MAX_OUTPUT_BYTES:
            line = line[: max(0, MAX_OUTPUT_BYTES - self.output_bytes + len(line))] + " [cut]"
        self.output.append(line)
        if self._log is not None:
            self._log.output_added(self)

    def event_value(self) -> Any:
        if self._event_value is _UNSET:
            self._event_value = _decode(self.event)
        return self._event_value

    def result_value(self) -> Any:
        if self.ok is None:
            return None
        if self._result_value is _UNSET:
            self._result_value = _decode(self.result)
        return self._result_value

    def error(self) -> dict[str, Any] | None:
        """``errorType``, ``errorMessage`` and ``stackTrace`` of a failed invocation."""
        if self.ok is not False:
            return None
        value = self.result_value()
        if not isinstance(value, dict):
            return {"errorType": "Error", "errorMessage": str(value), "stackTrace": []}
        return {
            "errorType": str(value.get("errorType", "Error")),
            "errorMessage": str(value.get("errorMessage", "")),
            "stackTrace": value.get("stackTrace") or [],
        }

    def source(self) -> str:
        if self._source is None:
            request = self.http_request()
            if request is not None and request[2] != "$default":
                self._source = http_source(*request)
            else:
                self._source = infer_source(self.event_value())
        return self._source

    def http_request(self) -> tuple[str, str, str] | None:
        """``(method, raw path, route key)`` of an HTTP API (payload 2.0) request, else None.
        The terminal prints it for every request: the events pylive's HTTP API builds are
        read without decoding them whole (see :func:`pylive.runner.event_source.http_head`)."""
        if self._http is _UNSET:
            head = http_head(self.event)
            if head is None:
                event = self.event_value()
                http = event.get("requestContext", {}) if isinstance(event, dict) else None
                http = http.get("http") if isinstance(http, dict) else None
                if isinstance(http, dict) and isinstance(event, dict):
                    path = event.get("rawPath") or http.get("path") or ""
                    key = event.get("routeKey") or "$default"
                    head = (str(http.get("method", "")), str(path), str(key))
            self._http = head
        return self._http  # type: ignore[no-any-return]

    def answered_http(self, method: str, path: str, route_key: str, status: int) -> None:
        """What pylive's HTTP API made of this invocation: the request it came from and the
        status it answered with, so the console's line need not decode event and result."""
        self._http = (method, path, route_key)
        self._source = http_source(method, path, route_key)
        self._http_status = status

    def summary(self) -> dict[str, Any]:
        """What a list of invocations shows (no event, result or output)."""
        error = self.error()
        return {
            "id": self.id,
            "function": self.function,
            "source": self.source(),
            "started": self.started,
            "duration_ms": self.duration_ms,
            "status": self.status,
            "cold": self.cold,
            "init_ms": self.init_ms,
            "memory_mb": self.memory_mb,
            "replay_of": self.replay_of,
            "error": None if error is None else f"{error['errorType']}: {error['errorMessage']}",
            "http_status": self.http_status(),
        }

    def detail(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "event": self.event_value(),
            "result": self.result_value(),
            "error_detail": self.error(),
            "output": list(self.output),
        }

    def http_status(self) -> int | None:
        """The status an HTTP API answers with, for an invocation from one."""
        if self.ok is None or not self.source().startswith("http"):
            return None
        if not self.ok:
            return 500
        if self._http_status is None:
            value = self.result_value()
            if (
                isinstance(value, dict)
                and type(value.get("statusCode")) is int
                and 100 <= value["statusCode"] <= 599
                and isinstance(value.get("body", ""), str)
                and not value.get("isBase64Encoded")
                and not value.get("cookies")
                and isinstance(value.get("headers") or {}, dict)
            ):
                self._http_status = int(value["statusCode"])  # the common, well-formed case
            else:
                from pylive.emulator.http_events import to_http_response

                self._http_status = to_http_response(self.result).status
        return self._http_status

    def to_json(self) -> bytes:
        data = {
            "id": self.id,
            "function": self.function,
            "started": self.started,
            "duration_ms": self.duration_ms,
            "ok": self.ok,
            "cold": self.cold,
            "init_ms": self.init_ms,
            "memory_mb": self.memory_mb,
            "replay_of": self.replay_of,
            "content_type": self.content_type,
            "event": self.event.decode("utf-8", "replace"),
            "result": self.result.decode("utf-8", "replace"),
            "output": self.output,
        }
        return orjson.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> Invocation:
        data = json.loads(text)
        record = cls(
            str(data["id"]),
            str(data["function"]),
            str(data["event"]).encode(),
            float(data["started"]),
            replay_of=data.get("replay_of"),
        )
        record.result = str(data.get("result", "")).encode()
        record.duration_ms = data.get("duration_ms")
        record.ok = data.get("ok")
        record.content_type = str(data.get("content_type", "application/json"))
        record.cold = bool(data.get("cold"))
        record.init_ms = data.get("init_ms")
        record.memory_mb = data.get("memory_mb")
        record.output = [str(line) for line in data.get("output", [])]
        record.output_bytes = sum(len(line) + 1 for line in record.output)
        return record


class InvocationLog:
    """The ring of recent invocations, its file, and whoever listens for new ones."""

    def __init__(self, directory: Path | None = None, *, max_records: int = MAX_RECORDS) -> None:
        self.max_records = max_records
        self._records: OrderedDict[str, Invocation] = OrderedDict()
        self._listeners: list[Listener] = []
        self._replays: dict[str, str] = {}  # request id to come -> the one it replays
        self._path = directory / FILE_NAME if directory is not None else None
        self._unwritten: list[Invocation] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        if self._path is not None:
            self._load()

    # -- the pool's side (hot path) ------------------------------------------------------

    def begin(self, function: str, request_id: str, event: bytes) -> Invocation:
        record = Invocation(request_id, function, _cap(event), time.time(), log=self)
        if self._replays:
            record.replay_of = self._replays.pop(request_id, None)
        records = self._records
        if request_id in records:  # the same request again (Lambda's retries keep the id)
            del records[request_id]
        records[request_id] = record
        if len(records) > self.max_records:
            records.popitem(last=False)
        for listener in self._listeners:
            listener(record, "start")
        return record

    def end(
        self,
        record: Invocation,
        ok: bool,
        result: bytes,
        duration_ms: float,
        content_type: str = "application/json",
    ) -> None:
        record.ok = ok
        record.result = _cap(result)
        record.content_type = content_type
        record.duration_ms = duration_ms
        for listener in self._listeners:
            listener(record, "end")
        if self._path is None:
            return
        unwritten = self._unwritten
        unwritten.append(record)
        if len(unwritten) > 2 * self.max_records:  # older ones would be dropped at load
            del unwritten[: -self.max_records]
        if self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(FLUSH_INTERVAL_S, self.flush)

    def output_added(self, record: Invocation) -> None:
        for listener in self._listeners:
            listener(record, "output")

    # -- readers ---------------------------------------------------------------------------

    def expect_replay(self, request_id: str, of: str) -> None:
        """The invocation with ``request_id`` (about to start) replays ``of``."""
        self._replays[request_id] = of
        if len(self._replays) > 100:
            self._replays.pop(next(iter(self._replays)))

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def get(self, request_id: str) -> Invocation | None:
        return self._records.get(request_id)

    def __iter__(self) -> Iterator[Invocation]:
        return iter(list(self._records.values()))

    def __len__(self) -> int:
        return len(self._records)

    def latest(self, function: str | None = None) -> Invocation | None:
        for record in reversed(self._records.values()):
            if record.ok is not None and (function is None or record.function == function):
                return record
        return None

    # -- the file --------------------------------------------------------------------------

    def flush(self) -> None:
        """Append the finished invocations to the file (rotating it when it is full).

        Of a burst, only the newest ``max_records`` are written: a restart keeps no more
        than that, so writing older ones would only cost time."""
        self._flush_handle = None
        if self._path is None or not self._unwritten:
            self._unwritten.clear()
            return
        batch = self._unwritten[-self.max_records :]
        lines = b"".join(record.to_json() + b"\n" for record in batch)
        self._unwritten.clear()
        with contextlib.suppress(OSError):
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                if self._path.stat().st_size + len(lines) > MAX_FILE_BYTES:
                    self._path.replace(self._path.with_name(FILE_NAME + ".1"))
            fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.fchmod(fd, 0o600)  # events may hold personal data: the developer's only
                os.write(fd, lines)
            finally:
                os.close(fd)

    def close(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self.flush()

    def _load(self) -> None:
        assert self._path is not None
        for path in (self._path.with_name(FILE_NAME + ".1"), self._path):
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            for line in text.splitlines():
                try:
                    record = Invocation.from_json(line)
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by a crash
                record._log = self
                self._records[record.id] = record
                self._records.move_to_end(record.id)
        while len(self._records) > self.max_records:
            self._records.popitem(last=False)


def read_records(directory: Path) -> InvocationLog:
    """The recorded invocations of an app, from its file (no session needed)."""
    return InvocationLog(directory)


def _cap(payload: bytes) -> bytes:
    if len(payload) <= MAX_PAYLOAD_BYTES:
        return payload
    note = f"[{len(payload)} bytes; the first {MAX_PAYLOAD_BYTES} kept]".encode()
    return payload[:MAX_PAYLOAD_BYTES] + b"\n" + note


def _decode(payload: bytes) -> Any:
    try:
        return exact_json.loads(payload)
    except ValueError:
        try:  # what orjson refuses but is still JSON (a lone surrogate escape)
            return json.loads(payload)
        except ValueError:
            return payload.decode("utf-8", "replace")
