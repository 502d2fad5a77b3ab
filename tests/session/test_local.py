"""`pylive dev --local` end to end: the real CLI, real HTTP, real file edits, real signals."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from apphelpers import (
    Running,
    copy_app,
    create_app,
    http,
    json_body,
    poll,
    pylive_cmd,
)
from proctree import alive

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def template_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_app(tmp_path_factory.mktemp("app") / "demo")


@pytest.fixture
def app(template_app: Path, tmp_path: Path) -> Path:
    return copy_app(template_app, tmp_path / "demo")


@pytest.fixture(params=["relay", "direct"])
def path_args(request: pytest.FixtureRequest) -> list[str]:
    """Both request paths: straight to the workers (the default, and --direct), and through
    the stub and the local relay (--relay)."""
    return ["--relay"] if request.param == "relay" else []


@pytest.fixture
def dev(app: Path, path_args: list[str]) -> Iterator[tuple[Running, str]]:
    running = Running(pylive_cmd("dev", "--local", "--port", "0", *path_args), cwd=app)
    url = running.wait_line(r"on (http://127\.0\.0\.1:\d+)", timeout=120).group(1)
    yield running, url
    running.stop()


def test_serves_routes_like_an_http_api(dev: tuple[Running, str], app: Path) -> None:
    running, url = dev
    status, headers, body = http("GET", url + "/?name=Ada")
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert json_body(body)["message"] == "Hello, Ada!"

    status, _, body = http("POST", url + "/items/42", body=b'{"name": "pen"}')
    assert status == 200
    assert json_body(body) == {"id": "42", "body": {"name": "pen"}}
    running.wait_line(r"^items \| creating 42$")  # handler output, labelled
    running.wait_line(r"POST /items/42 -> items 200 [\d.]+ ms")  # one line per invocation

    assert http("GET", url + "/nowhere")[0:3:2] == (404, b'{"message":"Not Found"}')
    assert http("GET", url + "/boom")[0:3:2] == (500, b'{"message":"Internal Server Error"}')
    running.wait_line(r"RuntimeError: boom")

    dev_file_path = app / ".pylive" / "dev.json"
    dev_file = json.loads(dev_file_path.read_text())
    assert dev_file["http_url"] == url
    assert dev_file_path.stat().st_mode & 0o777 == 0o600
    if dev_file["path"] == "relay":
        assert dev_file["ws_url"].startswith("ws://127.0.0.1:")
        assert dev_file["connections_url"].startswith("http://127.0.0.1:")
        assert set(dev_file["credentials"]) == {"access_key_id", "secret_access_key"}


def test_a_crashing_handler_process_gives_500_and_the_next_request_works(
    dev: tuple[Running, str],
) -> None:
    _, url = dev
    assert http("GET", url + "/boom?how=exit")[0] == 500
    assert http("GET", url + "/")[0] == 200
    assert http("GET", url + "/boom?how=exit")[0] == 500


def test_saving_a_handler_serves_the_new_code(dev: tuple[Running, str], app: Path) -> None:
    running, url = dev
    assert json_body(http("GET", url + "/")[2])["message"] == "Hello, world!"
    hello = app / "functions" / "hello.py"
    hello.write_text(hello.read_text().replace("Hello, ", "Howdy, "))
    poll(lambda: json_body(http("GET", url + "/")[2])["message"] == "Howdy, world!")
    running.wait_line(r"hello: reloaded in \d+ ms")

    # A syntax error is shown clearly; the request fails like Lambda; the next save recovers.
    original = hello.read_text()
    hello.write_text(original + "\ndef broken(:\n")
    running.wait_line(r"hello: Runtime\.UserCodeSyntaxError: Syntax error in module")
    assert http("GET", url + "/")[0] == 500
    hello.write_text(original.replace("Howdy, ", "Hi, "))
    poll(lambda: http("GET", url + "/")[0] == 200)
    assert json_body(http("GET", url + "/")[2])["message"] == "Hi, world!"


def test_changing_the_stacks_updates_routes_without_a_restart(
    dev: tuple[Running, str], app: Path
) -> None:
    running, url = dev
    pid = running.proc.pid
    assert http("GET", url + "/items/1")[0] == 404
    stacks = app / "stacks.py"
    stacks.write_text(stacks.read_text().replace('"POST /items/{id}"', '"ANY /items/{id}"'))
    running.wait_line(r"routes updated \(3 routes\)", timeout=120)
    status, _, body = http("GET", url + "/items/1")
    assert status == 200, body
    assert running.proc.pid == pid and running.proc.poll() is None


def test_changing_a_module_the_stacks_import_updates_routes(app: Path) -> None:
    """The route comes from an app module of its own; saving that module re-synthesizes."""
    (app / "routes.py").write_text('ITEM_ROUTE = "POST /items/{id}"\n')
    stacks = app / "stacks.py"
    text = stacks.read_text()
    assert '"POST /items/{id}"' in text
    stacks.write_text(
        "from routes import ITEM_ROUTE\n" + text.replace('"POST /items/{id}"', "ITEM_ROUTE")
    )
    running = Running(pylive_cmd("dev", "--local", "--port", "0", "--direct"), cwd=app)
    try:
        url = running.wait_line(r"on (http://127\.0\.0\.1:\d+)", timeout=120).group(1)
        assert http("GET", url + "/items/1")[0] == 404
        (app / "routes.py").write_text('ITEM_ROUTE = "ANY /items/{id}"\n')
        running.wait_line(r"routes updated \(3 routes\)", timeout=120)
        status, _, body = http("GET", url + "/items/1")
        assert status == 200, body
    finally:
        running.stop()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stops_cleanly_leaving_no_process(app: Path, sig: int, path_args: list[str]) -> None:
    running = Running(pylive_cmd("dev", "--local", "--port", "0", *path_args), cwd=app)
    url = running.wait_line(r"on (http://127\.0\.0\.1:\d+)", timeout=120).group(1)
    assert http("GET", url + "/")[0] == 200
    children = running.descendants()
    assert children  # the worker host and at least one worker
    assert running.stop(sig) == 0
    assert "stopped" in running.lines[-1]
    assert not [line for line in running.lines if "Traceback" in line], running.lines
    assert not [pid for pid in children if alive(pid)]
    assert not (app / ".pylive" / "dev.json").exists()


def test_a_port_in_use_is_a_one_line_error(app: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        running = Running(pylive_cmd("dev", "--local", "--port", str(port)), cwd=app)
        code = running.proc.wait(60)
        running.stop()
    assert code == 4
    assert running.lines == [
        f"Error: cannot listen on 127.0.0.1:{port}: Address already in use; "
        "stop what uses it or pass --port with another port"
    ]


def test_workers_run_on_the_apps_own_venv(app: Path) -> None:
    """The app's .venv need not have pylive (or anything) installed."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(app / ".venv")], check=True)
    (app / "functions" / "hello.py").write_text(
        "import sys\n"
        "def handler(event, context):\n"
        "    return {'executable': sys.executable, 'prefix': sys.prefix}\n"
    )
    running = Running(pylive_cmd("dev", "--local", "--port", "0"), cwd=app)
    try:
        url = running.wait_line(r"on (http://127\.0\.0\.1:\d+)", timeout=120).group(1)
        status, headers, body = http("GET", url + "/")
        assert status == 200
        assert headers["apigw-requestid"]
        assert json_body(body)["prefix"] == str(app / ".venv")
    finally:
        assert running.stop() == 0


