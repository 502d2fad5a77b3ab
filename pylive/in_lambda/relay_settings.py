"""The relay's settings, each defined once: :class:`Relay`, the relay of one app and stage
(the DebugStack's outputs, or the local cloud's WebSocket API), and :class:`StubSettings`,
what a function's stub reads from its environment (``to_env`` writes it for the CDK
construct and the local cloud, ``from_env`` reads it in the stub).

Shipped in the stub's bundle: stdlib only, and runs on every Python from 3.9 on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any

ENV_PREFIX = "PYLIVE_"  # a stub setting's variable: the prefix and its name in upper case
# `pylive dev` passes the relay to dev-mode synthesis in this variable (its context, as JSON).
RELAY_VARIABLE = "PYLIVE_RELAY"


@dataclass(frozen=True)
class StubSettings:
    """What a stub needs to reach its runner (see pylive/in_lambda/stub), one ``PYLIVE_<NAME>``
    variable each. The tunables are written only when they differ from their defaults, so a
    stub deployed with the defaults carries none of them."""

    relay_url: str  # the WebSocket API: wss://{api}.execute-api.{region}.amazonaws.com/{stage}
    callback_url: str  # its @connections endpoint: https://{api}.execute-api.../{stage}
    app: str
    stage: str
    function_id: str  # the function's construct path below the stage ("App/hello")
    handler: str = ""  # the function's own handler, for whoever reads the deployed settings
    ack_timeout: float = 2.0  # seconds the runner may take to ack an invoke
    liveness_interval: float = 1.0  # seconds between checks that the runner is connected
    # seconds a registered runner that does not ack may take to come back: one whose network
    # path died silently notices within 40 s and reconnects
    runner_grace: float = 45.0

    def to_env(self) -> dict[str, str]:
        """The stub's variables (``PYLIVE_RELAY_URL``, ``PYLIVE_ACK_TIMEOUT``...)."""
        env: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.default is MISSING or value != f.default:
                env[variable(f.name)] = str(value)
        return env

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StubSettings:
        """The settings in ``env``; a required variable that is missing raises KeyError
        naming it, an empty tunable takes its default."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = variable(f.name)
            if f.default is MISSING:
                values[f.name] = env[name]
            elif env.get(name):
                values[f.name] = float(env[name]) if isinstance(f.default, float) else env[name]
        return cls(**values)


def variable(name: str) -> str:
    """The environment variable of the setting ``name``."""
    return ENV_PREFIX + name.upper()


@dataclass(frozen=True)
class Relay:
    """The relay of one app and stage: what `pylive dev` passes to dev-mode synthesis (CDK
    context ``pylive:relay``, see :meth:`to_context`)."""

    app: str
    stage: str
    api_id: str
    relay_url: str
    callback_url: str

    def stub(self, function_id: str, handler: str = "") -> StubSettings:
        """The settings of the stub of ``function_id`` on this relay."""
        return StubSettings(
            relay_url=self.relay_url,
            callback_url=self.callback_url,
            app=self.app,
            stage=self.stage,
            function_id=function_id,
            handler=handler,
        )

    def to_context(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_context(cls, value: object) -> Relay:
        """The relay in a context value; ValueError naming the fields when it is not one."""
        names = [f.name for f in fields(cls)]
        if not isinstance(value, dict) or any(not isinstance(value.get(n), str) for n in names):
            raise ValueError(f"not a relay's settings: expected strings {', '.join(names)}")
        return cls(**{n: value[n] for n in names})
