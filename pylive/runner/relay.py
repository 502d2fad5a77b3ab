"""The runner's relay client: takes invocations from the stubs, runs them on the worker pool,
and sends the answers back.

It holds one WebSocket connection to the relay API (``?role=runner&app=&stage=``, SigV4
query-signed), reconnecting with backoff when the gateway drops it and renewing it before
API Gateway's 2-hour limit. Only frames received prove the connection works: when nothing
has arrived for ``keepalive`` seconds (30), a ``ping`` goes to the router, which answers
``pong``; without one within ``probe_timeout`` the client reconnects. That keeps the
connection from idling out (10 minutes at API Gateway, less at some NATs) and finds a path
that died silently (API Gateway answers no WebSocket-level pings, and a connection that died
while the laptop was offline looks open; an invoke posted to it is lost until the runner
reconnects and the stub posts it again). TCP keepalive runs on the socket too. When the wall
clock jumps ahead of the monotonic one (the machine slept), it pings at once. Each
``invoke`` (chunks are reassembled) runs on the pool; an ``ack`` goes to the stub only if the
answer is not ready within ``ack_after`` (100 ms), so a fast warm invocation costs exactly two
@connections calls (the stub's invoke, the runner's answer). The ``result`` or ``error`` goes
to the stub's connection (``reply_to``) through @connections, split into chunks when large.

An invoke whose request id the runner knows is the stub asking again, after it reconnected
or saw the runner do so: a running invocation is acked and answered at the new ``reply_to``;
a recent answer (the last ``ANSWERS_KEPT``, for ``ANSWER_KEEP_S``) is sent there again; one
it never saw is run, unless marked ``resume`` (it was acked by an earlier runner process),
which gets an error instead of a second run.

Temporary credentials (SSO, an assumed role) expire while a session runs for hours: with a
``credentials`` source, the client asks it again every few minutes (off the event loop) and
signs connects and @connections calls with what it answers.

A ``replaced`` message (another runner registered for the same app and stage) makes
:meth:`RelayClient.run` return ``"replaced"``; a malformed message is logged and skipped,
and a chunked invoke that cannot be reassembled (too many at once) is answered with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from pylive import exact_json
from pylive.in_lambda import protocol
from pylive.runner.answer_posts import AnswerPoster
from pylive.runner.connections import ConnectionsClient, describe_failure
from pylive.runner.invocation import InvokeResult
from pylive.runner.relay_answers import (
    MAX_MESSAGE_BYTES,
    RecentAnswers,
    answer_of,
    internal_error,
    unknown_function,
)
from pylive.runner.relay_endpoint import CredentialsSource, RelayEndpoint, SigningCredentials
from pylive.runner.tcp_keepalive import enable_tcp_keepalive
from pylive.sandbox.errors import RELAY_ERROR, error_fields

ACK_AFTER_S = 0.1
KEEPALIVE_S = 30.0  # ping when nothing was received for this long (idle limits: 10 min, NATs)
PROBE_TIMEOUT_S = 10.0  # the router (a Lambda function, maybe cold) answers a ping by then
TICK_S = 1.0  # how often the watchdog looks at the clocks
SLEPT_S = 3.0  # wall time gained over monotonic time that means the machine was asleep
CREDENTIALS_REFRESH_S = 5 * 60  # botocore renews temporary credentials 10-15 min early
RENEW_AFTER_S = 110 * 60  # ... and any connection after 2 hours
ANSWERS_KEPT = 64  # recent answers kept for a stub that asks again after a reconnect
ANSWER_KEEP_S = 120.0
ANSWERS_KEPT_BYTES = 32 * 1024 * 1024
BACKOFF_FIRST_S = 0.05
BACKOFF_MAX_S = 5.0

Outcome = Literal["stopped", "replaced"]


class Invoker(Protocol):
    async def invoke(
        self,
        function_id: str,
        event: bytes,
        *,
        request_id: str | None = None,
        client_context: dict[str, Any] | None = None,
        identity: dict[str, Any] | None = None,
        trace_id: str | None = None,
    ) -> InvokeResult: ...


class RelayClient:
    def __init__(
        self,
        endpoint: RelayEndpoint,
        invoker: Invoker,
        *,
        stop: asyncio.Event,
        log: Callable[[str], None],
        ack_after: float = ACK_AFTER_S,
        keepalive: float = KEEPALIVE_S,
        prepare: Callable[[protocol.Invoke], Awaitable[None]] | None = None,
        credentials: CredentialsSource | None = None,
        credentials_refresh: float = CREDENTIALS_REFRESH_S,
        probe_timeout: float = PROBE_TIMEOUT_S,
        tick: float = TICK_S,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.endpoint = endpoint
        self.credentials = credentials  # asked again every ``credentials_refresh`` seconds
        self.credentials_refresh = credentials_refresh
        self.probe_timeout = probe_timeout
        self.tick = tick
        self.wall_clock = wall_clock
        self._pongs: dict[str, asyncio.Future[None]] = {}
        self.pongs = 0  # pings answered in time: the connection proved alive
        self.invoker = invoker
        self.prepare = prepare  # runs before each invocation (e.g. assumes its role)
        self.stop = stop
        self.log = log
        self.ack_after = ack_after
        self.keepalive = keepalive
        self.connected = asyncio.Event()
        self.connects = 0
        self.connections = ConnectionsClient(endpoint.connections_url, endpoint.signer())
        self._poster = AnswerPoster(self.connections, lambda line: self.log(line))
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_received = time.monotonic()
        # Where each running invocation's answer goes (the stub may reconnect meanwhile).
        self._running: dict[str, list[str]] = {}
        self._answers = RecentAnswers(ANSWERS_KEPT, ANSWERS_KEPT_BYTES, ANSWER_KEEP_S)

    async def run(self) -> Outcome:
        """Serve until ``stop`` is set (``"stopped"``) or another runner took over
        (``"replaced"``)."""
        backoff = BACKOFF_FIRST_S
        refresher = asyncio.create_task(self._refresh_credentials())
        try:
            while not self.stop.is_set():
                try:
                    ws = await connect(
                        self.endpoint.signed_url(),
                        compression=None,
                        max_size=MAX_MESSAGE_BYTES,
                        ping_interval=None,
                        open_timeout=10,
                        close_timeout=2,
                    )
                except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
                    self.log(
                        f"cannot reach the relay at {self.endpoint.ws_url}: {describe_failure(exc)}"
                    )
                    if await self._sleep(backoff):
                        break
                    backoff = min(backoff * 2, BACKOFF_MAX_S)
                    continue
                backoff = BACKOFF_FIRST_S
                enable_tcp_keepalive(ws)
                self.connects += 1
                if self.connects > 1:
                    self.log("relay connection restored")
                self.connected.set()
                try:
                    outcome = await self._serve(ws)
                finally:
                    self.connected.clear()
                if outcome is not None:
                    return outcome
            return "stopped"
        finally:
            refresher.cancel()
            await self._drain()
            await self.connections.close()

    async def _refresh_credentials(self) -> None:
        """Ask the credentials source again and again; keep signing with the last good answer."""
        if self.credentials is None:
            return
        while not await self._sleep(self.credentials_refresh):
            try:
                fresh = await asyncio.to_thread(self.credentials)
            except Exception as exc:  # expired SSO session, network down: say so, keep going
                self.log(f"could not refresh your AWS credentials: {describe_failure(exc)}")
                continue
            self.use_credentials(fresh)

    def use_credentials(self, fresh: SigningCredentials) -> None:
        """Sign the next connect and @connections calls with ``fresh``."""
        self.endpoint = dataclasses.replace(
            self.endpoint,
            access_key_id=fresh.access_key_id,
            secret_access_key=fresh.secret_access_key,
            session_token=fresh.session_token,
        )
        self.connections.signer = self.endpoint.signer()

    async def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` unless stopped first; True when stopped."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.stop.wait()
        return self.stop.is_set()

    async def _serve(self, ws: ClientConnection) -> Outcome | None:
        opened = time.monotonic()
        reassembler = protocol.Reassembler(max_message_bytes=MAX_MESSAGE_BYTES)
        closer = asyncio.create_task(self._watch(ws, opened))
        try:
            async for frame in ws:
                self._last_received = time.monotonic()
                try:
                    message = reassembler.feed(frame)
                except protocol.ChunkRefused as exc:
                    self.log(f"protocol error on the relay connection: {exc}")
                    self._refuse(exc.chunk, exc.problem)
                    continue
                except protocol.ProtocolError as exc:
                    self.log(f"protocol error on the relay connection (ignored): {exc}")
                    continue
                if isinstance(message, protocol.Invoke):
                    self._spawn(self._handle(message))
                elif isinstance(message, protocol.Pong):
                    waiter = self._pongs.get(message.id)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(None)
                elif isinstance(message, protocol.Replaced):
                    self.log(f"stopping: {message.reason}")
                    await ws.close(1000)
                    return "replaced"
        except ConnectionClosed:
            pass
        finally:
            closer.cancel()
        if self.stop.is_set():
            return "stopped"
        code = ws.close_code
        self.log(f"relay connection closed (code {code}); reconnecting")
        return None

    async def _watch(self, ws: ClientConnection, opened: float) -> None:
        """Close on stop; renew before the age limit; when nothing was received for
        ``keepalive`` seconds, or at once after the machine slept, check with a ping that the
        connection still works, and close it (``run`` then reconnects) when no pong comes."""
        stopper = asyncio.ensure_future(self.stop.wait())
        self._last_received = time.monotonic()
        wall, mono = self.wall_clock(), time.monotonic()
        try:
            while True:
                done, _ = await asyncio.wait({stopper}, timeout=self.tick)
                if done:
                    await ws.close(1000, "pylive dev stopped")
                    return
                now_wall, now_mono = self.wall_clock(), time.monotonic()
                slept = (now_wall - wall) - (now_mono - mono)
                wall, mono = now_wall, now_mono
                if now_mono - opened >= RENEW_AFTER_S:
                    await ws.close(1000, "renewing")
                    return
                if slept >= SLEPT_S:
                    self.log(f"resumed after about {slept:.0f} s asleep; checking the relay")
                elif now_mono - self._last_received < self.keepalive:
                    continue
                if not await self._probe(ws, stopper):
                    self.log(
                        f"the relay did not answer a ping within {self.probe_timeout:g} s; "
                        "reconnecting"
                    )
                    await ws.close(1001, "no pong")
                    return
        finally:
            stopper.cancel()

    async def _probe(self, ws: ClientConnection, stopper: asyncio.Future[Any]) -> bool:
        """Send a ping; True when its pong arrives within ``probe_timeout`` (or the client
        is stopping meanwhile, which the caller sees next)."""
        ping = protocol.Ping(id=os.urandom(6).hex())
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pongs[ping.id] = waiter
        try:
            await ws.send(protocol.encode(ping))
            await asyncio.wait(
                {waiter, stopper}, timeout=self.probe_timeout, return_when=asyncio.FIRST_COMPLETED
            )
        except ConnectionClosed:
            return False
        finally:
            self._pongs.pop(ping.id, None)
        if waiter.done():
            self.pongs += 1
            return True
        return stopper.done()

    # -- one invocation ----------------------------------------------------------------------

    async def _handle(self, invoke: protocol.Invoke) -> None:
        reply_to = invoke.reply_to
        request_id = invoke.request_id
        if reply_to is None:
            self.log(f"invoke {request_id} names no connection to answer (dropped)")
            return
        again = self._asked_again(invoke, reply_to)
        if again is not None:
            await self._answer(reply_to, again)
            return
        target = self._running[request_id] = [reply_to]
        # Fires only while the invocation still runs (it is cancelled as soon as it ends).
        ack = asyncio.get_running_loop().call_later(
            self.ack_after, lambda: self._ack(target[0], request_id)
        )
        try:
            result = await self._run(invoke)
        except KeyError:
            result = unknown_function(invoke, self.endpoint.stage)
        except Exception as exc:  # a bug on this side: answer rather than let the stub wait
            result = internal_error(invoke, exc)
        finally:
            ack.cancel()
            del self._running[request_id]
        answer = answer_of(request_id, result)
        self._answers.keep(request_id, answer, len(result.body))
        await self._answer(target[0], answer)

    def _asked_again(self, invoke: protocol.Invoke, reply_to: str) -> protocol.Message | None:
        """The answer to an invoke the stub posted again (see the module's doc); None for
        one to run."""
        request_id = invoke.request_id
        running = self._running.get(request_id)
        if running is not None:
            running[0] = reply_to
            return protocol.Ack(request_id)
        answer = self._answers.get(request_id)
        if answer is not None or not invoke.resume:
            return answer
        lost = error_fields(
            f"pylive dev (stage {self.endpoint.stage}) restarted while running "
            f"{invoke.function_id}; the invocation was lost",
            RELAY_ERROR,
        )
        return protocol.Error(request_id, lost)

    def _refuse(self, chunk: protocol.Chunk, problem: str) -> None:
        """Answer the invoke whose chunks could not be taken, when they say which, so its stub
        fails with the reason instead of waiting for an ack that never comes. One posted
        again while it runs (or just ran) is acked (or answered) as usual."""
        request_id, reply_to = chunk.request_id, chunk.reply_to
        if request_id is None or reply_to is None:
            return
        running = self._running.get(request_id)
        if running is not None:
            running[0] = reply_to
            answer: protocol.Message | None = protocol.Ack(request_id)
        else:
            answer = self._answers.get(request_id)
        if answer is None:
            error = error_fields(
                f"pylive dev (stage {self.endpoint.stage}) could not take "
                f"invocation {request_id}: {problem}",
                RELAY_ERROR,
            )
            answer = protocol.Error(request_id, error)
        self._spawn(self._answer(reply_to, answer))

    async def _run(self, invoke: protocol.Invoke) -> InvokeResult:
        if self.prepare is not None:
            await self.prepare(invoke)
        context = invoke.context
        return await self.invoker.invoke(
            invoke.function_id,
            exact_json.dumps(invoke.event),
            request_id=invoke.request_id,
            client_context=context.client_context,
            identity=context.identity,
            trace_id=context.trace_id,
        )

    def _ack(self, reply_to: str, request_id: str) -> None:
        self._spawn(self._answer(reply_to, protocol.Ack(request_id)))

    async def _answer(self, reply_to: str, message: protocol.Message) -> None:
        await self._poster.post(reply_to, message)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, timeout: float = 2.0) -> None:
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
