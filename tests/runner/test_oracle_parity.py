"""pylive's workers against the real Lambda runtime client on the same handlers.

Every case runs the handler once under ``awslambdaric`` (driven by the Runtime API server in
tests/oracle) and once in a pylive worker, with the same request id, ARN, trace id and
function settings, then compares the payloads field by field.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from asynchelpers import run
from conftest import Recorder, make_pool
from oracle.ric import (
    DEFAULT_FUNCTION_ARN,
    DEFAULT_REQUEST_ID,
    DEFAULT_TRACE_ID,
    FUNCTION_MEMORY_SIZE,
    FUNCTION_NAME,
    HANDLERS_DIR,
    REGION,
    RicOutcome,
    run_with_ric,
)

from pylive.cdk.manifest import FunctionSpec
from pylive.runner.environment import function_arn
from pylive.runner.invocation import InvokeResult

pytestmark = pytest.mark.slow

RUNTIMES = ("python3.11", "python3.12")


def _spec(handler: str, runtime: str) -> FunctionSpec:
    return FunctionSpec(
        id="fn",
        handler=handler,
        code_dir=str(HANDLERS_DIR),
        runtime=runtime,
        memory=int(FUNCTION_MEMORY_SIZE),
        function_name=FUNCTION_NAME,
        timeout=30,
    )


def _pylive(
    handler: str, event: bytes, runtime: str, **invoke: Any
) -> tuple[InvokeResult, Recorder]:
    recorder = Recorder()

    async def go() -> InvokeResult:
        pool = make_pool(HANDLERS_DIR, recorder, region=REGION)
        await pool.start([_spec(handler, runtime)], warm=False)
        try:
            return await pool.invoke(
                "fn", event, request_id=DEFAULT_REQUEST_ID, trace_id=DEFAULT_TRACE_ID, **invoke
            )
        finally:
            await pool.close()

    return run(go()), recorder


def _ric(handler: str, event: bytes, runtime: str, **kwargs: Any) -> RicOutcome:
    return run_with_ric(
        HANDLERS_DIR,
        handler,
        event,
        env={"AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}"},
        **kwargs,
    )


def test_arn_matches_the_oracle() -> None:
    assert function_arn(_spec("x.handler", "python3.12"), region=REGION) == DEFAULT_FUNCTION_ARN


RESULT_HANDLERS = [
    "result_dict.handler",
    "result_list.handler",
    "result_str.handler",
    "result_int.handler",
    "result_float.handler",
    "result_none.handler",
    "result_bool.handler",
    "result_unicode.handler",
    "result_bytes.handler",
    "result_decimal.handler",
    "result_nan.handler",
    "result_large.handler",
    "echo_event.handler",
    "nested_pkg/sub/mod.handler",
]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("handler", RESULT_HANDLERS)
def test_results_are_byte_identical(handler: str, runtime: str) -> None:
    event = json.dumps({"name": "Zoë", "n": [1, 2.5, None]}).encode()
    oracle = _ric(handler, event, runtime)
    ours, _ = _pylive(handler, event, runtime)
    assert oracle.kind == "response"
    assert ours.ok
    assert ours.body == oracle.body
    assert ours.content_type == oracle.content_type


ERROR_HANDLERS = [
    "error_nested.handler",
    "error_custom.handler",
    "error_unicode.handler",
    "error_no_message.handler",
    "result_set.handler",
    "result_datetime.handler",
]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("handler", ERROR_HANDLERS)
def test_invocation_errors_match_field_by_field(handler: str, runtime: str) -> None:
    oracle = _ric(handler, b"{}", runtime)
    ours, _ = _pylive(handler, b"{}", runtime)
    assert oracle.kind == "error"
    assert not ours.ok
    assert json.loads(ours.body) == oracle.json()
    assert list(json.loads(ours.body)) == list(oracle.json())  # same key order
    assert ours.body == oracle.body


INIT_HANDLERS = [
    "import_missing.handler",
    "no_such_module.handler",
    "handler_missing.handler",
    "syntax_error.handler",
    "nodot",
    "sys.handler",
]


@pytest.mark.parametrize("handler", INIT_HANDLERS)
def test_init_errors_match(handler: str) -> None:
    oracle = _ric(handler, b"{}", "python3.12")
    ours, _ = _pylive(handler, b"{}", "python3.12")
    assert oracle.kind == "init_error"
    assert not ours.ok
    assert json.loads(ours.body) == oracle.json()


def test_module_init_exception_matches_type_message_and_user_frames() -> None:
    oracle = _ric("init_raises.handler", b"{}", "python3.12").json()
    ours = json.loads(_pylive("init_raises.handler", b"{}", "python3.12")[0].body)
    assert (ours["errorType"], ours["errorMessage"], ours["requestId"]) == (
        oracle["errorType"],
        oracle["errorMessage"],
        oracle["requestId"],
    )
    # The runtime's own import machinery frames differ; the user's frames must not.
    user = [line for line in oracle["stackTrace"] if "init_raises.py" in line]
    assert user and [line for line in ours["stackTrace"] if "init_raises.py" in line] == user


def test_context_and_environment_match() -> None:
    client_context = {"custom": {"k": "v"}, "env": {"e": "1"}, "client": {"app_title": "t"}}
    identity = {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}
    deadline = int(time.time() * 1000) + 30_000
    oracle = _ric(
        "context_dump.handler",
        b"{}",
        "python3.12",
        deadline_ms=deadline,
        client_context=json.dumps(client_context),
        cognito_identity=json.dumps(identity),
    ).json()
    result, _ = _pylive(
        "context_dump.handler",
        b"{}",
        "python3.12",
        client_context=client_context,
        identity=identity,
    )
    ours = json.loads(result.body)
    # Per-sandbox values: a random log stream, the clock, and the Runtime API address that
    # only exists inside Lambda (pylive workers do not speak that API).
    for dump in (oracle, ours):
        assert dump.pop("remaining_time_in_millis") > 25_000
        stream = dump.pop("log_stream_name")
        assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", stream)
        assert dump["env"].pop("AWS_LAMBDA_LOG_STREAM_NAME") == stream
        dump["env"].pop("AWS_LAMBDA_RUNTIME_API")
        dump.pop("sys_path_head")
    # Lambda sets LAMBDA_RUNTIME_DIR (/var/runtime); the oracle's harness leaves it out.
    assert ours["env"].pop("LAMBDA_RUNTIME_DIR")
    assert oracle["env"].pop("LAMBDA_RUNTIME_DIR") is None
    differing = {
        name: (ours["env"].get(name), value)
        for name, value in oracle["env"].items()
        if ours["env"].get(name) != value
    }
    assert differing == {}
    assert ours == oracle


def test_logging_output_matches() -> None:
    timestamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
    oracle = _ric("logs.handler", b"{}", "python3.12")
    result, recorder = _pylive("logs.handler", b"{}", "python3.12")
    assert json.loads(result.body) == "logged"
    expected = [timestamp.sub("<ts>", line) for line in oracle.stdout_text.splitlines() if line]
    ours = [timestamp.sub("<ts>", line) for _, line in recorder.lines]
    assert ours == expected
    assert ours == [
        f"[INFO]\t<ts>\t{DEFAULT_REQUEST_ID}\tinfo 1",
        f"[WARNING]\t<ts>\t{DEFAULT_REQUEST_ID}\twarn: slow",
    ]
