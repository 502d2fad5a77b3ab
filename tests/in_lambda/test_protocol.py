"""Relay messages (pylive.in_lambda.protocol): encoding, validation, splitting and reassembly."""

from __future__ import annotations

import ast
import base64
import contextlib
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pylive.in_lambda import protocol
from pylive.in_lambda.protocol import (
    FRAME_LIMIT_BYTES,
    PROTOCOL_VERSION,
    Ack,
    Chunk,
    ChunkRefused,
    Error,
    Invoke,
    InvokeContext,
    Log,
    Ping,
    Pong,
    ProtocolError,
    Reassembler,
    Replaced,
    Result,
    WhoAmI,
    WhoAmIRequest,
    decode,
    encode,
    split,
    strip_credentials,
)

INVOKE = Invoke(
    request_id="req-1",
    function_id="hello",
    deadline_ms=1_795_752_222_123,
    event={"rawPath": "/", "body": "ü", "n": [1, 2.5, None, True]},
    context=InvokeContext(
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:hello",
        trace_id="Root=1-abc",
        client_context={"custom": {"a": 1}},
        identity={"cognito_identity_id": "id"},
    ),
    environment={"TABLE": "t", "AWS_REGION": "us-east-1"},
)

ALL_MESSAGES = [
    INVOKE,
    Invoke("r2", "f", 0, None, InvokeContext("arn")),
    Invoke("r3", "f", 0, {}, InvokeContext("arn"), reply_to="S2=", resume=True),
    Ack("req-1"),
    Result("req-1", {"statusCode": 200, "body": "ok"}),
    Result("req-1", "hello"),
    Error("req-1", {"errorMessage": "bad", "errorType": "ValueError", "stackTrace": ["  x\n"]}),
    Error("req-1", {"errorMessage": "2026-01-01 req-1 Task timed out after 3.00 seconds"}),
    Log("req-1", "line\n", "stderr"),
    Ping("p1"),
    Pong("p1"),
    Chunk("m1", 0, 2, "aGVsbG8="),
    Replaced("shop", "dev", "another `pylive dev` connected"),
    WhoAmIRequest(),
    WhoAmI("S1=", "R1="),
    WhoAmI("S1=", None, "no runner is connected"),
]

# ---------------------------------------------------------------- encode / decode


