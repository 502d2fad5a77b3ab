"""pylive's HTTP/1.1 server (pylive.emulator.http1) on loopback, driven with raw bytes; every
answer is read back with h11, an HTTP/1.1 implementation of its own, so what the server
writes is checked against a parser that is not pylive's."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import h11
import pytest
from asynchelpers import run

from pylive.emulator import http1
from pylive.emulator.http1 import ClientDisconnected, HttpRequest, HttpServer
from pylive.emulator.http_server import bind

Handler = Callable[[HttpRequest], Awaitable[None]]


def text(request: HttpRequest, body: bytes, status: int = 200) -> None:
    request.respond(status, [(b"content-length", str(len(body)).encode())], body)


async def echo(request: HttpRequest) -> None:
    """Answers with what it saw: method, path, raw path, query and body."""
    body = await request.body()
    said = b"|".join(
        [request.method.encode(), request.path.encode(), request.raw_path, request.query]
    )
    text(request, said + b"|" + (b"<too large>" if body is None else body))


def held(gate: asyncio.Event, path: str = "/slow", seen: list[str] | None = None) -> Handler:
    """A handler that answers each request with its path; a request for ``path`` (any
    request when ``path`` is ``"*"``) waits for ``gate`` first. ``seen`` gets each path as
    its request starts being handled."""

    async def handler(request: HttpRequest) -> None:
        if seen is not None:
            seen.append(request.path)
        if path in ("*", request.path):
            await gate.wait()
        text(request, request.path.encode())

    return handler


@asynccontextmanager
async def serving(handler: Handler, **options: float) -> AsyncIterator[HttpServer]:
    sock = bind("127.0.0.1", 0)
    server = HttpServer(handler, max_body=int(options.pop("max_body", 1000)), **options)
    await server.start(sock)
    task = asyncio.create_task(server.serve())
    try:
        yield server
    finally:
        server.stop()
        await asyncio.wait_for(task, 10)
        sock.close()


def port_of(server: HttpServer) -> int:
    return int(next(iter(server._server.sockets)).getsockname()[1])  # type: ignore[union-attr]


class Client:
    """A raw connection whose answers are parsed by h11."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = h11.Connection(h11.CLIENT)

    @classmethod
    async def to(cls, server: HttpServer) -> Client:
        return cls(*await asyncio.open_connection("127.0.0.1", port_of(server)))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self, head_only: bool = False) -> tuple[h11.Response, bytes]:
        """The next response; the h11 parser is told of each request it answers."""
        self.parser.send(
            h11.Request(method="HEAD" if head_only else "GET", target="/", headers=[("host", "x")])
        )
        self.parser.send(h11.EndOfMessage())
        response: h11.Response | None = None
        body = b""
        while True:
            event = self.parser.next_event()
            if event is h11.NEED_DATA:
                self.parser.receive_data(await self.reader.read(65536))
            elif isinstance(event, h11.InformationalResponse):
                continue
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert response is not None
                if self.parser.our_state is h11.DONE and self.parser.their_state is h11.DONE:
                    self.parser.start_next_cycle()
                return response, body
            else:
                raise AssertionError(f"unexpected {event!r}")

    async def closed(self) -> bool:
        """Whether the server closes the connection (it sends nothing more first)."""
        return await self.reader.read(65536) == b""

    def close(self) -> None:
        self.writer.close()


def header(response: h11.Response, name: bytes) -> bytes | None:
    return next((value for key, value in response.headers if key == name), None)


GET = b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n"


