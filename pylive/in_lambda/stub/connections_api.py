"""The @connections API, as the stub calls it: SigV4-signed HTTP on kept-alive connections."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from urllib.parse import quote, urlsplit

from pylive.in_lambda.stub.errors import Gone, PyliveRelayError
from pylive.in_lambda.stub.http import Http
from pylive.in_lambda.stub.limits import CHUNK_POSTS_IN_FLIGHT
from pylive.in_lambda.stub.settings import Settings


def gateway_refusal(frame: str | bytes) -> str | None:
    """The message of API Gateway's own answer to a route request that failed (such as
    ``{"message": "Internal server error", "connectionId": ..., "requestId": ...}``)."""
    try:
        body = json.loads(frame)
    except ValueError:
        return None
    if isinstance(body, dict) and body.get("message") and "connectionId" in body:
        return str(body["message"])
    return None


def check_post(status: int, body: bytes) -> None:
    """Raise on a @connections POST answer other than 200 (410: the connection is gone)."""
    if status == 410:
        raise Gone
    if status != 200:
        raise PyliveRelayError(f"@connections POST answered {status}: {body[:200]!r}")


class ConnectionsApi:
    """The @connections API over one kept-alive HTTP(S) connection, SigV4-signed; the chunks
    of a large message go over up to ``CHUNK_POSTS_IN_FLIGHT`` connections at once (threads
    and connections made on first need, then kept with the container)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        url = urlsplit(settings.stub.callback_url)
        self.origin = f"{url.scheme}://{url.netloc}"
        self.base = url.path.rstrip("/")
        self._address = (url.hostname or "localhost", url.port, url.scheme == "https")
        self.http = self._new_http()
        self._lanes: list[Http] = []  # the extra connections for chunks
        self._threads: ThreadPoolExecutor | None = None

    def _new_http(self) -> Http:
        host, port, tls = self._address
        return Http(host, port, tls=tls)

    def send(self, method: str, connection_id: str, body: bytes = b"") -> None:
        """Send a call; :meth:`answer` reads its answer."""
        self._send(self.http, method, connection_id, body)

    def answer(self) -> tuple[int, bytes]:
        return self._answer(self.http)

    def post_all(self, connection_id: str, bodies: list[bytes]) -> list[tuple[int, bytes]]:
        """POST every body (the runner reassembles chunks in any order), each connection in
        turn stopping at its first answer other than 200; the answers of the posts made."""
        lanes = max(1, min(len(bodies), CHUNK_POSTS_IN_FLIGHT))
        while len(self._lanes) < lanes - 1:
            self._lanes.append(self._new_http())
        https = [self.http, *self._lanes[: lanes - 1]]
        parts = [bodies[index::lanes] for index in range(lanes)]
        others = [
            self._pool().submit(self._post_lane, https[lane], connection_id, parts[lane])
            for lane in range(1, lanes)
        ]
        try:
            answers = self._post_lane(https[0], connection_id, parts[0])
        finally:
            wait(others)  # every lane ends before its connection serves anything else
        for future in others:
            answers += future.result()  # raises what failed in that lane
        return answers

    def _pool(self) -> ThreadPoolExecutor:
        if self._threads is None:
            self._threads = ThreadPoolExecutor(
                CHUNK_POSTS_IN_FLIGHT - 1, thread_name_prefix="pylive-post"
            )
        return self._threads

    def _post_lane(
        self, http: Http, connection_id: str, bodies: list[bytes]
    ) -> list[tuple[int, bytes]]:
        answers = []
        for body in bodies:
            self._send(http, "POST", connection_id, body)
            answers.append(self._answer(http))
            if answers[-1][0] != 200:
                break
        return answers

    def _send(self, http: Http, method: str, connection_id: str, body: bytes) -> None:
        path = _connection_path(self.base, connection_id)
        headers = self.settings.signer.headers(method, self.origin + path, body)
        with self._unreachable():
            http.send(method, path, headers, body)

    def _answer(self, http: Http) -> tuple[int, bytes]:
        with self._unreachable():
            return http.answer()

    @contextlib.contextmanager
    def _unreachable(self) -> Iterator[None]:
        try:
            yield
        except (OSError, ValueError):
            raise PyliveRelayError(
                f"cannot reach the @connections API at {self.settings.stub.callback_url}"
            ) from None

    def close(self) -> None:
        for http in (self.http, *self._lanes):
            http.close()


@functools.lru_cache(maxsize=64)
def _connection_path(base: str, connection_id: str) -> str:
    """A connection's @connections path (the same few on every warm invocation)."""
    return f"{base}/@connections/{quote(connection_id, safe='')}"