@pytest.mark.parametrize("message", ALL_MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(message: protocol.Message) -> None:
    assert decode(encode(message)) == message
    assert decode(encode(message).encode()) == message


def test_wire_format_is_a_json_object_with_action_and_version() -> None:
    body = json.loads(encode(Ack("req-1")))
    assert body == {"action": "ack", "v": PROTOCOL_VERSION, "request_id": "req-1"}
    invoke = json.loads(encode(INVOKE))
    assert invoke["context"]["invoked_function_arn"].startswith("arn:aws:lambda")
    assert invoke["event"]["body"] == "ü"


def test_what_the_router_sends_keeps_its_wire_format() -> None:
    """Routers, stubs and runners of different versions meet while a stage is redeployed:
    each message the router sends reads as it did when the router wrote it by hand."""
    earlier_whoami = {"type": "whoami", "connection_id": "S1=", "runner": None, "error": "none"}
    assert json.loads(encode(WhoAmI("S1=", None, "none"))) == earlier_whoami
    assert decode(json.dumps(earlier_whoami)) == WhoAmI("S1=", None, "none")
    assert json.loads(encode(WhoAmI("S1=", "R1="))) == {
        "type": "whoami", "connection_id": "S1=", "runner": "R1="
    }  # fmt: skip
    assert decode(json.dumps({"action": "pong", "v": 1, "id": "p1"})) == Pong("p1")
    # A runner from before Replaced spotted it by its action and read its reason.
    replaced = json.loads(encode(Replaced("shop", "dev", "why")))
    assert replaced == {
        "action": "replaced",
        "v": 1,
        "app": "shop",
        "stage": "dev",
        "reason": "why",
    }
    # A stub from before WhoAmIRequest sent no version: any router takes it for whoami.
    assert json.loads(encode(WhoAmIRequest()))["action"] == "whoami"


def test_only_whoami_is_a_reply_without_an_action() -> None:
    with pytest.raises(ProtocolError, match="no 'action'"):
        decode('{"type": "pong", "id": "p1"}')
    with pytest.raises(ProtocolError, match="whoami: missing field 'connection_id'"):
        decode('{"type": "whoami", "runner": null}')


def test_unknown_extra_fields_are_ignored() -> None:
    body = json.loads(encode(Ack("r")))
    body["added_later"] = {"x": 1}
    assert decode(json.dumps(body)) == Ack("r")


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ("not json", "not a JSON message"),
        ("[1, 2]", "must be a JSON object, not array"),
        ('{"v": 1}', "no 'action'"),
        ('{"action": "explode", "v": 1}', "unknown message type 'explode'"),
        ('{"action": "ack", "v": 2, "request_id": "r"}', "protocol version number 2"),
        ('{"action": "ack", "request_id": "r"}', "protocol version null"),
        ('{"action": "ack", "v": 1}', "ack: missing field 'request_id'"),
        ('{"action": "ack", "v": 1, "request_id": 5}', "field 'request_id' must be a string"),
        ('{"action": "ping", "v": true, "id": "x"}', "protocol version boolean"),
        ('{"action": "result", "v": 1, "request_id": "r", "payload": NaN}', "not a JSON"),
        (
            '{"action": "invoke", "v": 1, "request_id": "r", "function_id": "f",'
            ' "deadline_ms": "soon", "event": {}, "environment": {},'
            ' "context": {"invoked_function_arn": "a"}}',
            "field 'deadline_ms' must be an integer",
        ),
        (
            '{"action": "invoke", "v": 1, "request_id": "r", "function_id": "f",'
            ' "deadline_ms": 1, "event": {}, "environment": {}, "context": {}}',
            "invoke.context: missing field 'invoked_function_arn'",
        ),
        (
            '{"action": "invoke", "v": 1, "request_id": "r", "function_id": "f",'
            ' "deadline_ms": 1, "event": {}, "environment": {"A": 1},'
            ' "context": {"invoked_function_arn": "a"}}',
            "environment variable 'A' must be a string",
        ),
        (
            '{"action": "invoke", "v": 1, "request_id": "r", "function_id": "f",'
            ' "deadline_ms": 1, "event": {}, "environment": {"AWS_SECRET_ACCESS_KEY": "s"},'
            ' "context": {"invoked_function_arn": "a"}}',
            "carries credentials (AWS_SECRET_ACCESS_KEY)",
        ),
        (
            '{"action": "invoke", "v": 1, "request_id": "r", "function_id": "f",'
            ' "deadline_ms": 1, "event": {}, "environment": {}, "resume": 1,'
            ' "context": {"invoked_function_arn": "a"}}',
            "field 'resume' must be true or false",
        ),
        ('{"action": "error", "v": 1, "request_id": "r", "error": {}}', "'errorMessage'"),
        (
            '{"action": "error", "v": 1, "request_id": "r",'
            ' "error": {"errorMessage": "m", "stackTrace": [1]}}',
            "stackTrace' must be a list of strings",
        ),
        ('{"action": "log", "v": 1, "request_id": "r", "text": "t", "stream": "x"}', "'stdout'"),
        (
            '{"action": "chunk", "v": 1, "message_id": "m", "index": 2, "total": 2, "data": ""}',
            "index 2 is out of range for 2 chunks",
        ),
        (
            '{"action": "chunk", "v": 1, "message_id": "m", "index": 0, "total": 0, "data": ""}',
            "field 'total' must be an integer >= 1",
        ),
    ],
)
def test_invalid_frames_raise_a_clear_protocol_error(frame: str, expected: str) -> None:
    with pytest.raises(ProtocolError) as raised:
        decode(frame)
    assert expected in str(raised.value)


