"""A process's tree and liveness, read from ``/proc``.

Standard library only: the benchmark scripts (bench/common.py) use it as well as the tests.
"""

from __future__ import annotations

import os


def parent_pid(pid: int) -> int | None:
    """``pid``'s parent, or None when it is gone (or ``/proc`` cannot tell)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # The command name (in parentheses) may hold spaces: split after its last ") ".
            return int(f.read().rsplit(") ", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children...), parents before children."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (parent := parent_pid(int(entry))) is not None:
            children.setdefault(parent, []).append(int(entry))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def children(pid: int) -> list[int]:
    return [p for p in descendants(pid) if parent_pid(p) == pid]


def alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped) is not alive."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False
