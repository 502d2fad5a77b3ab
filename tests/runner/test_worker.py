"""The runner's side of the worker frames."""

from __future__ import annotations

import json

from pylive.runner.worker import _header


def test_a_header_with_a_lone_surrogate_is_read_as_the_worker_wrote_it() -> None:
    # The worker's standard library writes a file name that is not UTF-8 this way.
    written = json.dumps({"t": "ready", "modules": [["m", "/app/caf\udce9/m.py"]]}).encode()
    assert _header(written)["modules"] == [["m", "/app/caf\udce9/m.py"]]


def test_a_plain_header() -> None:
    assert _header(b'{"t":"result","id":"r","mem":12}') == {"t": "result", "id": "r", "mem": 12}