def test_deeply_nested_json_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        decode("[" * 100_000)


def test_invalid_utf8_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        decode(b'{"action": "ack", "v": 1, "request_id": "\xff"}')


def test_credentials_never_leave_the_stub() -> None:
    env = {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t"}
    env |= {"AWS_REGION": "eu-west-1", "TABLE": "t"}
    assert strip_credentials(env) == {"AWS_REGION": "eu-west-1", "TABLE": "t"}
    with pytest.raises(ProtocolError, match="credentials"):
        Invoke("r", "f", 0, {}, InvokeContext("a"), environment=env)


@pytest.mark.parametrize(
    "variable",
    [
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ],
)
def test_container_credential_variables_never_leave_the_stub(variable: str) -> None:
    """The SDKs fetch credentials from the container endpoint these name (a token and where
    to send it): as secret as the keys themselves."""
    env = {variable: "secret", "AWS_REGION": "eu-west-1"}
    assert strip_credentials(env) == {"AWS_REGION": "eu-west-1"}
    with pytest.raises(ProtocolError, match=variable):
        Invoke("r", "f", 0, {}, InvokeContext("a"), environment=env)


def test_unencodable_payload_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="cannot encode"):
        encode(Result("r", {"x": {1, 2}}))
    with pytest.raises(ProtocolError, match="cannot encode"):
        encode(Result("r", float("nan")))


def test_protocol_module_imports_only_the_standard_library() -> None:
    """The stub runs it in Lambda with the stdlib and websockets only."""
    import sys

    package = Path(protocol.__file__).parent
    assert len(list(package.glob("*.py"))) > 1
    tree = ast.Module(
        body=[node for path in package.glob("*.py") for node in ast.parse(path.read_text()).body],
        type_ignores=[],
    )
    modules = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert modules <= set(sys.stdlib_module_names) | {"__future__", "pylive"}
    pylive_modules = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pylive")
    }
    assert all(name.startswith("pylive.in_lambda.protocol") for name in pylive_modules)


# ---------------------------------------------------------------- splitting


def big_result(size: int) -> str:
    return encode(Result("req-1", {"body": "x" * size}))


def test_small_messages_are_not_split() -> None:
    frame = encode(Ack("r"))
    assert split(frame) == [frame]


def test_a_6mb_response_is_split_into_frames_under_the_frame_limit() -> None:
    frame = big_result(6 * 1024 * 1024)
    frames = split(frame)
    assert len(frames) > 200
    assert all(len(f.encode()) <= protocol.DEFAULT_MAX_FRAME_BYTES for f in frames)
    assert protocol.DEFAULT_MAX_FRAME_BYTES < FRAME_LIMIT_BYTES
    reassembler = Reassembler()
    results = [reassembler.feed(f) for f in frames]
    assert all(r is None for r in results[:-1])
    assert results[-1] == decode(frame)
    assert reassembler.pending == 0


@pytest.mark.parametrize("max_frame", [200, 257, 1000, 4096])
def test_chunks_respect_a_configured_maximum(max_frame: int) -> None:
    frame = encode(Result("r", "é😀" * 3000))
    frames = split(frame, max_frame_bytes=max_frame)
    assert max(len(f.encode()) for f in frames) <= max_frame
    assert len(frames) > 1


@settings(max_examples=40, deadline=None)
@given(message_id=st.text(min_size=1, max_size=40), size=st.integers(1200, 6000))
def test_chunk_frames_are_what_encode_makes_of_each_chunk(message_id: str, size: int) -> None:
    frames = split(encode(Result("r", "x" * size)), max_frame_bytes=1000, message_id=message_id)
    assert len(frames) > 1
    assert frames == [encode(decode(frame)) for frame in frames]
    assert all(
        decode(frame) == Chunk(message_id, i, len(frames), decode(frame).data)  # type: ignore[union-attr]
        for i, frame in enumerate(frames)
    )


