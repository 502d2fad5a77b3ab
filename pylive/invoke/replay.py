"""`pylive replay`: run a recorded invocation again on the current code and show what
changed. With a `pylive dev` session running it replays through the session (the same path
its invocations take, via its console API); without one, in a one-off worker from the
record on disk."""

from __future__ import annotations

import difflib
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from pylive.config import AppConfig
from pylive.errors import PyliveError, UsageError
from pylive.runner.record import Invocation, InvocationLog
from pylive.webconsole.server import TOKEN_HEADER, read_state

REQUEST_TIMEOUT_S = 960.0  # a replay may run as long as a function may (15 min) and more


@dataclass(frozen=True)
class Replayed:
    old: dict[str, Any]
    new: dict[str, Any]
    through: str  # "the running session" or "a one-off worker"


def replay(config: AppConfig, ref: str | None, function: str | None) -> Replayed:
    """Replay ``ref`` (a request id or ``last``), or the last invocation of ``function``."""
    if ref is None and function is None:
        ref = "last"
    state = read_state(config.state_dir)
    if state is not None:
        try:
            return _through_session(str(state["url"]), str(state["token"]), ref, function)
        except _Unreachable:
            pass  # a session that died without cleaning up: its record is on disk
    return _offline(config, ref, function)


class _Unreachable(PyliveError):
    """Nothing answers at the address the session left."""


def _through_session(url: str, token: str, ref: str | None, function: str | None) -> Replayed:
    if ref is None or ref == "last":
        query = urllib.parse.urlencode({"function": function or ""})
        found = [
            s
            for s in _call(url, token, "GET", f"/api/invocations?{query}")
            if s["status"] != "running"
        ]
        if not found:
            raise UsageError(_none_recorded(function))
        ref = found[-1]["id"]
    answer = _call(url, token, "POST", f"/api/invocations/{urllib.parse.quote(ref)}/replay")
    return Replayed(answer["old"], answer["new"], "the running session")


def _call(url: str, token: str, method: str, path: str) -> Any:
    request = urllib.request.Request(
        url + path,
        method=method,
        headers={TOKEN_HEADER.decode(): token},
        data=b"" if method == "POST" else None,
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        try:
            message = json.loads(error.read())["error"]
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {error.code}"
        raise UsageError(message) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ConnectionRefusedError):
            raise _Unreachable(url) from None
        raise PyliveError(f"cannot reach the running `pylive dev` at {url}: {exc}") from None
    except (OSError, ValueError) as exc:
        raise PyliveError(f"cannot reach the running `pylive dev` at {url}: {exc}") from None


def _offline(config: AppConfig, ref: str | None, function: str | None) -> Replayed:
    from pylive.invoke.once import invoke_once
    from pylive.session.loop import run_event_loop

    log = InvocationLog(config.state_dir)
    record: Invocation | None
    if ref is None or ref == "last":
        record = log.latest(function)
        if record is None:
            raise UsageError(_none_recorded(function))
    else:
        record = log.get(ref)
        if record is None:
            raise UsageError(f"no recorded invocation {ref!r} (see the console's list)")
    if record.cut:
        raise UsageError("the recorded event was cut (too large) and cannot be replayed")
    event = record.event
    result = run_event_loop(lambda: invoke_once(config, record.function, event))
    new = Invocation(result.request_id, record.function, event, 0.0, replay_of=record.id)
    new.ok, new.result, new.duration_ms = result.ok, result.body, result.duration_ms
    return Replayed(record.detail(), new.detail(), "a one-off worker")


def _none_recorded(function: str | None) -> str:
    of = f" of {function!r}" if function else ""
    return f"no invocation{of} recorded yet: run `pylive dev` and call the function first"


def outcome(detail: dict[str, Any]) -> Any:
    """What a replay compares: the result, or the error's type and message."""
    error = detail.get("error_detail")
    if error:
        return {"errorType": error["errorType"], "errorMessage": error["errorMessage"]}
    return detail.get("result")


def report(replayed: Replayed) -> list[str]:
    """The lines `pylive replay` prints: what ran, then the result's diff (old -> new)."""
    old, new = replayed.old, replayed.new
    lines = [
        f"replayed {old['id']} ({old['function']}, {old['source']}) through "
        f"{replayed.through}: {old['status']} {old['duration_ms'] or 0:.1f} ms -> "
        f"{new['status']} {new['duration_ms'] or 0:.1f} ms"
    ]
    before = json.dumps(outcome(old), indent=2, sort_keys=True).splitlines()
    after = json.dumps(outcome(new), indent=2, sort_keys=True).splitlines()
    if before == after:
        lines.append("result unchanged:")
        lines.extend("  " + line for line in after)
    else:
        lines.extend(
            line.rstrip("\n")
            for line in difflib.unified_diff(before, after, "before", "now", lineterm="")
        )
    return lines
