"""Run a handler once under the real Lambda runtime interface client (``awslambdaric``).

Usage::

    outcome = run_with_ric(HANDLERS_DIR, "result_str.handler", b"{}")
    assert outcome.kind == "response" and outcome.body == b'"hello"'

A one-shot Runtime API server (stdlib ``http.server`` on 127.0.0.1, ephemeral port, one per
call) serves a single ``GET /2018-06-01/runtime/invocation/next`` and records the first
``POST .../invocation/{id}/response``, ``.../invocation/{id}/error`` or ``.../init/error``
(each answered 202). Later ``/next`` polls are parked until the run ends, then dropped. The
client runs as ``python -m awslambdaric <handler>`` with ``cwd=code_dir`` in a clean,
Lambda-like environment (see ``lambda_environment``), is killed (whole process group) once
something is recorded, and every thread, pipe and socket is closed before returning.

Contract facts observed with awslambdaric 4.2.2 on CPython 3.11 (tests in test_ric_harness.py
pin each of them):

Results (``POST /invocation/{id}/response``)
- JSON results are encoded by simplejson with ``", "`` / ``": "`` separators, e.g. ``"hello"``,
  ``42``, ``0.30000000000000004``, ``null``, ``true``,
  ``[1, "two", 3.0, null, true, {"k": "v"}]``; Content-Type ``application/json``.
- ``ensure_ascii`` depends on AWS_EXECUTION_ENV: with ``AWS_Lambda_python3.11`` (or unset)
  non-ASCII is escaped (``"h\\u00e9llo"``, emoji as surrogate pairs ``"\\ud83d\\ude80"``);
  with ``AWS_Lambda_python3.12``..``3.15`` it is raw UTF-8. The same applies to error bodies.
- ``bytes`` results are posted unchanged with Content-Type ``application/unknown``.
- ``float('nan')``/``inf`` encode as ``NaN``/``Infinity``/``-Infinity``;
  ``Decimal("12.50")`` encodes as ``12.50`` and ``Decimal("NaN")`` as ``NaN``.
- A ~1 MB dict (1,039,360 bytes of JSON) is posted in one request with Content-Length.
- A set or a datetime gives an *invocation* error (not init): ``Runtime.MarshalError``,
  ``"Unable to marshal response: Object of type set is not JSON serializable"`` (``datetime``
  for a datetime), ``stackTrace: []``, requestId set.

Invocation errors (``POST /invocation/{id}/error``)
- Body keys, in this order: ``errorMessage``, ``errorType``, ``requestId``, ``stackTrace``.
  ``errorType`` is ``type(exc).__name__`` (e.g. ``ValueError``, ``PaymentDeclinedError``, no
  module prefix); ``errorMessage`` is ``str(exc)`` (``""`` for a bare ``raise KeyError``).
- ``stackTrace`` is ``traceback.format_list`` of the frames after the runtime's bootstrap.py
  frames, outermost first, starting at the handler: each entry is
  ``'  File "/abs/path/mod.py", line 10, in handler\\n    return middle(7)\\n'``.
- Headers: Content-Type ``application/json``; **no** Lambda-Runtime-Function-Error-Type
  header; ``Lambda-Runtime-Function-XRay-Error-Cause`` is JSON
  ``{"working_directory": cwd, "exceptions": [{"message", "type", "stack": [{"label",
  "path", "line"}]}], "paths": [...]}`` (type ``LambdaValidationError`` and empty stack for
  runtime faults such as MarshalError).
- Runtime faults: a non-JSON event gives ``Runtime.UnmarshalError``
  ``"Unable to unmarshal input: Expecting value: line 1 column 1 (char 0)"``; a bad
  client-context header gives ``Runtime.LambdaContextUnmarshalError``
  ``"Unable to parse Client Context JSON: <json error>"``; both with ``stackTrace: []``.
- The error is also written to **stdout** (text log format) as one line:
  ``"[ERROR] ValueError: bad thing: 7\\rTraceback (most recent call last):\\r"`` followed by
  each stack line split on newlines, joined with ``\\r``, leading spaces replaced by U+00A0,
  ending in ``\\n``; with no message it is ``"[ERROR] KeyError\\r..."``; the ``Traceback``
  header is printed even for an empty stackTrace.
- ``sys.exit(3)`` in a handler (SystemExit is not caught) posts nothing: the process exits
  with status 3 after one ``/next`` (outcome kind ``"exit"``).

Init errors (``POST /runtime/init/error``, no ``/next`` is made, then exit status 1)
- Same four keys; ``requestId`` is ``""``. Header ``Lambda-Runtime-Function-Error-Type``
  equals ``errorType``; no Content-Type header (sent via http.client).
- Missing module: ``Runtime.ImportModuleError``,
  ``"Unable to import module 'import_missing': No module named 'oracle_missing_dependency'"``
  (the quoted name is the handler's module; after the colon comes ``str(ImportError)``),
  ``[]``; a handler module that does not exist gives
  ``"Unable to import module 'no_such_module': No module named 'no_such_module'"``.
- Missing function: ``Runtime.HandlerNotFound``,
  ``"Handler 'handler' missing on module 'handler_missing'"``, ``[]``.
- Syntax error: ``Runtime.UserCodeSyntaxError``,
  ``"Syntax error in module 'broken': expected ':' (broken.py, line 1)"``, stackTrace is one
  entry ``'  File "/abs/broken.py" Line 1\\n    def handler(event, context)\\n'`` (capital
  ``Line``, no comma, no function name; the source line keeps its trailing newline).
- ``"nodot"``: ``Runtime.MalformedHandlerName``,
  ``"Bad handler 'nodot': not enough values to unpack (expected 2, got 1)"``;
  ``"sys.handler"``: ``Runtime.BuiltInModuleConflict``,
  ``"Cannot use built-in module sys as a handler module"``.
- An exception raised while importing the module keeps its own type (``RuntimeError``,
  ``"config unavailable"``) and its stackTrace starts at ``importlib/__init__.py ...
  in import_module``, then ``<frozen importlib._bootstrap>`` frames (no source line), then the
  module's ``<module>`` frame and deeper frames.
- stdout gets ``"[WARNING]\\t<ts>\\t\\tLAMBDA_WARNING: Unhandled exception. ...\\r\\n"`` and
  then the ``[ERROR] ...`` line as above.

Context (``LambdaContext``)
- Public names (``sorted(dir())`` without ``_``): aws_request_id, client_context,
  function_name, function_version, get_remaining_time_in_millis, identity,
  invoked_function_arn, log, log_group_name, log_stream_name, memory_limit_in_mb, tenant_id,
  w3c.
- ``memory_limit_in_mb`` is a **str** (``"128"``); name, version, log group and stream come
  from the environment; request id and ARN from the /next headers.
- ``identity`` is always a ``CognitoIdentity`` with ``cognito_identity_id`` /
  ``cognito_identity_pool_id`` (None when no header; from ``cognitoIdentityId`` /
  ``cognitoIdentityPoolId``).
- ``client_context`` is None without the header, else a ``ClientContext`` (custom, env,
  client) whose ``client`` has installation_id, app_title, app_version_name,
  app_version_code, app_package_name (missing ones None); a ``w3c`` key is removed.
- ``tenant_id`` always exists (None unless Lambda-Runtime-Aws-Tenant-Id is sent).
- ``get_remaining_time_in_millis()`` returns an int, clamped at 0 past the deadline.

Environment and process
- ``_X_AMZN_TRACE_ID`` is set from Lambda-Runtime-Trace-Id for the invocation.
- ``sys.path[:2]`` are both ``code_dir`` (cwd for ``-m`` plus PYTHONPATH); cwd is code_dir.
- ``print`` goes to the process's own stdout/stderr unchanged (``"to stdout\\n"``).
- ``"pkg/sub/mod.handler"`` and ``"pkg.sub.mod.handler"`` both import ``pkg.sub.mod``.
- The client's User-Agent is ``aws-lambda-python/<python version>-<ric version>``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any, Literal

__all__ = [
    "DEFAULT_FUNCTION_ARN",
    "DEFAULT_REQUEST_ID",
    "DEFAULT_TRACE_ID",
    "FUNCTION_MEMORY_SIZE",
    "FUNCTION_NAME",
    "HANDLERS_DIR",
    "LOG_GROUP_NAME",
    "LOG_STREAM_NAME",
    "REGION",
    "OutcomeKind",
    "RecordedRequest",
    "RicOutcome",
    "lambda_environment",
    "run_with_ric",
]

HANDLERS_DIR = Path(__file__).resolve().parent / "handlers"
"""The handler corpus; use it as ``code_dir`` with handlers such as ``result_str.handler``."""

FUNCTION_NAME = "oracle-function"
FUNCTION_MEMORY_SIZE = "128"
REGION = "us-east-1"
LOG_GROUP_NAME = f"/aws/lambda/{FUNCTION_NAME}"
LOG_STREAM_NAME = "2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef"
DEFAULT_REQUEST_ID = "5c7b4e0c-3d1a-4c1e-9f0e-6a2b8d9e1f01"
DEFAULT_FUNCTION_ARN = f"arn:aws:lambda:{REGION}:123456789012:function:{FUNCTION_NAME}"
DEFAULT_TRACE_ID = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
DEFAULT_DEADLINE_BUDGET_MS = 300_000
INIT_ERROR_EXIT_GRACE = 5.0

_API = "/2018-06-01/runtime"
_NEXT_PATH = f"{_API}/invocation/next"
_INIT_ERROR_PATH = f"{_API}/init/error"
_INVOCATION_POST = re.compile(
    rf"^{re.escape(_API)}/invocation/(?P<id>[^/]+)/(?P<what>response|error)$"
)

OutcomeKind = Literal["response", "error", "init_error", "exit"]


@dataclass(frozen=True)
class RecordedRequest:
    """One request the runtime client made to the Runtime API. Header names are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class RicOutcome:
    """What the runtime client reported for the single invocation.

    ``kind`` is ``"response"``, ``"error"`` or ``"init_error"`` after the matching POST, or
    ``"exit"`` when the process ended without posting anything (for example ``sys.exit`` inside
    the handler); then ``body`` is empty and ``returncode`` tells how it ended.
    """

    kind: OutcomeKind
    body: bytes
    content_type: str | None
    error_type: str | None
    headers: dict[str, str]
    path: str
    request_id: str
    returncode: int | None
    pid: int | None
    stdout: bytes
    stderr: bytes
    requests: tuple[RecordedRequest, ...] = field(default=())

    def json(self) -> Any:
        """The posted body decoded as JSON."""
        return json.loads(self.body)

    @property
    def stdout_text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")

    @property
    def stderr_text(self) -> str:
        return self.stderr.decode("utf-8", errors="replace")


