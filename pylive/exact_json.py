"""JSON at orjson's speed with the standard library's exactness.

orjson reads and writes JSON several times faster than the standard library, but it reads an
integer beyond 64 bits as a float (``18446744073709551616`` becomes ``1.8446744073709552e+19``)
and refuses to write one. Lambda's Python runtime uses the standard library, which keeps such
integers exact, so a relayed event or answer must too.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(data: bytes | bytearray | str) -> Any:
    """The JSON value of ``data``, integers exact. What orjson refuses raises its
    ``JSONDecodeError`` (a ValueError): NaN and Infinity, which are not JSON, and a few texts
    the standard library would still read (a lone surrogate escape, a number too large for a
    float); a caller that must read those too falls back to :func:`json.loads`."""
    value = orjson.loads(data)
    if _holds_float(value):  # perhaps an integer orjson rounded: read it the exact way
        return json.loads(data)  # strict JSON, since orjson took it
    return value


def dumps(value: Any) -> bytes:
    """``value`` as compact JSON; an integer beyond 64 bits (or a lone surrogate in a string)
    is written as the standard library writes it."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":")).encode()


def _holds_float(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
