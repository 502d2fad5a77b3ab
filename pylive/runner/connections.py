"""The runner's @connections client: PostToConnection over keep-alive HTTP/1.1."""

from __future__ import annotations

import asyncio
from urllib.parse import quote, urlsplit

from websockets.exceptions import InvalidStatus

from pylive.in_lambda.signing import Signer


def describe_failure(exc: BaseException) -> str:
    if isinstance(exc, InvalidStatus):  # the relay's reason, e.g. who may be the runner
        reason = exc.response.body.decode(errors="replace").strip()
        if reason:
            return f"{exc}: {reason[:400]}"
    return str(exc) or type(exc).__name__


class ConnectionsClient:
    """PostToConnection over keep-alive HTTP/1.1 on the event loop, SigV4-signed.

    The blocking boto3 client would need a thread hop per call; this speaks the same wire
    format (see aws-contracts §2) directly. :meth:`post` returns False when the connection
    is gone (410).
    """

    def __init__(self, endpoint_url: str, signer: Signer, *, timeout: float = 10.0) -> None:
        parts = urlsplit(endpoint_url)
        self._tls = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if self._tls else 80)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._base = parts.path.rstrip("/")
        self.signer = signer
        self._timeout = timeout
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.calls = 0

    async def post(self, connection_id: str, data: bytes) -> bool:
        path = f"{self._base}/@connections/{quote(connection_id, safe='')}"
        head = [f"POST {path} HTTP/1.1", f"Content-Length: {len(data)}"]
        head += [f"{k}: {v}" for k, v in self.signer.headers("POST", self._origin + path, data)]
        raw = ("\r\n".join(head) + "\r\n\r\n").encode() + data
        self.calls += 1
        status, body = await self._exchange(raw)
        if status == 410:
            return False
        if status >= 300:
            raise RuntimeError(f"@connections answered {status}: {body[:200].decode('latin-1')}")
        return True

    async def _exchange(self, raw: bytes) -> tuple[int, bytes]:
        for attempt in (1, 2):
            reused = bool(self._idle)
            reader, writer = self._idle.pop() if reused else await self._open()
            try:
                async with asyncio.timeout(self._timeout):
                    writer.write(raw)
                    status, body, keep = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                writer.close()
                if reused and attempt == 1:
                    continue  # the server closed an idle keep-alive connection
                raise OSError(f"@connections request failed: {describe_failure(exc)}") from None
            except BaseException:
                writer.close()
                raise
            if keep:
                self._idle.append((reader, writer))
            else:
                writer.close()
            return status, body
        raise OSError("@connections request failed")  # not reached

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with asyncio.timeout(self._timeout):
            return await asyncio.open_connection(
                self._host, self._port, ssl=True if self._tls else None, limit=1 << 20
            )

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    status_line = await reader.readuntil(b"\r\n")
    status = int(status_line.split(b" ", 2)[1])
    length = 0
    keep = True
    while True:
        line = await reader.readuntil(b"\r\n")
        if line == b"\r\n":
            break
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and value.strip().lower() == "close":
            keep = False
    body = await reader.readexactly(length) if length else b""
    return status, body, keep