def test_a_maximum_too_small_for_any_data_is_refused() -> None:
    with pytest.raises(ValueError, match="no room"):
        split(big_result(1000), max_frame_bytes=60)


# ---------------------------------------------------------------- reassembler limits


def chunks_of(frame: str, max_frame: int = 300, message_id: str = "m1") -> list[Chunk]:
    out = [decode(f) for f in split(frame, max_frame_bytes=max_frame, message_id=message_id)]
    assert all(isinstance(c, Chunk) for c in out)
    return [c for c in out if isinstance(c, Chunk)]


def test_total_size_limit() -> None:
    r = Reassembler(max_message_bytes=1000)
    parts = chunks_of(big_result(2000))
    with pytest.raises(ProtocolError, match="exceeds the limit of 1000 bytes"):
        for c in parts:
            r.add(c)
    assert r.pending == 0


def test_pending_limit_and_timeout_with_an_injected_clock() -> None:
    now = [0.0]
    r = Reassembler(max_pending=2, timeout=10.0, clock=lambda: now[0])
    frame = big_result(1000)
    r.add(chunks_of(frame, message_id="a")[0])
    now[0] = 5.0
    r.add(chunks_of(frame, message_id="b")[0])
    refused = chunks_of(frame, message_id="c")
    with pytest.raises(
        ChunkRefused, match=r"too many incomplete chunked messages at once \(limit 2\)"
    ):
        r.add(refused[0])
    now[0] = 10.0  # "a" is now 10 s old: expired, which makes room for "d"
    assert r.add(refused[1]) is None  # the rest of a refused message is ignored
    assert r.pending == 2
    r.add(chunks_of(frame, message_id="d")[0])
    assert r.pending == 2
    now[0] = 15.0
    assert r.expire() == ["b"]
    assert r.pending == 1


def test_an_invokes_chunks_say_whom_to_tell_when_it_is_refused() -> None:
    invoke = encode(Invoke("req-7", "hello", 1, "x" * 3000, InvokeContext("arn"), reply_to="c1"))
    frames = split(invoke, max_frame_bytes=400, request_id="req-7", reply_to="c1")
    assert max(len(f.encode()) for f in frames) <= 400
    assert frames == [encode(decode(frame)) for frame in frames]
    chunks = [decode(frame) for frame in frames]
    assert all(
        isinstance(c, Chunk) and (c.request_id, c.reply_to) == ("req-7", "c1") for c in chunks
    )
    r = Reassembler(max_pending=1)
    r.add(chunks_of(big_result(1000), message_id="other")[0])
    with pytest.raises(ChunkRefused) as refused:
        r.feed(frames[0])
    assert refused.value.chunk == chunks[0]
    assert refused.value.problem == "too many incomplete chunked messages at once (limit 1)"
    assert [r.feed(frame) for frame in frames[1:]] == [None] * (len(frames) - 1)
    # Without the optional fields a chunk encodes as before.
    assert '"request_id"' not in split(invoke, max_frame_bytes=400)[0]


def test_a_chunked_message_that_does_not_decode_is_refused() -> None:
    frames = split('{"action":"invoke","v":1,"pad":"' + "x" * 1000 + '"}', max_frame_bytes=300)
    r = Reassembler()
    for frame in frames[:-1]:
        assert r.feed(frame) is None
    with pytest.raises(ChunkRefused, match="invoke: missing field"):
        r.feed(frames[-1])


def test_inconsistent_total_is_rejected() -> None:
    r = Reassembler()
    first, second, *_ = chunks_of(big_result(1000))
    r.add(first)
    with pytest.raises(ProtocolError, match="says 99 chunks, an earlier one said"):
        r.add(Chunk(second.message_id, second.index, 99, second.data))
    assert r.pending == 0