def test_cors_of_the_api_is_applied(app: Path) -> None:
    """`cors=True` goes through synthesis into the manifest and the local HTTP API answers
    preflights and adds CORS headers as API Gateway does."""
    stacks = app / "stacks.py"
    stacks.write_text(stacks.read_text().replace('"Api",\n', '"Api",\n            cors=True,\n'))
    running = Running(pylive_cmd("dev", "--local", "--port", "0", "--direct"), cwd=app)
    try:
        url = running.wait_line(r"on (http://127\.0\.0\.1:\d+)", timeout=120).group(1)
        manifest = json.loads((app / ".pylive" / "manifest.json").read_text())
        assert {r["route_key"]: r["cors"]["allow_origins"] for r in manifest["routes"]} == {
            "GET /": ["*"],
            "GET /boom": ["*"],
            "POST /items/{id}": ["*"],
        }
        origin = {"Origin": "http://localhost:5173"}
        status, headers, body = http(
            "OPTIONS",
            url + "/items/1",
            headers={**origin, "Access-Control-Request-Method": "POST"},
        )
        assert (status, body) == (204, b"")
        assert headers["access-control-allow-origin"] == "*"
        assert headers["access-control-allow-methods"] == "*"
        assert headers["access-control-allow-headers"] == "*"
        status, headers, _ = http("GET", url + "/", headers=origin)
        assert status == 200
        assert headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-origin" not in http("GET", url + "/")[1]
        running.wait_line(r"OPTIONS /items/1 -> CORS 204")
    finally:
        assert running.stop() == 0


