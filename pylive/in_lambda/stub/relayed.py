"""One invocation relayed to the runner: the invoke posted, then acks, logs and the answer
read until it is in, with what keeps it going (reconnects, reposts, keepalive pings)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from pylive.in_lambda import protocol
from pylive.in_lambda.stub.connection import Connection
from pylive.in_lambda.stub.errors import (
    Gone,
    PyliveRelayError,
    PyliveRelayTimeout,
    _ConnectionLost,
)
from pylive.in_lambda.stub.limits import POST_CHUNK_BYTES


class Relayed:
    """One invocation relayed to the runner, until its answer is in: the invoke (posted again
    after a reconnect, to the stub's new connection or to the runner's) and its progress."""

    def __init__(self, conn: Connection, invoke: protocol.Invoke) -> None:
        self.conn = conn
        self.settings = conn.settings
        self.invoke = invoke
        self.frames = self._frames()
        self.acked = False
        self.ack_end = time.monotonic() + self.settings.stub.ack_timeout
        self.grace_end: float | None = None  # set at the first ack timeout
        self.probe_sent: float | None = None  # epoch seconds of an unanswered ping

    @property
    def deadline(self) -> float:
        return self.invoke.deadline_ms / 1000

    def _frames(self) -> list[bytes]:
        encoded = protocol.encode(self.invoke)
        limit = self.settings.limits.max_message_bytes
        if len(encoded) > limit:  # the runner would drop it: say so
            raise PyliveRelayError(
                f"the invocation of {self.settings.stub.function_id} is {len(encoded)} bytes "
                f"encoded, over the relay's limit of {limit} bytes for one message"
            )
        # The chunks name the invoke: a runner that cannot take them answers with the reason.
        invoke = self.invoke
        return protocol.split_encoded(
            encoded,
            max_frame_bytes=POST_CHUNK_BYTES,
            request_id=invoke.request_id,
            reply_to=invoke.reply_to,
            raw=True,
        )

    # -- posting the invoke ----------------------------------------------------------------

    def _post(self, *, read_last_answer: bool = True) -> None:
        """Post the invoke to the runner: one frame with its answer left unread unless
        ``read_last_answer``; the chunks of a large one several at a time, answers read."""
        conn = self.conn
        assert conn.runner_id is not None
        if len(self.frames) == 1:
            conn.post(conn.runner_id, self.frames[0], read_answer=read_last_answer)
        else:
            conn.post_all(conn.runner_id, self.frames)

    def _post_again(self) -> None:
        """The runner's connection is gone; it may have reconnected under a new id."""
        self.conn.whoami()
        if self.conn.runner_id is not None:
            try:
                self._post()
                self.ack_end = time.monotonic() + self.settings.stub.ack_timeout
                return
            except Gone:
                pass
        raise self._runner_gone("its connection is gone")

    def _repost(self) -> None:
        """Post the invoke again, answers to this connection; ``resume`` once acked, so a
        runner that does not know it any more says so instead of running it again."""
        self.invoke = dataclasses.replace(
            self.invoke, reply_to=self.conn.connection_id, resume=self.acked
        )
        self.frames = self._frames()
        self.probe_sent = None
        try:
            self._post()
        except Gone:
            self._post_again()
        self.ack_end = time.monotonic() + self.settings.stub.ack_timeout

    def _runner_gone(self, why: str) -> Exception:
        self.conn.runner_id = None
        if not self.acked:
            return self.settings.not_running(why)
        return PyliveRelayError(
            f"pylive dev for stage {self.settings.stub.stage} disconnected while running "
            f"{self.settings.stub.function_id}; the invocation was lost"
        )

    # -- recovering ------------------------------------------------------------------------

    def _reconnect(self) -> None:
        """This connection died (closed, or a ping went unanswered): open a new one and
        post the invoke again, so the answer comes there."""
        self.conn.close()
        self.conn.ensure_open(until=self.deadline)
        if self.conn.runner_id is None:
            raise self._runner_gone("no runner is connected")
        self._repost()

    def _no_ack(self) -> None:
        """No ack in time: prove this connection with ``whoami`` (which also gives the
        runner's current id) and post again to a runner that reconnected; a registered runner
        that stays silent gets ``runner_grace`` seconds to come back."""
        if self.grace_end is None:
            self.grace_end = time.monotonic() + self.settings.stub.runner_grace
        before = self.conn.runner_id
        try:
            self.conn.whoami()
        except _ConnectionLost:
            self._reconnect()
            return
        if self.conn.runner_id is None:
            raise self.settings.not_running("no runner is connected")
        if self.conn.runner_id != before:
            self._repost()
            return
        if time.monotonic() >= self.grace_end:
            waited = self.settings.stub.ack_timeout + self.settings.stub.runner_grace
            raise self.settings.not_running(f"no answer within {waited:g} s")
        self.ack_end = time.monotonic() + self.settings.stub.ack_timeout

    def _check_runner(self) -> None:
        """While the invocation runs: is the runner's connection still there? A runner that
        renewed its connection (or reconnected) is asked again for the invocation."""
        if self.conn.runner_alive():
            return
        before = self.conn.runner_id
        end = time.monotonic() + self.settings.limits.runner_reconnect_s
        while True:
            self.conn.whoami()
            if self.conn.runner_id not in (None, before) or time.monotonic() >= end:
                break
            time.sleep(0.2)  # a runner renewing its connection registers again at once
        if self.conn.runner_id in (None, before):
            raise self._runner_gone("its connection is gone")
        self._repost()

    def _keepalive(self) -> float:
        """Ping when nothing was received for ``keepalive_s``; a ping unanswered for
        ``probe_timeout_s`` means the connection is dead. Seconds until the next check."""
        now, limits = time.time(), self.settings.limits
        if self.probe_sent is not None:
            if self.conn.last_received >= self.probe_sent:
                self.probe_sent = None
            elif now - self.probe_sent >= limits.probe_timeout_s:
                self._reconnect()
                return 0.0
            else:
                return self.probe_sent + limits.probe_timeout_s - now
        quiet = now - self.conn.last_received
        if quiet < limits.keepalive_s:
            return limits.keepalive_s - quiet
        self.conn.ping()
        self.probe_sent = now
        return limits.probe_timeout_s

    # -- waiting ---------------------------------------------------------------------------

    def answer(self) -> Any:
        try:
            self._post(read_last_answer=False)
        except Gone:
            self._post_again()
        while True:
            try:
                message = self._next()
            except _ConnectionLost:
                self._reconnect()
                continue
            if message is None:
                continue
            if getattr(message, "request_id", None) != self.invoke.request_id:
                continue  # a pong, or a late answer to an earlier invocation
            if isinstance(message, protocol.Ack):
                self.acked = True
            elif isinstance(message, protocol.Result):
                return message.payload
            elif isinstance(message, protocol.Error):
                raise remote_error(message)
            elif isinstance(message, protocol.Log):
                print(message.text, end="" if message.text.endswith("\n") else "\n")

    def _next(self) -> protocol.Message | None:
        """The next message within a short wait, after the checks that are due."""
        conn, settings = self.conn, self.settings.stub
        remaining = self.deadline - self.settings.limits.deadline_margin_s - time.time()
        if remaining <= 0:
            raise PyliveRelayTimeout(
                f"{settings.function_id} did not answer before its deadline on the developer's "
                f"machine (stage {settings.stage})"
            )
        if self.acked:
            wait = min(remaining, settings.liveness_interval)
        else:
            wait = min(remaining, self.ack_end - time.monotonic())
            if wait <= 0:
                self._no_ack()
                return None
        wait = min(wait, self._keepalive())
        unread = conn.post_unread
        message = conn.receive(
            min(wait, self.settings.limits.post_answer_wait_s) if unread else wait
        )
        if unread:
            try:
                conn.finish_post()
            except Gone:  # the runner never saw the invoke
                self._post_again()
        if message is None and self.acked:
            self._check_runner()
        return message


def remote_error(error: protocol.Error) -> Exception:
    """An exception Lambda reports with the remote errorType and errorMessage."""
    name = error.error_type or "Exception"
    cls: type[Exception] = type(name, (Exception,), {"__module__": "pylive_remote"})
    return cls(error.error_message)