def test_a_duplicate_with_other_data_is_rejected_an_identical_one_ignored() -> None:
    r = Reassembler()
    first, second, *_rest = chunks_of(big_result(1000))
    r.add(first)
    assert r.add(first) is None
    with pytest.raises(ProtocolError, match="arrived twice with different data"):
        r.add(Chunk(first.message_id, 0, first.total, second.data))


@pytest.mark.parametrize(
    ("data", "expected"), [("***", "not valid base64"), ("", "carries no data")]
)
def test_bad_chunk_data_is_rejected(data: str, expected: str) -> None:
    with pytest.raises(ProtocolError, match=expected):
        Reassembler().add(Chunk("m", 0, 2, data))


def test_a_chunked_chunk_is_rejected() -> None:
    inner = encode(Chunk("inner", 0, 1, "aGk=")).encode()
    outer = encode(Chunk("outer", 0, 1, base64.b64encode(inner).decode()))
    with pytest.raises(ProtocolError, match="cannot itself be a chunk"):
        Reassembler().feed(outer)


def test_invalid_utf8_reassembled_is_rejected() -> None:
    r = Reassembler()
    r.add(Chunk("m", 0, 2, "/w=="))  # 0xff
    with pytest.raises(ProtocolError, match="not valid UTF-8"):
        r.add(Chunk("m", 1, 2, "/w=="))


# ---------------------------------------------------------------- fuzzing

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.one_of(st.text(), st.binary()))
def test_decoder_raises_only_protocol_errors_on_arbitrary_input(frame: str | bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode(frame)


@given(
    st.sampled_from(sorted(protocol.MESSAGE_TYPES)),
    st.one_of(st.just(PROTOCOL_VERSION), json_values),
    st.dictionaries(
        st.sampled_from(
            ["request_id", "function_id", "deadline_ms", "event", "context", "environment",
             "app", "stage", "reason", "connection_id", "runner", "payload", "error", "text",
             "stream", "id", "message_id", "index", "total", "data", "bucket", "key", "size"]
        ),
        json_values,
    ),
)  # fmt: skip
def test_decoder_on_arbitrary_fields(action: str, version: Any, fields: dict[str, Any]) -> None:
    body = {**fields, "action": action, "v": version}
    try:
        message = decode(json.dumps(body))
    except ProtocolError:
        return
    assert decode(encode(message)) == message


chunk_fields = st.builds(
    Chunk,
    message_id=st.sampled_from(["a", "b", "c"]),
    index=st.integers(-2, 5),
    total=st.integers(-1, 5),
    data=st.one_of(st.sampled_from(["aGk=", "eyJ9", "", "!!", "/w=="]), st.text(max_size=8)),
)


@given(st.lists(chunk_fields, max_size=30))
def test_reassembler_raises_only_protocol_errors(chunks: list[Chunk]) -> None:
    r = Reassembler(max_message_bytes=16, max_pending=2)
    for c in chunks:
        with contextlib.suppress(ProtocolError):
            r.add(c)
    assert r.pending <= 2


@given(st.lists(st.text(), max_size=20))
def test_feed_raises_only_protocol_errors(frames: list[str]) -> None:
    r = Reassembler()
    for f in frames:
        with contextlib.suppress(ProtocolError):
            r.feed(f)


@settings(max_examples=40, deadline=None)
@given(
    payload=st.one_of(
        st.text(max_size=300_000), st.binary(max_size=200_000).map(lambda b: b.hex()), json_values
    ),
    max_frame=st.sampled_from([512, 4096, protocol.DEFAULT_MAX_FRAME_BYTES]),
    seed=st.integers(0, 2**32),
)
def test_round_trip_through_chunks_in_any_order(payload: Any, max_frame: int, seed: int) -> None:
    message = Result("req-1", payload)
    frames = split(encode(message), max_frame_bytes=max_frame)
    assert all(len(f.encode()) <= max_frame for f in frames)
    random.Random(seed).shuffle(frames)
    r = Reassembler()
    done = [m for m in (r.feed(f) for f in frames) if m is not None]
    assert done == [message]
    assert r.pending == 0
