"""The runtime-client harness and the handler corpus, checked against ``awslambdaric`` itself."""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .ric import (
    DEFAULT_FUNCTION_ARN,
    DEFAULT_REQUEST_ID,
    DEFAULT_TRACE_ID,
    FUNCTION_NAME,
    HANDLERS_DIR,
    LOG_GROUP_NAME,
    LOG_STREAM_NAME,
    RicOutcome,
    run_with_ric,
)

NEXT = "/2018-06-01/runtime/invocation/next"
INIT_ERROR = "/2018-06-01/runtime/init/error"
PY311 = {"AWS_EXECUTION_ENV": "AWS_Lambda_python3.11"}
PY312 = {"AWS_EXECUTION_ENV": "AWS_Lambda_python3.12"}
ERROR_KEYS = ["errorMessage", "errorType", "requestId", "stackTrace"]


def invoke(handler: str, event: bytes = b"{}", **kwargs: object) -> RicOutcome:
    return run_with_ric(HANDLERS_DIR, handler, event, **kwargs)  # type: ignore[arg-type]


def frame(module: str, line: int, function: str, source: str) -> str:
    return f'  File "{HANDLERS_DIR / module}", line {line}, in {function}\n    {source}\n'


def assert_gone(outcome: RicOutcome) -> None:
    assert outcome.pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(outcome.pid, 0)


# --- results -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "body"),
    [
        ("result_str", b'"hello"'),
        ("result_int", b"42"),
        ("result_float", b"0.30000000000000004"),
        ("result_none", b"null"),
        ("result_bool", b"true"),
        ("result_list", b'[1, "two", 3.0, null, true, {"k": "v"}]'),
        ("result_dict", b'{"ok": true, "n": 1, "nested": {"list": [1, 2.5, null, "x"]}}'),
        ("result_decimal", b'{"price": 12.50, "nan": NaN}'),
        ("result_nan", b'{"nan": NaN, "inf": Infinity, "ninf": -Infinity}'),
    ],
)
def test_json_results_are_posted_verbatim(module: str, body: bytes) -> None:
    outcome = invoke(f"{module}.handler")
    assert outcome.kind == "response"
    assert outcome.path == f"/2018-06-01/runtime/invocation/{DEFAULT_REQUEST_ID}/response"
    assert outcome.body == body
    assert outcome.content_type == "application/json"
    assert outcome.error_type is None
    assert_gone(outcome)


def test_str_result_is_a_json_string() -> None:
    outcome = invoke("result_str.handler")
    assert outcome.body == b'"hello"'
    assert outcome.json() == "hello"


def test_unicode_is_ascii_escaped_before_python_312() -> None:
    outcome = invoke("result_unicode.handler", env=PY311)
    assert outcome.body == (
        b'{"greeting": "h\\u00e9llo w\\u00f6rld", "nested": {"emoji": "\\ud83d\\ude80",'
        b' "cjk": ["\\u65e5\\u672c\\u8a9e", "\\u4e2d\\u6587"]}}'
    )


def test_unicode_is_raw_utf8_from_python_312() -> None:
    outcome = invoke("result_unicode.handler", env=PY312)
    assert (
        outcome.body
        == (
            '{"greeting": "héllo wörld", "nested": {"emoji": "🚀", "cjk": ["日本語", "中文"]}}'
        ).encode()
    )


def test_bytes_result_is_raw_application_unknown() -> None:
    outcome = invoke("result_bytes.handler")
    assert outcome.kind == "response"
    assert outcome.body == b"\x00\x01binary\xff"
    assert outcome.content_type == "application/unknown"


def test_large_result() -> None:
    outcome = invoke("result_large.handler")
    assert outcome.kind == "response"
    assert len(outcome.body) == 1_039_360
    assert outcome.headers["content-length"] == "1039360"
    assert outcome.json() == {f"key{i:04d}": "x" * 1000 for i in range(1024)}


