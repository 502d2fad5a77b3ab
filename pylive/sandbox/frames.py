"""The frames between the runner and a worker: ``>II`` (header length, body length), a JSON
header, then the raw body bytes. The body carries the event or the result untouched, so large
payloads are not re-encoded."""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

FRAME_PREFIX = struct.Struct(">II")
MAX_CONTROL_FDS = 2


def pack_frame(header: dict[str, Any], body: bytes = b"") -> bytes:
    encoded = json.dumps(header, separators=(",", ":")).encode()
    return FRAME_PREFIX.pack(len(encoded), len(body)) + encoded + body


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
