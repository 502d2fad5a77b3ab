"""The web console of a `pylive dev` session: a small ASGI app on loopback that lists the
recorded invocations live (Server-Sent Events), shows one in detail and replays it.

Any page open in the developer's browser could send requests to a port on 127.0.0.1, and
replay runs code, so every API call must carry the session's token (in the URL printed at
start, and in ``.pylive/console.json``, mode 0600), come from the console's own origin, and
name a loopback host (against DNS rebinding). The page itself holds no data.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from pylive.runner.invocation import InvokeResult
from pylive.runner.record import Invocation, InvocationLog

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
# Runs an event the way the session's invocations run (function id, event, request id).
Replayer = Callable[[str, bytes, str], Awaitable[InvokeResult]]

STATE_FILE = "console.json"
TOKEN_HEADER = b"x-pylive-token"
KEEPALIVE_S = 15.0
LIST_LIMIT = 500
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


@dataclass(frozen=True)
class SessionInfo:
    app: str
    mode: str  # "local (relay)", "local (direct)", "live: stage dev"


class ConsoleApp:
    def __init__(
        self, log: InvocationLog, replayer: Replayer, info: SessionInfo, token: str
    ) -> None:
        self.log = log
        self.replayer = replayer
        self.info = info
        self.token = token
        self.port = 0  # set once listening: the origin requests must come from
        self.closing = asyncio.Event()
        self._page = resources.files("pylive.webconsole").joinpath("static/index.html")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if not self._loopback_host(scope):
            await _send_json(send, 403, {"error": "the console answers on loopback only"})
            return
        if path == "/" and method == "GET":
            await _send(send, 200, self._page.read_bytes(), "text/html; charset=utf-8")
            return
        if not path.startswith("/api/"):
            await _send_json(send, 404, {"error": "not found"})
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await _send_json(send, 403, {"error": refusal})
            return
        await self._api(scope, receive, send, method, path)

    async def _api(
        self, scope: Scope, receive: Receive, send: Send, method: str, path: str
    ) -> None:
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        parts = path.strip("/").split("/")[1:]  # after "api"
        if parts == ["session"] and method == "GET":
            await _send_json(send, 200, {"app": self.info.app, "mode": self.info.mode})
        elif parts == ["invocations"] and method == "GET":
            if not query.get("limit", "1").isdigit():
                await _send_json(send, 400, {"error": "limit is a number of invocations"})
                return
            await _send_json(send, 200, self.list(query))
        elif parts == ["stream"] and method == "GET":
            await self._stream(send)
        elif len(parts) == 2 and parts[0] == "invocations" and method == "GET":
            record = self._find(parts[1])
            if record is None:
                await _send_json(send, 404, {"error": f"no invocation {parts[1]!r}"})
            else:
                await _send_json(send, 200, record.detail())
        elif len(parts) == 3 and parts[0] == "invocations" and parts[2] == "replay":
            if method != "POST":
                await _send_json(send, 405, {"error": "replay is a POST"})
                return
            await _read_body(receive)
            record = self._find(parts[1])
            if record is None:
                await _send_json(send, 404, {"error": f"no invocation {parts[1]!r}"})
                return
            status, answer = await self.replay(record)
            await _send_json(send, status, answer)
        else:
            await _send_json(send, 404, {"error": "not found"})

    # -- checks ------------------------------------------------------------------------------

    def _loopback_host(self, scope: Scope) -> bool:
        host = _header(scope, b"host")
        if host is None:
            return False
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return name in _LOOPBACK_HOSTS

    def _refusal(self, scope: Scope) -> str | None:
        """Why an API request is refused (None: it is not)."""
        origin = _header(scope, b"origin")
        if origin is not None and origin not in self._origins():
            return "cross-origin requests are refused"
        site = _header(scope, b"sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return "cross-site requests are refused"
        given = _header(scope, TOKEN_HEADER)
        if given is None:
            query = parse_qs(scope.get("query_string", b"").decode())
            given = (query.get("token") or [None])[-1]
        if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
            return "a valid session token is required (open the URL `pylive dev` printed)"
        return None

    def _origins(self) -> set[str]:
        return {f"http://{host}:{self.port}" for host in _LOOPBACK_HOSTS}

    # -- what it serves ----------------------------------------------------------------------

    def _find(self, ref: str) -> Invocation | None:
        if ref == "last":
            return self.log.latest()
        return self.log.get(ref)

    def list(self, query: dict[str, str]) -> list[dict[str, Any]]:
        function = query.get("function") or None
        status = query.get("status") or None
        text = (query.get("q") or "").lower()
        limit = min(int(query.get("limit") or LIST_LIMIT), LIST_LIMIT)
        found = []
        for record in reversed(list(self.log)):
            if function is not None and record.function != function:
                continue
            if status is not None and record.status != status:
                continue
            if text and not _matches(record, text):
                continue
            found.append(record.summary())
            if len(found) >= limit:
                break
        found.reverse()
        return found

    async def replay(self, record: Invocation) -> tuple[int, dict[str, Any]]:
        """Run the recorded event again through the session's path, on the current code."""
        if record.cut:
            return 409, {"error": "the recorded event was cut (too large) and cannot be replayed"}
        request_id = str(uuid.uuid4())
        self.log.expect_replay(request_id, record.id)
        try:
            result = await self.replayer(record.function, record.event, request_id)
        except KeyError:
            return 404, {"error": f"the session has no function {record.function!r} any more"}
        new = self.log.get(request_id)
        if new is None:  # it failed before reaching the function (e.g. in the stub)
            new = Invocation(request_id, record.function, record.event, 0.0, replay_of=record.id)
            new.ok, new.result, new.duration_ms = result.ok, result.body, result.duration_ms
        return 200, {"old": record.detail(), "new": new.detail()}

    async def _stream(self, send: Send) -> None:
        """Server-Sent Events: ``invocation`` with a summary whenever one starts, ends or
        prints (coalesced per event-loop turn)."""
        queue: asyncio.Queue[Invocation] = asyncio.Queue(maxsize=10_000)

        def listener(record: Invocation, kind: str) -> None:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(record)

        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-store"),
                    (b"x-content-type-options", b"nosniff"),
                ],
            }
        )
        unsubscribe = self.log.subscribe(listener)
        closing = asyncio.ensure_future(self.closing.wait())
        try:
            await send({"type": "http.response.body", "body": b": hello\n\n", "more_body": True})
            while not self.closing.is_set():
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait(
                    {getter, closing}, timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED
                )
                if getter not in done:
                    getter.cancel()
                    if not self.closing.is_set():
                        await send(
                            {
                                "type": "http.response.body",
                                "body": b": keepalive\n\n",
                                "more_body": True,
                            }
                        )
                    continue
                batch = {id(r): r for r in [getter.result(), *_drain(queue)]}
                chunk = b"".join(
                    b"event: invocation\ndata: " + json.dumps(r.summary()).encode() + b"\n\n"
                    for r in batch.values()
                )
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except OSError:
            return  # the browser went away
        finally:
            closing.cancel()
            unsubscribe()


def _drain(queue: asyncio.Queue[Invocation]) -> list[Invocation]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


def _matches(record: Invocation, text: str) -> bool:
    if text in record.function.lower() or text in record.id.lower():
        return True
    if text in record.source().lower():
        return True
    for payload in (record.event, record.result):
        if text in payload.decode("utf-8", "replace").lower():
            return True
    return any(text in line.lower() for line in record.output)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send(send: Send, status: int, body: bytes, content_type: str) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (
            b"content-security-policy",
            b"default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
            b"connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        ),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_json(send: Send, status: int, value: Any) -> None:
    await _send(send, status, json.dumps(value).encode(), "application/json")


def new_token() -> str:
    return secrets.token_urlsafe(24)


def write_state(directory: Path, url: str, token: str) -> Path:
    """``.pylive/console.json``: where `pylive replay` finds the running session (0600)."""
    path = directory / STATE_FILE
    directory.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"url": url, "token": token, "pid": os.getpid()}, out)
    tmp.replace(path)
    return path


def read_state(directory: Path) -> dict[str, Any] | None:
    """The running session's console address, if its process is still alive."""
    try:
        data = json.loads((directory / STATE_FILE).read_text())
        os.kill(int(data["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data if isinstance(data, dict) else None
