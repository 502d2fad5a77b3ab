"""What of a function's environment travels with an invoke: all of it but its credentials."""

from __future__ import annotations

from collections.abc import Mapping

# Never relayed to the developer's machine: the runner uses the developer's own credentials.
CREDENTIAL_VARIABLES = frozenset(
    {"AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
     "AWS_SECURITY_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
     "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"}
)  # fmt: skip
# The container credential provider's endpoint (and its token above): the SDKs fetch the
# role's credentials from it, so it is as secret as the keys. Lambda runtimes that serve
# credentials this way set them; see
# https://docs.aws.amazon.com/sdkref/latest/guide/feature-container-credentials.html
CREDENTIAL_PREFIXES = ("AWS_CONTAINER_CREDENTIALS_",)


def is_credential(name: str) -> bool:
    """True for an environment variable that holds (or leads to) AWS credentials."""
    return name in CREDENTIAL_VARIABLES or name.startswith(CREDENTIAL_PREFIXES)


def strip_credentials(environment: Mapping[str, str]) -> dict[str, str]:
    """The function's environment without the variables that hold its credentials."""
    return {k: v for k, v in environment.items() if not is_credential(k)}


# In an Invoke's environment: the function's execution role, which `pylive dev --assume-role`
# runs the function with (dev-mode stacks let the account assume it).
ROLE_ARN_VARIABLE = "PYLIVE_ROLE_ARN"