@pytest.mark.parametrize(
    ("module", "type_name"), [("result_set", "set"), ("result_datetime", "datetime")]
)
def test_unserialisable_result_is_a_marshal_error(module: str, type_name: str) -> None:
    outcome = invoke(f"{module}.handler")
    assert outcome.kind == "error"
    assert outcome.path == f"/2018-06-01/runtime/invocation/{DEFAULT_REQUEST_ID}/error"
    assert outcome.content_type == "application/json"
    assert outcome.error_type is None
    message = f"Unable to marshal response: Object of type {type_name} is not JSON serializable"
    assert (
        outcome.body
        == json.dumps(
            {
                "errorMessage": message,
                "errorType": "Runtime.MarshalError",
                "requestId": DEFAULT_REQUEST_ID,
                "stackTrace": [],
            }
        ).encode()
    )
    assert json.loads(outcome.headers["lambda-runtime-function-xray-error-cause"]) == {
        "working_directory": str(HANDLERS_DIR),
        "exceptions": [{"message": message, "type": "LambdaValidationError", "stack": []}],
        "paths": [],
    }
    assert outcome.stdout_text == (
        f"[ERROR] Runtime.MarshalError: {message}\rTraceback (most recent call last):\n"
    )


# --- events --------------------------------------------------------------------------------


def test_event_is_decoded_as_json() -> None:
    outcome = invoke("echo_event.handler", b'{"a": [1, 2], "b": "\\u00e9"}')
    assert outcome.json() == {"a": [1, 2], "b": "é"}


def test_invalid_json_event_is_an_unmarshal_error() -> None:
    outcome = invoke("echo_event.handler", b"not json")
    assert outcome.kind == "error"
    assert outcome.json() == {
        "errorMessage": "Unable to unmarshal input: Expecting value: line 1 column 1 (char 0)",
        "errorType": "Runtime.UnmarshalError",
        "requestId": DEFAULT_REQUEST_ID,
        "stackTrace": [],
    }


# --- handler exceptions --------------------------------------------------------------------


def test_nested_exception_stack_trace() -> None:
    outcome = invoke("error_nested.handler", request_id="req-nested")
    assert outcome.kind == "error"
    assert outcome.content_type == "application/json"
    assert outcome.error_type is None
    error = outcome.json()
    assert list(error) == ERROR_KEYS
    assert error == {
        "errorMessage": "bad thing: 7",
        "errorType": "ValueError",
        "requestId": "req-nested",
        "stackTrace": [
            frame("error_nested.py", 10, "handler", "return middle(7)"),
            frame("error_nested.py", 6, "middle", "return inner(value)"),
            frame("error_nested.py", 2, "inner", 'raise ValueError(f"bad thing: {value}")'),
        ],
    }
    path = str(HANDLERS_DIR / "error_nested.py")
    assert json.loads(outcome.headers["lambda-runtime-function-xray-error-cause"]) == {
        "working_directory": str(HANDLERS_DIR),
        "exceptions": [
            {
                "message": "bad thing: 7",
                "type": "ValueError",
                "stack": [
                    {"label": "handler", "path": path, "line": 10},
                    {"label": "middle", "path": path, "line": 6},
                    {"label": "inner", "path": path, "line": 2},
                ],
            }
        ],
        "paths": [path],
    }


def test_exception_is_logged_to_stdout_with_cr_separated_lines() -> None:
    outcome = invoke("error_nested.handler")
    nbsp = "\u00a0"
    assert outcome.stdout_text == (
        "[ERROR] ValueError: bad thing: 7\rTraceback (most recent call last):\r"
        f'{nbsp * 2}File "{HANDLERS_DIR / "error_nested.py"}", line 10, in handler\r'
        f"{nbsp * 4}return middle(7)\r"
        f'{nbsp * 2}File "{HANDLERS_DIR / "error_nested.py"}", line 6, in middle\r'
        f"{nbsp * 4}return inner(value)\r"
        f'{nbsp * 2}File "{HANDLERS_DIR / "error_nested.py"}", line 2, in inner\r'
        f'{nbsp * 4}raise ValueError(f"bad thing: {{value}}")\n'
    )
    assert outcome.stderr == b""


