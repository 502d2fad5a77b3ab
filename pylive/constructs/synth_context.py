"""What the synth process tells the constructs through CDK context: the synth mode, the app
root and, in dev mode, the debug stack's relay.

``pylive.cdk.synth`` sets these keys; every construct reads them through the functions here,
so each key's default and error message are written once.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Final

from constructs import Construct

from pylive.in_lambda.relay_settings import Relay

MODE_CONTEXT: Final = "pylive:mode"
ROOT_CONTEXT: Final = "pylive:root"
STAGE_CONTEXT: Final = "pylive:stage"
APP_CONTEXT: Final = "pylive:app"
# Dev mode: the debug stack's relay, as `pylive dev` passes it (see relay_settings()).
RELAY_CONTEXT: Final = "pylive:relay"
MODES: Final = ("local", "dev", "deploy")
DEFAULT_MODE: Final = "local"


def relay_settings(scope: Construct) -> Relay:
    """The debug stack's relay, from CDK context ``pylive:relay`` (set by ``pylive dev``)."""
    try:
        return Relay.from_context(scope.node.try_get_context(RELAY_CONTEXT))
    except ValueError:
        names = ", ".join(f.name for f in fields(Relay))
        raise ValueError(
            f"dev mode needs the debug stack's relay settings in CDK context {RELAY_CONTEXT} "
            f"({names}); `pylive dev` provides them"
        ) from None


def synth_mode(scope: Construct) -> str:
    """The pylive synth mode of the app ``scope`` belongs to (CDK context ``pylive:mode``)."""
    mode = scope.node.try_get_context(MODE_CONTEXT) or DEFAULT_MODE
    if mode not in MODES:
        raise ValueError(
            f"CDK context {MODE_CONTEXT}={mode!r} is not a pylive mode "
            f"(expected one of: {', '.join(MODES)})"
        )
    return str(mode)


def app_root(scope: Construct) -> Path:
    """The app root (CDK context ``pylive:root``; the working directory when unset)."""
    root = scope.node.try_get_context(ROOT_CONTEXT)
    return Path(root) if root else Path.cwd()