def test_a_request_and_its_answer() -> None:
    async def scenario() -> None:
        async with serving(echo) as server:
            client = await Client.to(server)
            await client.send(GET % b"/a%20b/c?x=1&y=%2F")
            response, body = await client.response()
            assert response.status_code == 200 and response.http_version == b"1.1"
            assert body == b"GET|/a b/c|/a%20b/c|x=1&y=%2F|"
            assert header(response, b"date") is not None
            assert header(response, b"connection") is None  # kept alive
            await client.send(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
            assert (await client.response())[1] == b"POST|/p|/p||hello"
            client.close()

    run(scenario())


def test_headers_keep_their_order_lowercase_without_trailing_space() -> None:
    seen: list[list[tuple[bytes, bytes]]] = []

    async def handler(request: HttpRequest) -> None:
        seen.append(request.headers)
        text(request, b"")

    async def scenario() -> None:
        async with serving(handler) as server:
            client = await Client.to(server)
            await client.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-B: 2 \t\r\nX-A: 1\r\nx-b: 3\r\n\r\n")
            await client.response()
            client.close()

    run(scenario())
    assert seen == [[(b"host", b"x"), (b"x-b", b"2"), (b"x-a", b"1"), (b"x-b", b"3")]]


def test_an_absolute_target_is_routed_by_its_path() -> None:
    async def scenario() -> None:
        async with serving(echo) as server:
            client = await Client.to(server)
            await client.send(GET % b"http://x/items?q=1")
            assert (await client.response())[1] == b"GET|/items|/items|q=1|"
            client.close()

    run(scenario())


def test_pipelined_requests_are_handled_one_at_a_time_in_order() -> None:
    running: list[str] = []

    async def scenario() -> None:
        gate = asyncio.Event()
        async with serving(held(gate, "/1", running)) as server:
            client = await Client.to(server)
            await client.send(GET % b"/1" + GET % b"/2" + GET % b"/3")
            while not running:
                await asyncio.sleep(0.01)
            assert running == ["/1"]
            gate.set()
            answers = [(await client.response())[1] for _ in range(3)]
            assert answers == [b"/1", b"/2", b"/3"]
            assert running == ["/1", "/2", "/3"]
            client.close()

    run(scenario())


def test_head_gets_the_headers_without_the_body() -> None:
    async def scenario() -> None:
        async with serving(echo) as server:
            client = await Client.to(server)
            await client.send(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n" + GET % b"/after")
            response, body = await client.response(head_only=True)
            assert body == b"" and header(response, b"content-length") == b"12"  # HEAD|/h|/h||
            assert (await client.response())[1] == b"GET|/after|/after||"
            client.close()

    run(scenario())


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    ],
    ids=["close", "http1.0", "http1.0-keep-alive"],
)
def test_a_connection_not_kept_alive_is_closed_after_its_answer(request_bytes: bytes) -> None:
    async def scenario() -> None:
        async with serving(echo) as server:
            client = await Client.to(server)
            await client.send(request_bytes + GET % b"/ignored")
            response, _ = await client.response()
            assert header(response, b"connection") == b"close"
            assert await client.closed()

    run(scenario())


def test_a_client_that_half_closes_still_gets_its_answer() -> None:
    async def scenario() -> None:
        gate = asyncio.Event()
        async with serving(held(gate, "*")) as server:
            client = await Client.to(server)
            await client.send(GET % b"/1")
            client.writer.write_eof()
            while not any(c._eof for c in server.connections):  # while /1 is handled
                await asyncio.sleep(0.01)
            gate.set()
            response, body = await client.response()
            assert body == b"/1" and header(response, b"connection") == b"close"
            assert await asyncio.wait_for(client.closed(), 5)
            # Closed at once: a server lingering for more would have sent its end first.
            assert not any(c._lingering for c in server.connections)

    run(scenario())


def test_a_request_to_switch_protocols_is_answered_plainly_and_the_connection_closed() -> None:
    async def scenario() -> None:
        async with serving(echo) as server:
            client = await Client.to(server)
            await client.send(
                GET
                % b"/first"
                + b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                b"\r\n\x81\x05hello"
            )
            assert (await client.response())[1] == b"GET|/first|/first||"
            response, body = await client.response()
            assert response.status_code == 200 and body == b"GET|/ws|/ws||"
            assert header(response, b"connection") == b"close"
            assert await client.closed()

    run(scenario())


