"""What `pylive dev` was asked for: one options object for every kind of session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Target = Literal["aws", "local", "direct"]
DEBUG_TIMEOUT_S = 900.0  # a breakpoint may hold an invocation for minutes


@dataclass(frozen=True)
class DevOptions:
    """``target`` says where invocations come from, the one thing in which sessions differ:

    - ``"aws"``: the stage's functions are deployed as stubs that relay every invocation here;
    - ``"local"``: the local cloud on loopback (HTTP API, the functions' stubs, the WebSocket
      API and its router) takes each request the path a deployed app takes;
    - ``"direct"``: the local HTTP API calls the workers, with no stub and no relay between.
    """

    target: Target = "local"
    host: str = "127.0.0.1"  # the local HTTP API's address (not with "aws")
    port: int = 3000
    debug: bool = False
    debug_port: int = 5678
    debug_wait: bool = False
    watch: bool = True
    assume_role: bool = False  # "aws" only: each function runs as its execution role
    web_console: bool = True  # serve the web console (invocations are recorded either way)
    console_port: int = 0  # 0: any free port

    @property
    def timeout_override(self) -> float | None:
        """Every function's timeout while a debugger may hold it."""
        return DEBUG_TIMEOUT_S if self.debug else None
