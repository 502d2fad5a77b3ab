"""The stub's errors. Lambda reports an exception's class name as the invocation's
``errorType``: these names are what a caller sees when the relay fails."""

from __future__ import annotations


class PyliveDevNotRunning(Exception):
    """No runner is connected for this app and stage."""


class PyliveRelayTimeout(Exception):
    """The runner took the invocation but did not answer before the function's deadline."""


class PyliveRelayError(Exception):
    """The relay connection failed while an invocation was in flight."""


class _ConnectionLost(PyliveRelayError):
    """This container's relay connection closed."""


class Gone(Exception):
    """@connections answered 410: the connection posted to is gone."""


class Closed(Exception):
    """The WebSocket connection is closed."""