def test_what_follows_a_protocol_switch_is_never_parsed() -> None:
    async def scenario() -> None:
        gate = asyncio.Event()
        async with serving(held(gate)) as server:
            client = await Client.to(server)
            await client.send(
                GET % b"/slow" + b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                b"Upgrade: websocket\r\n\r\n"
            )
            while not any(c._waiting for c in server.connections):  # /ws waits behind /slow
                await asyncio.sleep(0.01)
            await client.send(b"\x81\x05hello, not HTTP\r\n\r\n")
            gate.set()
            assert (await client.response())[1] == b"/slow"
            response, body = await client.response()
            assert (response.status_code, body) == (200, b"/ws")
            assert await client.closed()

    run(scenario())


@pytest.mark.parametrize(
    "request_bytes",
    [b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost x\r\n\r\n", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"],
    ids=["request-line", "header", "http2-preface"],
)
def test_a_malformed_request_gets_400_and_the_connection_closed(request_bytes: bytes) -> None:
    async def scenario() -> None:
        async with serving(echo) as server:
            client = await Client.to(server)
            await client.send(request_bytes)
            response, body = await client.response()
            assert (response.status_code, body) == (400, b"Invalid HTTP request received.")
            assert await client.closed()
            second = await Client.to(server)  # the server goes on
            await second.send(GET % b"/")
            assert (await second.response())[0].status_code == 200
            second.close()

    run(scenario())