def test_custom_exception_type_is_the_class_name() -> None:
    error = invoke("error_custom.handler").json()
    assert error["errorType"] == "PaymentDeclinedError"
    assert error["errorMessage"] == "card declined"
    assert error["stackTrace"] == [
        frame("error_custom.py", 6, "handler", 'raise PaymentDeclinedError("card declined")')
    ]


def test_non_ascii_message_is_escaped_before_python_312() -> None:
    outcome = invoke("error_unicode.handler", env=PY311)
    assert b'"errorMessage": "\\u00e9chec: donn\\u00e9es invalides \\u2717"' in outcome.body
    assert outcome.json()["errorMessage"] == "échec: données invalides ✗"
    assert outcome.stdout_text.startswith("[ERROR] RuntimeError: échec: données invalides ✗\r")


def test_non_ascii_message_is_raw_utf8_from_python_312() -> None:
    outcome = invoke("error_unicode.handler", env=PY312)
    assert '"errorMessage": "échec: données invalides ✗"'.encode() in outcome.body


def test_exception_without_message() -> None:
    outcome = invoke("error_no_message.handler")
    error = outcome.json()
    assert error["errorMessage"] == ""
    assert error["errorType"] == "KeyError"
    assert outcome.stdout_text.startswith("[ERROR] KeyError\rTraceback (most recent call last):\r")


def test_sys_exit_in_handler_posts_nothing_and_exits() -> None:
    outcome = invoke("exit_in_handler.handler")
    assert outcome.kind == "exit"
    assert outcome.returncode == 3
    assert outcome.body == b""
    assert [(r.method, r.path) for r in outcome.requests] == [("GET", NEXT)]
    assert outcome.stdout == b""
    assert outcome.stderr == b""


# --- init errors ---------------------------------------------------------------------------


def assert_init_error(outcome: RicOutcome, error_type: str, message: str) -> dict[str, object]:
    assert outcome.kind == "init_error"
    assert outcome.path == INIT_ERROR
    assert outcome.error_type == error_type
    assert outcome.content_type is None
    assert outcome.returncode == 1
    assert [(r.method, r.path) for r in outcome.requests] == [("POST", INIT_ERROR)]
    error = outcome.json()
    assert list(error) == ERROR_KEYS
    assert error["errorType"] == error_type
    assert error["errorMessage"] == message
    assert error["requestId"] == ""
    assert (
        outcome.stdout_text.startswith("[WARNING]\t")
        and "\t\tLAMBDA_WARNING: Unhandled exception." in outcome.stdout_text
    )
    assert f"\r\n[ERROR] {error_type}: {message}\rTraceback (most recent call last):" in (
        outcome.stdout_text
    )
    assert isinstance(error, dict)
    return error


def test_missing_module_import() -> None:
    error = assert_init_error(
        invoke("import_missing.handler"),
        "Runtime.ImportModuleError",
        "Unable to import module 'import_missing': No module named 'oracle_missing_dependency'",
    )
    assert error["stackTrace"] == []


def test_missing_handler_module() -> None:
    error = assert_init_error(
        invoke("no_such_module.handler"),
        "Runtime.ImportModuleError",
        "Unable to import module 'no_such_module': No module named 'no_such_module'",
    )
    assert error["stackTrace"] == []


def test_handler_not_found() -> None:
    error = assert_init_error(
        invoke("handler_missing.handler"),
        "Runtime.HandlerNotFound",
        "Handler 'handler' missing on module 'handler_missing'",
    )
    assert error["stackTrace"] == []


def test_compile_time_syntax_error() -> None:
    error = assert_init_error(
        invoke("syntax_error.handler"),
        "Runtime.UserCodeSyntaxError",
        "Syntax error in module 'syntax_error': 'return' outside function"
        " (syntax_error.py, line 3)",
    )
    assert error["stackTrace"] == [
        f'  File "{HANDLERS_DIR / "syntax_error.py"}" Line 3\n    return value  # noqa: F706\n'
    ]


