"""`pylive dev --local --debug`: a Debug Adapter Protocol client (what VS Code speaks) attaches
to a worker, stops at a breakpoint in the handler, reads a variable, and continues."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
from apphelpers import Running, copy_app, create_app, http, pylive_cmd

pytestmark = pytest.mark.slow


class DapClient:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.sock.makefile("rb")
        self.seq = 0

    def send(self, command: str, **arguments: Any) -> int:
        self.seq += 1
        body = json.dumps(
            {"seq": self.seq, "type": "request", "command": command, "arguments": arguments}
        ).encode()
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return self.seq

    def read(self) -> dict[str, Any]:
        length = 0
        while (line := self.file.readline().strip()) != b"":
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        message: dict[str, Any] = json.loads(self.file.read(length))
        return message

    def until(self, kind: str, name: str) -> dict[str, Any]:
        """Read messages until an event of that name, or the response to that command."""
        for _ in range(500):
            message = self.read()
            key = "event" if kind == "event" else "command"
            if message["type"] == kind and message.get(key) == name:
                return message
        raise AssertionError(f"no {kind} {name}")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_app(tmp_path_factory.mktemp("debug") / "demo")


def test_breakpoint_in_handler_is_hit(app: Path, tmp_path: Path) -> None:
    app = copy_app(app, tmp_path / "demo")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        debug_port = probe.getsockname()[1]
    running = Running(
        pylive_cmd("dev", "--local", "--port", "0", "--debug", "--debug-port", str(debug_port)),
        cwd=app,
    )
    try:
        url = running.wait_line(r"on (http://127\.0\.0\.1:\d+)", timeout=120).group(1)
        port_line = r"debugger for hello: attach to 127\.0\.0\.1:(\d+)"
        hello_port = int(running.wait_line(port_line).group(1))
        assert debug_port <= hello_port < debug_port + 3  # one port per function, in order
        handler = app / "functions" / "hello.py"
        line = handler.read_text().splitlines().index('    name = params.get("name", "world")') + 2

        dap = DapClient(hello_port)
        dap.send("initialize", adapterID="debugpy", clientID="test", pathFormat="path")
        dap.until("response", "initialize")
        dap.send("attach", justMyCode=True)
        dap.until("event", "initialized")
        dap.send("setBreakpoints", source={"path": str(handler)}, breakpoints=[{"line": line}])
        assert dap.until("response", "setBreakpoints")["body"]["breakpoints"][0]["verified"]
        dap.send("configurationDone")
        dap.until("response", "configurationDone")

        result: list[tuple[int, dict[str, str], bytes]] = []
        request = threading.Thread(target=lambda: result.append(http("GET", url + "/?name=Bug")))
        request.start()
        stopped = dap.until("event", "stopped")
        assert stopped["body"]["reason"] == "breakpoint"
        thread_id = stopped["body"]["threadId"]

        dap.send("stackTrace", threadId=thread_id)
        frame = dap.until("response", "stackTrace")["body"]["stackFrames"][0]
        assert frame["line"] == line and frame["source"]["path"] == str(handler)
        dap.send("evaluate", expression="name", frameId=frame["id"], context="watch")
        assert dap.until("response", "evaluate")["body"]["result"] == "'Bug'"

        dap.send("continue", threadId=thread_id)
        request.join(30)
        assert result and result[0][0] == 200
        assert json.loads(result[0][2])["message"] == "Hello, Bug!"
        dap.close()
    finally:
        assert running.stop() == 0