def test_a_head_that_grows_past_a_mebibyte_without_end_is_cut_off() -> None:
    """A head is never kept whole past MAX_HEAD_BYTES, however long its deadline."""

    async def scenario() -> None:
        async with serving(echo, head_timeout=60) as server:
            client = await Client.to(server)
            filler = b"X-Filler: " + b"v" * 8000 + b"\r\n"
            await client.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
            try:
                for _ in range(http1.MAX_HEAD_BYTES // len(filler) + 2):
                    await client.send(filler)
                answer = await asyncio.wait_for(client.reader.read(65536), 5)
            except ConnectionError:  # closed while it was still sending: the answer is lost
                return
            assert answer.startswith(b"HTTP/1.1 431 ")
            assert await asyncio.wait_for(client.closed(), 5)

    run(scenario())


def test_a_head_past_the_limit_is_answered_431() -> None:
    async def scenario() -> None:
        async with serving(echo) as server:
            client = await Client.to(server)
            big = b"X-Big: " + b"v" * (http1.MAX_HEAD_BYTES + 1) + b"\r\n"
            await client.send(b"GET / HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")
            response, _ = await client.response()
            assert response.status_code == 431
            assert await client.closed()

    run(scenario())


def test_expect_100_continue_is_answered_when_the_handler_reads_the_body() -> None:
    async def refuse(request: HttpRequest) -> None:
        text(request, b"no", 413)

    async def scenario() -> None:
        for handler, continues in ((echo, True), (refuse, False)):
            async with serving(handler) as server:
                client = await Client.to(server)
                await client.send(
                    b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                    b"Content-Length: 2\r\n\r\n"
                )
                first = await client.reader.readuntil(b"\r\n\r\n")
                assert first.startswith(b"HTTP/1.1 100 Continue") is continues
                if continues:
                    await client.send(b"ok")
                    body = await client.reader.read(65536)
                    assert body.startswith(b"HTTP/1.1 200 OK") and body.endswith(b"POST|/|/||ok")
                else:
                    assert first.startswith(b"HTTP/1.1 413")
                client.close()

    run(scenario())


def test_a_body_past_max_body_is_none_and_the_connection_goes_on() -> None:
    async def scenario() -> None:
        async with serving(echo, max_body=10) as server:
            client = await Client.to(server)
            chunked = b"5\r\n12345\r\n5\r\n67890\r\n1\r\nX\r\n5\r\nmore!\r\n0\r\n\r\n"
            await client.send(
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked
            )
            assert (await client.response())[1] == b"POST|/|/||<too large>"
            await client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n1234567890")
            assert (await client.response())[1] == b"POST|/|/||1234567890"
            client.close()

    run(scenario())


def test_a_client_that_leaves_mid_body_ends_its_handler_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcome: list[str] = []

    async def handler(request: HttpRequest) -> None:
        try:
            await request.body()
        except ClientDisconnected:
            outcome.append("disconnected")
            raise
        text(request, b"")

    async def scenario() -> None:
        async with serving(handler) as server:
            client = await Client.to(server)
            await client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npart")
            while not server.connections or not any(c._active for c in server.connections):
                await asyncio.sleep(0.01)
            client.close()
            while not outcome:
                await asyncio.sleep(0.01)

    with caplog.at_level(logging.ERROR, logger="pylive.emulator.http1"):
        run(scenario())
    assert outcome == ["disconnected"]
    assert caplog.records == []


def test_a_failing_handler_gives_500_and_a_log_line_and_the_server_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(request: HttpRequest) -> None:
        if request.path == "/boom":
            raise RuntimeError("broken handler")
        if request.path == "/silent":
            return
        text(request, b"fine")

    async def scenario() -> None:
        async with serving(handler) as server:
            for path in (b"/boom", b"/silent"):
                client = await Client.to(server)
                await client.send(GET % path)
                response, body = await client.response()
                assert (response.status_code, body) == (500, b"Internal Server Error")
                assert await client.closed()
            client = await Client.to(server)
            await client.send(GET % b"/")
            assert (await client.response())[1] == b"fine"
            client.close()

    with caplog.at_level(logging.ERROR, logger="pylive.emulator.http1"):
        run(scenario())
    assert [r.getMessage() for r in caplog.records] == ["the HTTP API failed on GET /boom"]
    assert "broken handler" in (caplog.records[0].exc_text or "")


def test_only_the_first_answer_is_written() -> None:
    async def handler(request: HttpRequest) -> None:
        text(request, b"first", 503)
        text(request, b"second")

    async def scenario() -> None:
        async with serving(handler) as server:
            client = await Client.to(server)
            await client.send(GET % b"/" + GET % b"/")
            for _ in range(2):
                response, body = await client.response()
                assert (response.status_code, body) == (503, b"first")
            client.close()

    run(scenario())


def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout() -> None:
    async def scenario() -> None:
        gate = asyncio.Event()
        async with serving(held(gate), keep_alive_timeout=0.2) as server:
            busy = await Client.to(server)
            await busy.send(GET % b"/slow")
            idle = await Client.to(server)
            await idle.send(GET % b"/")
            await idle.response()
            assert await asyncio.wait_for(idle.closed(), 5)
            # A connection whose request is still being handled is not idle.
            assert len(server.connections) == 1
            gate.set()
            assert (await busy.response())[0].status_code == 200
            busy.close()

    run(scenario())


def test_stopping_closes_idle_connections_and_lets_answers_finish() -> None:
    async def scenario() -> None:
        gate = asyncio.Event()
        sock = bind("127.0.0.1", 0)
        server = HttpServer(held(gate), max_body=100)
        await server.start(sock)
        serving_task = asyncio.create_task(server.serve())
        port = port_of(server)
        idle = await Client.to(server)
        await idle.send(GET % b"/")
        await idle.response()
        busy = await Client.to(server)
        await busy.send(GET % b"/slow")
        while not any(c._active for c in server.connections):
            await asyncio.sleep(0.01)
        server.stop()
        assert await asyncio.wait_for(idle.closed(), 5)
        assert not serving_task.done()
        gate.set()
        response, body = await busy.response()
        assert body == b"/slow" and header(response, b"connection") == b"close"
        assert await busy.closed()
        busy.close()  # the server reads until the client closes too
        await asyncio.wait_for(serving_task, 5)
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)  # no longer listening
        sock.close()

    run(scenario())
