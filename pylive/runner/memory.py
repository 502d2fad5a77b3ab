"""Lambda's memory limit, locally: a function that goes over its memory size is stopped.

Lambda runs each function in a sandbox capped at the function's ``memory_size``; going over
it kills the runtime and fails the invocation with ``Runtime.OutOfMemory``. Locally the pool
looks at the resident memory (``VmRSS``) of every busy worker a few times a second and stops
a worker over its function's memory size the same way, so a handler that would run out of
memory in AWS fails on the developer's machine first. (Not the peak, ``VmHWM``: it would
blame the next invocation for a burst the last one had and released.)

It reads ``/proc``: on systems without it (macOS) no limit is enforced. A forked worker's
resident memory includes the pages it shares with the worker host (the imports preloaded
for it), which Lambda would count too, as the function imports them there.
"""

from __future__ import annotations

WATCH_INTERVAL_S = 0.1


def rss_mb(pid: int) -> float | None:
    """The process's resident memory in MB; None if it cannot be read (gone, no /proc)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def out_of_memory_report(function_id: str, used_mb: float, memory_size: int) -> str:
    """The line the function's log shows (Lambda's REPORT line says the same in numbers)."""
    return (
        f"{function_id} used {used_mb:.0f} MB, more than its memory size of {memory_size} MB: "
        "stopped, as Lambda would (raise memory_size on the function if it needs more)"
    )
