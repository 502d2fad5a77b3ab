"""The stub's Lambda handler, ``stub.handler``: one :class:`~pylive.in_lambda.stub.Stub` per
container (per loaded copy of this module), made on the first invocation.

A bundle carries this file as its top-level ``stub.py``; a local host loads a copy of it per
container and may set ``environ`` and ``limits`` before the first invocation."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from pylive.in_lambda.stub import Stub
from pylive.in_lambda.stub.limits import StubLimits

environ: Mapping[str, str] = os.environ
limits = StubLimits()

_stub: Stub | None = None
_lock = threading.Lock()


def handler(event: Any, context: Any) -> Any:
    global _stub
    with _lock:
        if _stub is None:
            _stub = Stub(environ, limits)
    return _stub.handle(event, context)
