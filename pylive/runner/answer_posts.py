"""Posting the runner's answers to a stub's connection through @connections: one message
each, cut into chunks a few at a time in flight when it is larger than @connections takes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from pylive.in_lambda import protocol
from pylive.runner.connections import ConnectionsClient, describe_failure
from pylive.runner.relay_answers import request_id_of, within_limit

POST_CHUNK_BYTES = 120 * 1024  # @connections accepts 128 KB per message
CHUNK_POSTS_IN_FLIGHT = 8  # the chunks of one large answer posted at the same time


class AnswerPoster:
    """Posts answers (acks, results, errors) to the stubs' connections."""

    def __init__(self, connections: ConnectionsClient, log: Callable[[str], None]) -> None:
        self._connections = connections
        self._log = log

    async def post(self, reply_to: str, message: protocol.Message) -> None:
        """Send ``message`` to the connection ``reply_to``; a failure is logged, not raised."""
        encoded = within_limit(message, protocol.encode(message))
        frames = protocol.split(encoded, max_frame_bytes=POST_CHUNK_BYTES, raw=True)
        try:
            if len(frames) == 1:
                delivered = await self._connections.post(reply_to, frames[0].encode())
            else:
                delivered = await self._post_chunks(reply_to, frames)
        except (OSError, TimeoutError, RuntimeError) as exc:
            what = f"the {message.TYPE} of {request_id_of(message)}"
            self._log(f"could not send {what}: {describe_failure(exc)}")
            return
        if not delivered:
            self._log(f"the stub waiting for {request_id_of(message)} is gone; answer dropped")

    async def _post_chunks(self, reply_to: str, frames: list[str]) -> bool:
        """Post a large answer's chunks a few at a time: each POST is a network round trip to
        API Gateway, and the stub reassembles chunks in any order. False when it is gone."""
        gate = asyncio.Semaphore(CHUNK_POSTS_IN_FLIGHT)
        gone = failed = False

        async def post(frame: str) -> None:
            nonlocal gone, failed
            async with gate:
                if gone or failed:
                    return  # the answer cannot arrive whole any more
                try:
                    if not await self._connections.post(reply_to, frame.encode()):
                        gone = True
                except BaseException:
                    failed = True
                    raise

        outcomes = await asyncio.gather(*(post(f) for f in frames), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return not gone
