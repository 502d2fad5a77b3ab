"""Random bytes for the ids made on every request, read from the OS a block at a time: one
system call per few hundred ids instead of one per id, with the quality of ``os.urandom``."""

from __future__ import annotations

import os
import threading

BLOCK_BYTES = 4096

_block = b""
_offset = 0
_lock = threading.Lock()  # event loops in other threads make ids too


def random_bytes(count: int) -> bytes:
    """``count`` (at most ``BLOCK_BYTES``) bytes from ``os.urandom``, none ever given twice."""
    global _block, _offset
    with _lock:
        end = _offset + count
        if end > len(_block):
            _block, _offset, end = os.urandom(BLOCK_BYTES), 0, count
        chunk = _block[_offset:end]
        _offset = end
    return chunk


def _forget() -> None:
    """A forked child must not hand out the bytes its parent will hand out too (nor wait on
    a lock another thread of the parent held)."""
    global _block, _offset, _lock
    _block, _offset, _lock = b"", 0, threading.Lock()


os.register_at_fork(after_in_child=_forget)
