"""Where the relay API is and who the runner is: the WebSocket and @connections URLs, the app
and stage, and the AWS credentials that sign the runner's $connect and @connections calls
(renewed while a session runs, from a :data:`CredentialsSource`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from pylive.in_lambda.signing import Signer


@dataclass(frozen=True)
class SigningCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


CredentialsSource = Callable[[], SigningCredentials]


@dataclass(frozen=True)
class RelayEndpoint:
    """Where the relay API is and who the runner is; the credentials sign $connect and the
    @connections calls."""

    ws_url: str
    connections_url: str
    app: str
    stage: str
    region: str
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def signer(self) -> Signer:
        return Signer(self.access_key_id, self.secret_access_key, self.session_token, self.region)

    def signed_url(self) -> str:
        query = urlencode({"role": "runner", "app": self.app, "stage": self.stage})
        return self.signer().presign(f"{self.ws_url}?{query}", expires=300)
