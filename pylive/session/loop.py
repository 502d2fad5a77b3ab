"""The event loop pylive's commands run on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


def run_event_loop(main: Callable[[], Any]) -> Any:
    """Run ``main()`` on uvloop when available (it carries the hot path faster)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())
