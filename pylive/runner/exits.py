"""How each worker process ended, as the fork-server reports it: the pool reads it to say why
an invocation's worker died (``exit status 3``, ``signal: killed``)."""

from __future__ import annotations

import asyncio

EXIT_REPORT_TIMEOUT = 2.0
REPORTS_KEPT = 1000  # of exits nobody asked about yet


class ExitStatuses:
    """The fork-server's exit reports, kept until asked for (an exit may be reported before
    or after the pool notices its worker is gone)."""

    def __init__(self) -> None:
        self._waiting: dict[int, asyncio.Future[str]] = {}
        self._reports: dict[int, str] = {}

    def reported(self, pid: int, status: str) -> None:
        future = self._waiting.pop(pid, None)
        if future is not None and not future.done():
            future.set_result(status)
        else:
            self._reports[pid] = status
            if len(self._reports) > REPORTS_KEPT:
                self._reports.pop(next(iter(self._reports)))

    async def status(self, pid: int) -> str:
        if pid in self._reports:
            return self._reports.pop(pid)
        future = asyncio.get_running_loop().create_future()
        self._waiting[pid] = future
        try:
            return await asyncio.wait_for(future, EXIT_REPORT_TIMEOUT)
        except TimeoutError:
            return "unknown exit status"
        finally:
            self._waiting.pop(pid, None)