@dataclass
class _Invocation:
    request_id: str
    event: bytes
    headers: dict[str, str]


class _RuntimeApi(ThreadingHTTPServer):
    """A Runtime API that hands out one invocation and records what comes back."""

    daemon_threads = False  # handler threads are joined by server_close()
    block_on_close = True

    def __init__(self, invocation: _Invocation, connection_timeout: float) -> None:
        self.invocation = invocation
        self.connection_timeout = connection_timeout
        self.lock = threading.Lock()
        self.served = False
        self.requests: list[RecordedRequest] = []
        self.outcome: RecordedRequest | None = None
        self.done = threading.Event()
        self.stopping = threading.Event()
        super().__init__(("127.0.0.1", 0), _RuntimeApiHandler)

    @property
    def address(self) -> str:
        host, port = self.server_address[:2]
        return f"{host!s}:{port}"

    def record(self, request: RecordedRequest, *, outcome: bool) -> None:
        with self.lock:
            self.requests.append(request)
            if outcome and self.outcome is None:
                self.outcome = request
        if outcome:
            self.done.set()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The client is killed with its connection still open; a reset there is expected.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def take_invocation(self) -> _Invocation | None:
        with self.lock:
            if self.served:
                return None
            self.served = True
            return self.invocation


class _RuntimeApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _RuntimeApi

    def setup(self) -> None:
        super().setup()
        # Bound every read, so no connection thread can outlive a run by much.
        self.connection.settimeout(self.server.connection_timeout)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _headers(self) -> dict[str, str]:
        return {name.lower(): value for name, value in self.headers.items()}

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.record(RecordedRequest("GET", self.path, self._headers(), b""), outcome=False)
        if self.path != _NEXT_PATH:
            self._reply(404, b'{"errorType":"NotFound"}', {"Content-Type": "application/json"})
            return
        invocation = self.server.take_invocation()
        if invocation is None:
            # The client polls again right after reporting; park it until the harness stops,
            # then drop the connection without answering.
            self.server.stopping.wait(self.server.connection_timeout)
            self.close_connection = True
            return
        self._reply(200, invocation.event, invocation.headers)

    def do_POST(self) -> None:
        body = self._read_body()
        request = RecordedRequest("POST", self.path, self._headers(), body)
        match = _INVOCATION_POST.match(self.path)
        known = self.path == _INIT_ERROR_PATH or (
            match is not None and match["id"] == self.server.invocation.request_id
        )
        if not known:
            self.server.record(request, outcome=False)
            self._reply(404, b'{"errorType":"NotFound"}', {"Content-Type": "application/json"})
            return
        # Answer before signalling, so the client is never killed mid-request by the harness.
        with contextlib.suppress(OSError):
            self._reply(202, b'{"status":"OK"}', {"Content-Type": "application/json"})
        self.server.record(request, outcome=True)


