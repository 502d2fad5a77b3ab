"""The stub's own WebSocket and HTTP clients against real servers on loopback (websockets'
server, the standard library's HTTP server)."""

from __future__ import annotations

import asyncio
import datetime as dt
import http.server
import ipaddress
import select
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.server import ServerConnection, serve

from pylive.in_lambda.relay_settings import StubSettings
from pylive.in_lambda.stub.connections_api import ConnectionsApi
from pylive.in_lambda.stub.errors import Closed, PyliveRelayError
from pylive.in_lambda.stub.http import Http
from pylive.in_lambda.stub.limits import CHUNK_POSTS_IN_FLIGHT
from pylive.in_lambda.stub.settings import Settings
from pylive.in_lambda.stub.websocket import WebSocket

Handler = Callable[[ServerConnection], Awaitable[None]]


@contextmanager
def ws_server(handler: Handler, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """A websockets server in a thread of its own; yields its URL."""
    ready = threading.Event()
    stop: dict[str, Any] = {}
    url: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop["event"], stop["loop"] = asyncio.Event(), loop
        async with serve(handler, "127.0.0.1", 0, compression=None, ssl=tls) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            url.append(f"wss://localhost:{port}/dev" if tls else f"ws://127.0.0.1:{port}/dev")
            ready.set()
            await stop["event"].wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield url[0]
    finally:
        stop["loop"].call_soon_threadsafe(stop["event"].set)
        thread.join(10)


def test_fragmented_messages_are_reassembled_and_pings_answered() -> None:
    pongs: list[float] = []

    async def handler(ws: ServerConnection) -> None:
        waiter = await ws.ping(b"are you there")
        await ws.send(["a" * 40_000, "b" * 40_000, "c"])  # one message in three frames
        await ws.send(b"\x00\x01binary")
        pongs.append(await asyncio.wait_for(waiter, 5))
        await ws.send("after the pong")
        await ws.wait_closed()

    with ws_server(handler) as url:
        ws = WebSocket(url, timeout=5)
        try:
            assert ws.recv(5) == "a" * 40_000 + "b" * 40_000 + "c"
            assert ws.recv(5) == b"\x00\x01binary"
            assert ws.recv(5) == "after the pong"
            assert len(pongs) == 1
            assert ws.recv(0.05) is None  # nothing more: a timeout, not an error
        finally:
            ws.close()


def test_a_server_close_is_seen_by_poll_and_recv() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("bye")
        assert await ws.recv() == "ok"
        await ws.close(1001, "going away")

    with ws_server(handler) as url:
        ws = WebSocket(url, timeout=5)
        assert ws.recv(5) == "bye"
        ws.send("ok")
        assert select.select([ws.sock], [], [], 5)[0]  # the close frame has arrived
        assert not ws.closed
        ws.poll()  # takes it in without blocking
        assert ws.closed
        with pytest.raises(Closed):
            ws.recv(5)
        ws.close()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests: list[tuple[str, str, bytes, str | None]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.requests.append(("POST", self.path, body, self.headers.get("Authorization")))
        if self.path.endswith("/gone"):
            self._answer(410, b"", {"x-amzn-ErrorType": "GoneException"})
        elif self.path.endswith("/chunked"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        elif self.path.endswith("/quietly-close"):
            self._answer(200, b"")
            self.close_connection = True
        elif self.path.endswith("/close"):
            self._answer(200, b"bye", {"Connection": "close"})
            self.close_connection = True
        else:
            self._answer(200, body)

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def http_server(
    tls: ssl.SSLContext | None = None,
) -> Iterator[tuple[http.server.ThreadingHTTPServer, int]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_http_keeps_one_connection_and_reads_every_body_form() -> None:
    with http_server() as (_, port):
        client = Http("127.0.0.1", port, tls=False)
        try:
            assert client.request("POST", "/dev/@connections/a", [], b"one") == (200, b"one")
            first = client.sock
            assert client.request("POST", "/dev/@connections/a", [], b"two") == (200, b"two")
            assert client.sock is first  # kept alive
            assert client.request("POST", "/x/gone", [], b"") == (410, b"")
            assert client.request("POST", "/x/chunked", [], b"") == (200, b"hello world")
            assert client.request("POST", "/x/close", [], b"") == (200, b"bye")
            assert client.sock is None  # the server said close
            assert client.request("POST", "/dev/@connections/a", [], b"3") == (200, b"3")
        finally:
            client.close()


def _connections_api(port: int) -> ConnectionsApi:
    relay = StubSettings(
        "ws://127.0.0.1:1/dev", f"http://127.0.0.1:{port}/dev", "shop", "dev", "hello"
    )
    settings = Settings(
        {**relay.to_env(), "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}
    )
    return ConnectionsApi(settings)


def test_chunks_are_posted_over_several_connections_at_once() -> None:
    with http_server() as (_, port):
        _Handler.requests.clear()
        api = _connections_api(port)
        try:
            bodies = [f"chunk {n}".encode() for n in range(20)]
            answers = api.post_all("runner", bodies)
            assert sorted(answers) == sorted((200, body) for body in bodies)
            seen = [body for _, path, body, auth in _Handler.requests]
            assert sorted(seen) == sorted(bodies)  # each once
            assert all(
                auth and auth.startswith("AWS4-HMAC-SHA256") for *_, auth in _Handler.requests
            )
            lanes = [api.http, *api._lanes]
            assert len(lanes) == CHUNK_POSTS_IN_FLIGHT
            assert all(http.sock is not None for http in lanes)  # all kept alive
            kept = [http.sock for http in lanes]
            api.post_all("runner", bodies[:3])  # a smaller message reuses the same connections
            assert [http.sock for http in lanes] == kept
        finally:
            api.close()


def test_posting_chunks_stops_at_a_gone_connection() -> None:
    with http_server() as (_, port):
        _Handler.requests.clear()
        api = _connections_api(port)
        try:
            answers = api.post_all("gone", [b"%d" % n for n in range(40)])
            assert {status for status, _ in answers} == {410}
            # Each connection stops at its first 410 instead of posting the rest.
            assert len(_Handler.requests) == CHUNK_POSTS_IN_FLIGHT
        finally:
            api.close()


def test_http_answer_may_be_read_later_or_given_up() -> None:
    with http_server() as (_, port):
        client = Http("127.0.0.1", port, tls=False)
        try:
            client.send("POST", "/a", [], b"later")
            assert client.pending
            assert select.select([client.sock], [], [], 5)[0]  # answered, not yet read
            assert client.answer() == (200, b"later") and not client.pending
            client.send("POST", "/a", [], b"given up")
            first = client.sock
            # A caller that gave up on an answer: the next request starts on a new
            # connection, so it cannot read the stale answer as its own.
            assert client.request("POST", "/a", [], b"next") == (200, b"next")
            assert client.sock is not first
        finally:
            client.close()


def test_http_sends_again_when_a_kept_connection_turns_out_closed() -> None:
    with http_server() as (_, port):
        client = Http("127.0.0.1", port, tls=False)
        try:
            # The server closes the connection after answering, without saying so: the
            # next request is written into a closed connection and its answer never comes.
            assert client.request("POST", "/x/quietly-close", [], b"") == (200, b"")
            kept = client.sock
            assert kept is not None
            assert select.select([kept], [], [], 5)[0]  # the server's FIN is in
            client.send("POST", "/a", [], b"again")
            assert client.answer() == (200, b"again")
            assert client.sock is not kept
        finally:
            client.close()


def test_http_reconnects_once_when_the_kept_connection_died() -> None:
    with http_server() as (_, port):
        client = Http("127.0.0.1", port, tls=False)
        assert client.request("POST", "/a", [], b"1") == (200, b"1")
        assert client.sock is not None
        client.sock.shutdown(2)  # as if the server had dropped the idle connection
        assert client.request("POST", "/a", [], b"2") == (200, b"2")
        client.close()
    client = Http("127.0.0.1", port, tls=False, timeout=2)
    with pytest.raises(OSError):
        client.request("POST", "/a", [], b"3")  # nobody listens any more


@pytest.fixture(scope="module")
def server_tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    """A self-signed certificate for localhost; the path of the file that makes it trusted."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file


def test_both_clients_speak_tls_and_verify_the_server(
    server_tls: tuple[ssl.SSLContext, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As in AWS (wss:// and https://): the system's trust store decides; here it is told to
    trust the test certificate, and without that the connection is refused."""
    context, cert_file = server_tls

    async def handler(ws: ServerConnection) -> None:
        await ws.send("over tls")
        await ws.wait_closed()

    with ws_server(handler, tls=context) as url, http_server(tls=context) as (_, port):
        with pytest.raises(ssl.SSLCertVerificationError):
            Http("localhost", port, tls=True).request("POST", "/a", [], b"x")
        with pytest.raises(PyliveRelayError, match="cannot reach the relay"):
            WebSocket(url, timeout=5)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
        ws = WebSocket(url, timeout=5)
        try:
            assert ws.recv(5) == "over tls"
        finally:
            ws.close()
        client = Http("localhost", port, tls=True)
        try:
            assert client.request("POST", "/a", [], b"secret") == (200, b"secret")
        finally:
            client.close()
