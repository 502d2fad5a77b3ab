"""The relay's settings (pylive.in_lambda.relay_settings): the stub's variables, written by the CDK
construct and the local cloud, read by the stub; the relay passed to dev-mode synthesis."""

from __future__ import annotations

import pytest

from pylive.in_lambda.relay_settings import Relay, StubSettings
from pylive.in_lambda.stub.settings import Settings

RELAY = Relay(
    app="shop",
    stage="ada",
    api_id="abc123",
    relay_url="wss://abc123.execute-api.eu-west-1.amazonaws.com/ada",
    callback_url="https://abc123.execute-api.eu-west-1.amazonaws.com/ada",
)


def test_the_variables_are_the_ones_deployed_stubs_read() -> None:
    """The names and values every deployed stub reads; the defaults need no variable."""
    assert RELAY.stub("App/orders", handler="functions/orders.handler").to_env() == {
        "PYLIVE_RELAY_URL": RELAY.relay_url,
        "PYLIVE_CALLBACK_URL": RELAY.callback_url,
        "PYLIVE_APP": "shop",
        "PYLIVE_STAGE": "ada",
        "PYLIVE_FUNCTION_ID": "App/orders",
        "PYLIVE_HANDLER": "functions/orders.handler",
    }
    tuned = StubSettings("ws://h/ada", "http://h/ada", "shop", "ada", "hello", ack_timeout=0.3)
    assert tuned.to_env()["PYLIVE_ACK_TIMEOUT"] == "0.3"
    assert "PYLIVE_HANDLER" not in tuned.to_env()


@pytest.mark.parametrize(
    "settings",
    [
        RELAY.stub("App/orders"),
        RELAY.stub("App/orders", handler="functions/orders.handler"),
        StubSettings(
            "ws://127.0.0.1:8/ada",
            "http://127.0.0.1:8/ada",
            "shop",
            "ada",
            "hello",
            ack_timeout=0.25,
            liveness_interval=0.1,
            runner_grace=0.0,
        ),
    ],
)
def test_from_env_reads_what_to_env_writes(settings: StubSettings) -> None:
    assert StubSettings.from_env(settings.to_env()) == settings


def test_from_env_names_a_missing_variable_and_defaults_empty_tunables() -> None:
    env = RELAY.stub("App/orders").to_env()
    with pytest.raises(KeyError, match="PYLIVE_FUNCTION_ID"):
        StubSettings.from_env({k: v for k, v in env.items() if k != "PYLIVE_FUNCTION_ID"})
    read = StubSettings.from_env({**env, "PYLIVE_ACK_TIMEOUT": "", "PYLIVE_RUNNER_GRACE": "0"})
    assert read.ack_timeout == 2.0 and read.runner_grace == 0.0


def test_the_stub_reads_its_settings_from_its_environment() -> None:
    settings = StubSettings("ws://h/ada", "http://h/ada", "shop", "ada", "hello", runner_grace=1.5)
    environment = {**settings.to_env(), "AWS_REGION": "eu-west-1", "AWS_SECRET_ACCESS_KEY": "s"}
    read = Settings(environment)
    assert read.stub == settings
    assert read.region == "eu-west-1"
    assert "AWS_SECRET_ACCESS_KEY" not in read.environment  # never relayed


def test_a_relay_travels_as_its_context() -> None:
    assert Relay.from_context(RELAY.to_context()) == RELAY
    for broken in (None, "x", {**RELAY.to_context(), "api_id": 5}, {"app": "shop"}):
        with pytest.raises(ValueError, match="api_id, relay_url, callback_url"):
            Relay.from_context(broken)


def test_a_stub_is_on_its_relay() -> None:
    settings = RELAY.stub("App/orders")
    assert (settings.app, settings.stage) == (RELAY.app, RELAY.stage)
    assert (settings.relay_url, settings.callback_url) == (RELAY.relay_url, RELAY.callback_url)
