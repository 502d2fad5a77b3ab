"""What the stub knows: its settings and what it takes from its environment."""

from __future__ import annotations

from collections.abc import Mapping

from pylive.in_lambda import protocol
from pylive.in_lambda.relay_settings import StubSettings
from pylive.in_lambda.signing import Signer
from pylive.in_lambda.stub.errors import PyliveDevNotRunning
from pylive.in_lambda.stub.limits import StubLimits


class Settings:
    """The stub's settings (``PYLIVE_*``, see :class:`StubSettings`) and what it takes from
    the rest of its environment: the region and role credentials that sign its calls, and
    the function's environment, which every invoke carries."""

    def __init__(self, env: Mapping[str, str], limits: StubLimits | None = None) -> None:
        self.limits = limits or StubLimits()
        self.stub = StubSettings.from_env(env)
        self.region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.signer = Signer(
            env.get("AWS_ACCESS_KEY_ID", ""),
            env.get("AWS_SECRET_ACCESS_KEY", ""),
            env.get("AWS_SESSION_TOKEN") or None,
            self.region,
        )
        # What each invoke carries; the trace id is per invocation and travels on its own.
        self.environment = {
            k: v for k, v in protocol.strip_credentials(env).items() if k != "_X_AMZN_TRACE_ID"
        }

    def not_running(self, why: str) -> PyliveDevNotRunning:
        return PyliveDevNotRunning(
            f"pylive dev is not running for stage {self.stub.stage} ({why}); "
            f"start `pylive dev --stage {self.stub.stage}`"
        )
