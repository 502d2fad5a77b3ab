"""A minimal HTTP/1.1 client on one kept-alive socket, whose request and answer can be sent
and read apart (the stub reads the answer to an invoke's POST once the runner's answer is in)."""

from __future__ import annotations

import socket

from pylive.in_lambda.stub.websocket import open_socket


class Http:
    """HTTP/1.1 requests, one at a time, on one kept-alive connection (reopened when the
    server has closed it). A request is sent by :meth:`send` and its response read by
    :meth:`answer`, so that the caller may wait for something else in between."""

    def __init__(self, host: str, port: int | None, *, tls: bool, timeout: float = 10) -> None:
        self.host, self.tls, self.timeout = host, tls, timeout
        self.port = port or (443 if tls else 80)
        self.sock: socket.socket | None = None
        self._buffer = b""
        self._sent: tuple[bytes, bool] | None = None  # the request awaiting its answer; reused?

    @property
    def pending(self) -> bool:
        return self._sent is not None

    def request(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, bytes]:
        self.send(method, path, headers, body)
        return self.answer()

    def send(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> None:
        if self._sent is not None:  # a caller gave up waiting for it: start afresh
            self.close()
        lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers)]
        lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        self._sent = (data, self._send(data))

    def answer(self) -> tuple[int, bytes]:
        """The response to the request sent last. A kept-alive connection the server had
        closed fails on first use: the request is sent once more on a new one."""
        assert self._sent is not None, "no request was sent"
        data, reused = self._sent
        try:
            assert self.sock is not None
            return self._response(self.sock)
        except (OSError, ValueError):
            self.close()
            if not reused:
                raise
            self._send(data)
            assert self.sock is not None
            try:
                return self._response(self.sock)
            except (OSError, ValueError):
                self.close()
                raise
        finally:
            self._sent = None

    def _send(self, data: bytes) -> bool:
        """Send on the kept connection, or a new one; True if it was kept from before."""
        reused = self.sock is not None
        sock = self.sock or self._open()
        try:
            sock.settimeout(self.timeout)
            sock.sendall(data)
        except OSError:
            self.close()
            if not reused:
                raise
            return self._send(data)
        return reused

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self._buffer, self._sent = None, b"", None

    def _open(self) -> socket.socket:
        self.sock = open_socket(self.host, self.port, tls=self.tls, timeout=self.timeout)
        self._buffer = b""
        return self.sock

    def _response(self, sock: socket.socket) -> tuple[int, bytes]:
        head = self._until(sock, b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        fields = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if fields.get("transfer-encoding", "").lower() == "chunked":
            body = self._chunked(sock)
        else:
            body = self._exactly(sock, int(fields.get("content-length") or 0))
        if fields.get("connection", "").lower() == "close":
            self.close()
        return status, body

    def _chunked(self, sock: socket.socket) -> bytes:
        chunks = []
        while True:
            size = int(self._until(sock, b"\r\n").split(b";")[0], 16)
            chunks.append(self._exactly(sock, size))
            self._until(sock, b"\r\n")
            if size == 0:
                return b"".join(chunks)

    def _until(self, sock: socket.socket, marker: bytes) -> bytes:
        while (end := self._buffer.find(marker)) < 0:
            self._fill(sock)
        found, self._buffer = self._buffer[:end], self._buffer[end + len(marker) :]
        return found

    def _exactly(self, sock: socket.socket, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill(sock)
        found, self._buffer = self._buffer[:size], self._buffer[size:]
        return found

    def _fill(self, sock: socket.socket) -> None:
        data = sock.recv(1 << 16)
        if not data:
            raise ConnectionResetError("the server closed the connection")
        self._buffer += data
