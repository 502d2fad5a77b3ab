"""The frames between the runner and a worker: ``>II`` (header length, body length), a JSON
header, then the raw body bytes. The body carries the event or the result untouched, so large
payloads are not re-encoded.

The headers, one class each with ``encode`` (the JSON object sent) and ``decode``:

- :class:`ReadyFrame` (worker → runner, once): the handler imported; the body is empty. A
  worker whose import failed sends ``{"t": "init_error"}`` instead (:data:`INIT_ERROR`), the
  error payload as the body, and exits.
- :class:`InvokeFrame` (runner → worker): one invocation; the body is the event.
- :class:`AnswerFrame` (worker → runner): its result (``"t": "result"``) or error payload
  (``"t": "error"``) as the body.
"""

from __future__ import annotations

import json
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

FRAME_PREFIX = struct.Struct(">II")
MAX_CONTROL_FDS = 2
JSON = "application/json"
INIT_ERROR: dict[str, Any] = {"t": "init_error"}


def pack_frame(header: dict[str, Any], body: bytes = b"") -> bytes:
    encoded = json.dumps(header, separators=(",", ":")).encode()
    return FRAME_PREFIX.pack(len(encoded), len(body)) + encoded + body


@dataclass(frozen=True)
class ReadyFrame:
    """The worker imported its handler: how long that took and what it imported."""

    init_ms: float
    modules: list[tuple[str, str]] = field(default_factory=list)  # (name, file) of each
    uses: list[str] = field(default_factory=list)  # top-level packages its modules refer to

    def encode(self) -> dict[str, Any]:
        return {"t": "ready", "init_ms": self.init_ms, "modules": self.modules, "uses": self.uses}

    @staticmethod
    def decode(header: dict[str, Any]) -> ReadyFrame | None:
        """The ready frame, or None for an init error (its payload is the body)."""
        if header["t"] != "ready":
            return None
        modules = [(str(name), str(path)) for name, path in header["modules"]]
        return ReadyFrame(header["init_ms"], modules, list(header.get("uses", [])))


@dataclass(slots=True)  # not frozen: made per invocation (a frozen __init__ is 5x slower)
class InvokeFrame:
    """One invocation: what the handler's context is built from. ``content_type`` and
    ``tenant_id`` are sent only when set (an event without ``ct`` is JSON)."""

    id: str  # the request id
    deadline_ms: int
    arn: str | None = None
    trace_id: str | None = None
    client_context: dict[str, Any] | None = None
    identity: dict[str, Any] | None = None
    content_type: str = JSON
    tenant_id: str | None = None

    def encode(self) -> dict[str, Any]:
        header: dict[str, Any] = {
            "t": "invoke",
            "id": self.id,
            "deadline_ms": self.deadline_ms,
            "arn": self.arn,
            "trace_id": self.trace_id,
            "client_context": self.client_context,
            "identity": self.identity,
        }
        if self.content_type != JSON:
            header["ct"] = self.content_type
        if self.tenant_id is not None:
            header["tenant_id"] = self.tenant_id
        return header

    @staticmethod
    def decode(header: dict[str, Any]) -> InvokeFrame:
        return InvokeFrame(
            header["id"],
            header["deadline_ms"],
            header.get("arn"),
            header.get("trace_id"),
            header.get("client_context"),
            header.get("identity"),
            header.get("ct", JSON),
            header.get("tenant_id"),
        )


@dataclass(slots=True)  # not frozen, as InvokeFrame
class AnswerFrame:
    """How an invocation ended: ``ok`` for a result, else an error payload. ``memory_kb`` is
    the worker's peak resident memory so far; an error's content type is always JSON."""

    ok: bool
    id: str
    content_type: str = JSON
    memory_kb: int | None = None

    def encode(self) -> dict[str, Any]:
        if self.ok:
            return {"t": "result", "id": self.id, "ct": self.content_type, "mem": self.memory_kb}
        return {"t": "error", "id": self.id, "mem": self.memory_kb}

    @staticmethod
    def decode(header: dict[str, Any]) -> AnswerFrame:
        return AnswerFrame(
            header["t"] == "result", header.get("id", ""), header.get("ct", JSON), header.get("mem")
        )


class Channel:
    """Blocking frame I/O on the worker's socket to the runner."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rb", buffering=1 << 16)

    def read(self) -> tuple[dict[str, Any], bytes] | None:
        prefix = self.file.read(FRAME_PREFIX.size)
        if len(prefix) < FRAME_PREFIX.size:
            return None
        header_len, body_len = FRAME_PREFIX.unpack(prefix)
        header = json.loads(self.file.read(header_len))
        body = self.file.read(body_len) if body_len else b""
        return header, body

    def send(self, header: dict[str, Any], body: bytes = b"") -> None:
        self.sock.sendall(pack_frame(header, body))