def test_stub_output_leaves_out_the_report_of_an_error_the_function_already_showed() -> None:
    from pylive.session.local_cloud import StubOutput

    shown: list[tuple[str, str]] = []
    output = StubOutput(lambda function_id, line: shown.append((function_id, line)))
    for line in [
        "[ERROR] ValueError: bad input",  # re-raised for the function: its worker showed it
        "Traceback (most recent call last):",
        '  File "/var/task/stub.py", line 489, in handler',
        "    return _await_answer(conn, request_id, deadline_ms)",
        "pylive: ignored a relay message: chunk 3 of a message that was dropped",
        "[ERROR] PyliveDevNotRunning: pylive dev is not running for stage dev (no runner)",
        "Traceback (most recent call last):",
        '  File "/var/task/stub.py", line 470, in handler',
        "a line of its own",
    ]:
        output("hang", line)
    assert shown == [
        ("hang (stub)", "pylive: ignored a relay message: chunk 3 of a message that was dropped"),
        (
            "hang (stub)",
            "[ERROR] PyliveDevNotRunning: pylive dev is not running for stage dev (no runner)",
        ),
        ("hang (stub)", "a line of its own"),
    ]


def test_a_second_dev_in_the_same_app_is_refused_and_deletes_nothing(app: Path) -> None:
    first = Running(pylive_cmd("dev", "--local", "--port", "0"), cwd=app)
    url = first.wait_line(r"on (http://127\.0\.0\.1:\d+)", timeout=120).group(1)
    dev_json = (app / ".pylive" / "dev.json").read_text()
    # The second one also listens on every address: it warns about that before it is refused.
    second = subprocess.run(
        pylive_cmd("dev", "--local", "--port", "0", "--host", "0.0.0.0"),
        cwd=app,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 4, second.stderr
    warning, error = second.stderr.strip().splitlines()
    assert warning.startswith("Warning: --host 0.0.0.0 makes the local API reachable")
    assert error == (
        f"Error: pylive dev is already running for the app in {app} (pid {first.proc.pid}, "
        f"{url}, stage dev); stop it (Ctrl-C in its terminal) before starting another"
    )
    assert (app / ".pylive" / "dev.json").read_text() == dev_json  # the first one's, intact
    assert http("GET", url + "/")[0] == 200
    assert first.stop() == 0
    # Once it stopped, a new session starts (the lock died with the process).
    third = Running(pylive_cmd("dev", "--local", "--port", "0", "--direct"), cwd=app)
    third.wait_line(r"on (http://127\.0\.0\.1:\d+)", timeout=120)
    assert third.stop() == 0


def test_the_stubs_sign_as_their_roles_whose_policies_the_local_cloud_enforces(app: Path) -> None:
    """A statement the app adds to a function's role reaches the local cloud: here a Deny of
    every @connections call, which makes that function's stub fail as it would in AWS, while
    the other functions' stubs keep working."""
    stacks = app / "stacks.py"
    stacks.write_text(
        stacks.read_text().replace(
            "        Api(\n",
            "        api = Api(\n",
        )
        + (
            "\n\nfrom aws_cdk import aws_iam as iam\n"
            "_original = AppStack.__init__\n"
            "def _init(self, *args, **kwargs):\n"
            "    _original(self, *args, **kwargs)\n"
            "    api = self.node.find_child('Api')\n"
            "    api.routes['GET /'].function.add_to_role_policy(iam.PolicyStatement(\n"
            "        effect=iam.Effect.DENY, actions=['execute-api:ManageConnections'],\n"
            "        resources=['*']))\n"
            "AppStack.__init__ = _init\n"
        )
    )
    running = Running(pylive_cmd("dev", "--local", "--port", "0", "--relay"), cwd=app)
    try:
        url = running.wait_line(r"on (http://127\.0\.0\.1:\d+)", timeout=120).group(1)
        status, _, body = http("POST", url + "/items/7", body=b"{}")
        assert status == 200, body
        status, _, _ = http("GET", url + "/?name=Ada")
        assert status == 500
        running.wait_line(
            r"User: arn:aws:sts::123456789012:assumed-role/hello-role/hello is not "
            r"authorized to perform: execute-api:ManageConnections on resource: "
            r"arn:aws:execute-api:[a-z0-9-]+:123456789012:local/dev/POST/@connections/"
            r"\{connectionId\} with an explicit deny in an identity-based policy"
        )
        running.wait_line(
            r"hello \(stub\) \| \[ERROR\] PyliveRelayError: @connections POST "
            r"answered 403: .*assumed-role/hello-role/hello is not authorized"
        )
    finally:
        assert running.stop() == 0
