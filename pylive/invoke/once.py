"""`pylive invoke`: one local invocation of one function, result on stdout."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

from pylive import appenv
from pylive.cdk.manifest import AppManifest
from pylive.cdk.synth import synthesize
from pylive.config import AppConfig
from pylive.console import Console
from pylive.emulator.limits import (
    LAMBDA_REQUEST_ERROR,
    LAMBDA_REQUEST_LIMIT_BYTES,
    LAMBDA_REQUEST_MESSAGE,
)
from pylive.errors import UsageError
from pylive.runner.invocation import InvokeResult
from pylive.runner.pool import PoolOptions, WorkerPool


def read_event(event: str | None, event_file: Path | None) -> bytes:
    """The event as JSON bytes; ``{}`` when none is given. Not JSON is a usage error."""
    if event is not None and event_file is not None:
        raise UsageError("pass either --event or --event-file, not both")
    if event_file is not None:
        try:
            text = sys.stdin.read() if str(event_file) == "-" else event_file.read_text()
        except OSError as exc:
            raise UsageError(f"cannot read --event-file {event_file}: {exc.strerror}") from None
        source = f"--event-file {event_file}"
    elif event is not None:
        text, source = event, "--event"
    else:
        return b"{}"
    try:
        json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{source} is not valid JSON: {exc}") from None
    payload = text.encode()
    if len(payload) > LAMBDA_REQUEST_LIMIT_BYTES:
        # What Lambda's Invoke answers (HTTP 413): the function never runs.
        raise UsageError(
            f"{LAMBDA_REQUEST_ERROR}: {LAMBDA_REQUEST_MESSAGE} ({source} is {len(payload)} bytes)"
        )
    return payload


def sample_payload(event: str | None, region: str) -> bytes | None:
    """``--event sqs`` and the like: a sample event of that source; else None."""
    from pylive.invoke.sample_events import SOURCES, sample_event

    if event is None or event.strip() not in SOURCES:
        return None
    return json.dumps(sample_event(event.strip(), region), indent=2).encode()


def find_function(manifest: AppManifest, name: str) -> str:
    if name in manifest.functions:
        return name
    by_handler = [f.id for f in manifest.functions.values() if name in (f.handler, f.function_name)]
    if len(by_handler) == 1:
        return by_handler[0]
    known = ", ".join(sorted(manifest.functions)) or "(none)"
    raise UsageError(f"no function named {name!r} in app {manifest.app!r}; functions: {known}")


async def invoke_once(config: AppConfig, function: str, event: bytes) -> InvokeResult:
    manifest = synthesize(config).manifest
    function_id = find_function(manifest, function)
    console = Console(sys.stderr)
    appenv.prepare_for(config, manifest, on_status=console.event)
    pool = WorkerPool(
        config.python,
        config.root,
        PoolOptions(
            region=config.region,
            output=console.output,
            events=console.event,
            hint=functools.partial(appenv.missing_module_hint, config.root, config.python),
        ),
    )
    await pool.start([manifest.functions[function_id]], warm=False)
    try:
        return await pool.invoke(function_id, event)
    finally:
        await pool.close()