def lambda_environment(
    code_dir: Path, handler: str, runtime_api: str, env: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment a Lambda Python runtime process starts with (minus credentials)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    result = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": "UTC",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": str(code_dir),
        "LAMBDA_TASK_ROOT": str(code_dir),
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "_HANDLER": handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{version}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": FUNCTION_MEMORY_SIZE,
        "AWS_LAMBDA_LOG_GROUP_NAME": LOG_GROUP_NAME,
        "AWS_LAMBDA_LOG_STREAM_NAME": LOG_STREAM_NAME,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }
    result.update(env or {})
    return result


def _drain(stream: IO[bytes], sink: list[bytes]) -> None:
    with stream:
        sink.append(stream.read())


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # The child leads its own session (start_new_session=True), so its group id is its pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_with_ric(
    code_dir: Path,
    handler: str,
    event: bytes,
    *,
    env: dict[str, str] | None = None,
    request_id: str = DEFAULT_REQUEST_ID,
    deadline_ms: int | None = None,
    function_arn: str = DEFAULT_FUNCTION_ARN,
    trace_id: str = DEFAULT_TRACE_ID,
    client_context: str | None = None,
    cognito_identity: str | None = None,
    tenant_id: str | None = None,
    timeout: float = 30,
) -> RicOutcome:
    """Invoke ``handler`` (``module.function``) in ``code_dir`` once under ``awslambdaric``.

    ``deadline_ms`` is epoch milliseconds (default: now + 300 s). ``client_context`` and
    ``cognito_identity`` are the raw JSON header values. Raises ``TimeoutError`` when nothing
    is reported within ``timeout`` seconds.
    """
    code_dir = Path(code_dir).resolve()
    if deadline_ms is None:
        deadline_ms = int(time.time() * 1000) + DEFAULT_DEADLINE_BUDGET_MS
    next_headers = {
        "Content-Type": "application/json",
        "Lambda-Runtime-Aws-Request-Id": request_id,
        "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
        "Lambda-Runtime-Invoked-Function-Arn": function_arn,
        "Lambda-Runtime-Trace-Id": trace_id,
    }
    if client_context is not None:
        next_headers["Lambda-Runtime-Client-Context"] = client_context
    if cognito_identity is not None:
        next_headers["Lambda-Runtime-Cognito-Identity"] = cognito_identity
    if tenant_id is not None:
        next_headers["Lambda-Runtime-Aws-Tenant-Id"] = tenant_id

    server = _RuntimeApi(_Invocation(request_id, event, next_headers), timeout + 5)
    server_thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="ric-runtime-api"
    )
    server_thread.start()
    helpers: list[threading.Thread] = []
    out: list[bytes] = []
    err: list[bytes] = []
    proc: subprocess.Popen[bytes] | None = None
    finished = False
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "awslambdaric", handler],
            cwd=code_dir,
            env=lambda_environment(code_dir, handler, server.address, env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert proc.stdout is not None and proc.stderr is not None
        running = proc

        def wait_exit() -> None:
            running.wait()
            server.done.set()

        helpers = [
            threading.Thread(target=_drain, args=(proc.stdout, out), name="ric-stdout"),
            threading.Thread(target=_drain, args=(proc.stderr, err), name="ric-stderr"),
            threading.Thread(target=wait_exit, name="ric-wait"),
        ]
        for thread in helpers:
            thread.start()
        finished = server.done.wait(timeout)
    finally:
        if proc is not None:
            if server.outcome is not None and server.outcome.path == _INIT_ERROR_PATH:
                # The client exits by itself after reporting an init error; let it.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(INIT_ERROR_EXIT_GRACE)
            _kill_group(proc)
            proc.wait()
        for thread in helpers:
            thread.join()
        server.stopping.set()
        server.shutdown()
        server.server_close()
        server_thread.join()

    returncode = proc.returncode if proc is not None else None
    stdout, stderr = b"".join(out), b"".join(err)
    outcome = server.outcome
    if outcome is None:
        if not finished:
            raise TimeoutError(
                f"awslambdaric reported nothing within {timeout}s for {handler!r}; "
                f"stderr: {stderr.decode('utf-8', 'replace')[-2000:]}"
            )
        return RicOutcome(
            kind="exit",
            body=b"",
            content_type=None,
            error_type=None,
            headers={},
            path="",
            request_id=request_id,
            returncode=returncode,
            pid=proc.pid if proc is not None else None,
            stdout=stdout,
            stderr=stderr,
            requests=tuple(server.requests),
        )
    kind: OutcomeKind
    if outcome.path == _INIT_ERROR_PATH:
        kind = "init_error"
    elif outcome.path.endswith("/response"):
        kind = "response"
    else:
        kind = "error"
    return RicOutcome(
        kind=kind,
        body=outcome.body,
        content_type=outcome.headers.get("content-type"),
        error_type=outcome.headers.get("lambda-runtime-function-error-type"),
        headers=dict(outcome.headers),
        path=outcome.path,
        request_id=request_id,
        returncode=returncode,
        pid=proc.pid if proc is not None else None,
        stdout=stdout,
        stderr=stderr,
        requests=tuple(server.requests),
    )