def test_parse_time_syntax_error(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def handler(event, context)\n    return 1\n")
    outcome = run_with_ric(tmp_path, "broken.handler", b"{}")
    error = assert_init_error(
        outcome,
        "Runtime.UserCodeSyntaxError",
        "Syntax error in module 'broken': expected ':' (broken.py, line 1)",
    )
    assert error["stackTrace"] == [
        f'  File "{tmp_path.resolve() / "broken.py"}" Line 1\n    def handler(event, context)\n'
    ]


def test_malformed_handler_name() -> None:
    error = assert_init_error(
        invoke("nodot"),
        "Runtime.MalformedHandlerName",
        "Bad handler 'nodot': not enough values to unpack (expected 2, got 1)",
    )
    assert error["stackTrace"] == []


def test_builtin_module_conflict() -> None:
    assert_init_error(
        invoke("sys.handler"),
        "Runtime.BuiltInModuleConflict",
        "Cannot use built-in module sys as a handler module",
    )


def test_exception_at_module_init() -> None:
    error = assert_init_error(invoke("init_raises.handler"), "RuntimeError", "config unavailable")
    trace = error["stackTrace"]
    assert isinstance(trace, list)
    # Frames start at importlib.import_module (only bootstrap.py frames are dropped).
    assert trace[0].startswith('  File "') and ", in import_module\n" in trace[0]
    assert any(line.startswith('  File "<frozen importlib._bootstrap>"') for line in trace)
    assert trace[-2:] == [
        frame("init_raises.py", 5, "<module>", "CONFIG = load_config()"),
        frame("init_raises.py", 2, "load_config", 'raise RuntimeError("config unavailable")'),
    ]


# --- context and environment ---------------------------------------------------------------


def test_context_defaults() -> None:
    before = int(time.time() * 1000)
    outcome = invoke("context_dump.handler", deadline_ms=before + 60_000)
    ctx = outcome.json()
    remaining = ctx.pop("remaining_time_in_millis")
    assert 0 < remaining <= 60_000
    env = ctx.pop("env")
    assert ctx == {
        "context_type": "LambdaContext",
        "aws_request_id": DEFAULT_REQUEST_ID,
        "function_name": FUNCTION_NAME,
        "function_version": "$LATEST",
        "memory_limit_in_mb": "128",
        "memory_limit_in_mb_type": "str",
        "invoked_function_arn": DEFAULT_FUNCTION_ARN,
        "log_group_name": LOG_GROUP_NAME,
        "log_stream_name": LOG_STREAM_NAME,
        "identity_type": "CognitoIdentity",
        "identity": {"cognito_identity_id": None, "cognito_identity_pool_id": None},
        "client_context": None,
        "remaining_time_in_millis_type": "int",
        "has_tenant_id": True,
        "tenant_id": None,
        "public_attributes": [
            "aws_request_id",
            "client_context",
            "function_name",
            "function_version",
            "get_remaining_time_in_millis",
            "identity",
            "invoked_function_arn",
            "log",
            "log_group_name",
            "log_stream_name",
            "memory_limit_in_mb",
            "tenant_id",
            "w3c",
        ],
        "sys_path_head": [str(HANDLERS_DIR), str(HANDLERS_DIR), ctx["sys_path_head"][2]],
        "cwd": str(HANDLERS_DIR),
    }
    assert env["_HANDLER"] == "context_dump.handler"
    assert env["_X_AMZN_TRACE_ID"] == DEFAULT_TRACE_ID
    assert env["LAMBDA_TASK_ROOT"] == str(HANDLERS_DIR)
    assert env["AWS_LAMBDA_RUNTIME_API"].startswith("127.0.0.1:")
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"


def test_context_from_headers() -> None:
    client_context = {
        "custom": {"k": "v"},
        "env": {"e": "1"},
        "client": {"installation_id": "i1", "app_title": "t"},
        "w3c": {"traceparent": "00-abc"},
    }
    identity = {"cognitoIdentityId": "us-east-1:id", "cognitoIdentityPoolId": "us-east-1:pool"}
    ctx = invoke(
        "context_dump.handler",
        request_id="req-ctx",
        function_arn="arn:aws:lambda:eu-west-1:111122223333:function:f:live",
        trace_id="Root=1-00000000-000000000000000000000001;Sampled=0",
        client_context=json.dumps(client_context),
        cognito_identity=json.dumps(identity),
        tenant_id="tenant-7",
    ).json()
    assert ctx["aws_request_id"] == "req-ctx"
    assert ctx["invoked_function_arn"] == "arn:aws:lambda:eu-west-1:111122223333:function:f:live"
    assert ctx["env"]["_X_AMZN_TRACE_ID"] == "Root=1-00000000-000000000000000000000001;Sampled=0"
    assert ctx["identity"] == {
        "cognito_identity_id": "us-east-1:id",
        "cognito_identity_pool_id": "us-east-1:pool",
    }
    assert ctx["client_context"] == {
        "custom": {"k": "v"},
        "env": {"e": "1"},
        "client": {
            "installation_id": "i1",
            "app_title": "t",
            "app_version_name": None,
            "app_version_code": None,
            "app_package_name": None,
        },
    }
    assert ctx["tenant_id"] == "tenant-7"


def test_remaining_time_is_zero_past_the_deadline() -> None:
    assert invoke("context_dump.handler", deadline_ms=1000).json()["remaining_time_in_millis"] == 0


def test_invalid_client_context_header() -> None:
    outcome = invoke("context_dump.handler", client_context="{bad")
    assert outcome.kind == "error"
    assert outcome.json() == {
        "errorMessage": "Unable to parse Client Context JSON: Expecting property name enclosed in"
        " double quotes: line 1 column 2 (char 1)",
        "errorType": "Runtime.LambdaContextUnmarshalError",
        "requestId": DEFAULT_REQUEST_ID,
        "stackTrace": [],
    }


def test_env_overrides_reach_the_handler() -> None:
    ctx = invoke(
        "context_dump.handler",
        env={"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024", "TZ": "Europe/Paris"},
    ).json()
    assert ctx["memory_limit_in_mb"] == "1024"
    assert ctx["env"]["TZ"] == "Europe/Paris"


# --- output, packages, harness hygiene -----------------------------------------------------


def test_print_goes_to_the_process_streams() -> None:
    outcome = invoke("prints.handler")
    assert outcome.json() == "printed"
    assert outcome.stdout == b"to stdout\n"
    assert outcome.stderr == b"to stderr\n"


@pytest.mark.parametrize("handler", ["nested_pkg/sub/mod.handler", "nested_pkg.sub.mod.handler"])
def test_handler_in_a_subpackage(handler: str) -> None:
    assert invoke(handler).json() == {"module": "nested_pkg.sub.mod"}


def test_request_log_and_client_identity() -> None:
    outcome = invoke("result_str.handler")
    assert [(r.method, r.path) for r in outcome.requests] == [
        ("GET", NEXT),
        ("POST", f"/2018-06-01/runtime/invocation/{DEFAULT_REQUEST_ID}/response"),
    ]
    assert outcome.headers["user-agent"].startswith("aws-lambda-python/")
    assert outcome.request_id == DEFAULT_REQUEST_ID


def ric_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("ric-")]


def test_concurrent_runs_do_not_interfere() -> None:
    def run(i: int) -> RicOutcome:
        return invoke("echo_event.handler", json.dumps({"i": i}).encode(), request_id=f"req-{i}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(run, range(8)))
    assert [o.json() for o in outcomes] == [{"i": i} for i in range(8)]
    assert [o.request_id for o in outcomes] == [f"req-{i}" for i in range(8)]
    assert len({o.headers["host"] for o in outcomes}) == 8
    for outcome in outcomes:
        assert_gone(outcome)
    assert ric_threads() == []


@pytest.mark.slow
def test_timeout_cleans_up() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="reported nothing within 1"):
        invoke("block_forever.handler", timeout=1)
    assert time.monotonic() - started < 10
    assert ric_threads() == []
