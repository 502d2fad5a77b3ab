"""A client WebSocket on the calling thread: websockets' sans-I/O protocol over a blocking
socket, so a relayed invocation waits on the network and nothing else."""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections import deque

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from pylive.in_lambda import protocol
from pylive.in_lambda.stub.errors import Closed, PyliveRelayError
from pylive.in_lambda.stub.limits import TCP_KEEPALIVE, StubLimits


class WebSocket:
    """A client WebSocket driven on the calling thread: websockets' sans-I/O protocol over a
    blocking socket. Pings are answered whenever the connection is read."""

    def __init__(
        self, url: str, *, timeout: float, max_size: int = StubLimits.max_message_bytes
    ) -> None:
        uri = parse_uri(url)
        try:
            self.sock = open_socket(uri.host, uri.port, tls=uri.secure, timeout=timeout)
        except OSError as exc:
            where = url.split("?", 1)[0]
            raise PyliveRelayError(f"cannot reach the relay at {where}: {exc}") from None
        self.protocol = ClientProtocol(uri, max_size=max_size)
        self._messages: deque[str | bytes] = deque()
        self._parts: list[bytes | bytearray | memoryview] = []
        self._text = True
        end = time.monotonic() + timeout
        try:
            self.protocol.send_request(self.protocol.connect())
            self._flush()
            while self.protocol.state is State.CONNECTING and self.protocol.handshake_exc is None:
                if end - time.monotonic() <= 0 or not self._read(end - time.monotonic()):
                    raise TimeoutError("the relay did not complete the WebSocket handshake")
        except BaseException:
            self.sock.close()
            raise
        if self.protocol.handshake_exc is not None:
            self.sock.close()
            why = self.protocol.handshake_exc
            raise PyliveRelayError(f"the relay refused the connection: {why}")

    @property
    def closed(self) -> bool:
        return self.protocol.state is not State.OPEN

    def send(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        try:
            self._flush()
        except OSError:
            self.sock.close()
            raise Closed from None

    def poll(self) -> None:
        """Take in what has arrived already, without waiting."""
        self._read(0)

    def recv(self, timeout: float) -> str | bytes | None:
        """The next message; None after ``timeout`` seconds; :class:`Closed` once closed."""
        end = time.monotonic() + timeout
        while not self._messages:
            if self.closed:
                raise Closed
            remaining = end - time.monotonic()
            if remaining <= 0 or not self._read(remaining):
                return None
        return self._messages.popleft()

    def close(self) -> None:
        try:
            if self.protocol.state is State.OPEN:
                self.protocol.send_close(1000)
                self._flush()
        except OSError:
            pass
        finally:
            self.sock.close()

    def _read(self, timeout: float) -> bool:
        """Take what arrives within ``timeout``; False if nothing did."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 16)
        except (TimeoutError, BlockingIOError, ssl.SSLWantReadError):
            return False
        except OSError:
            data = b""
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        self._flush()  # pongs, the close handshake
        for event in self.protocol.events_received():
            if isinstance(event, Frame):  # else the handshake's response: the state says it
                self._take(event)
        return True

    def _take(self, frame: Frame) -> None:
        if frame.opcode not in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            return  # control frames: the protocol has answered them
        if frame.opcode is not Opcode.CONT:
            self._text = frame.opcode is Opcode.TEXT
        self._parts.append(frame.data)
        if frame.fin:
            data = b"".join(self._parts)
            self._parts.clear()
            text = self._text and not data.startswith(protocol.CHUNK_PREFIX)
            self._messages.append(data.decode() if text else data)

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)
            else:  # the protocol wants the write side closed (after a close frame)
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_WR)


def open_socket(host: str, port: int, *, tls: bool, timeout: float) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # Kernel probes keep a NAT's mapping alive while the container runs and find a dead peer.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in TCP_KEEPALIVE:
        option = getattr(socket, name, None)
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)
    if tls:
        return ssl.create_default_context().wrap_socket(sock, server_hostname=host)
    return sock
