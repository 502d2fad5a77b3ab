"""The access keys a local WebSocket API accepts, each with its principal, and IAM
authorization: the developer's keys (``credentials``) may do ``execute-api:*``; other keys
(a function's role session) only what their principal's policies allow
(:mod:`pylive.emulator.iam_policy`)."""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qsl

from websockets.http11 import Request, Response

from pylive.emulator.principals import AccessKey, Principal, denial_message
from pylive.emulator.sigv4 import SignatureError, verify_authorization_header, verify_presigned
from pylive.emulator.ws_upgrade import reject

# Refusals are logged under the gateway's name, with its other messages.
_log = logging.getLogger("pylive.emulator.ws_gateway")


class GatewayKeys:
    """The keys a gateway accepts. ``credentials`` (access key → secret) is None until the
    first key is added: then every request must be signed."""

    def __init__(self, developer: Principal) -> None:
        self.developer = developer  # whose keys ``credentials`` are
        self.credentials: dict[str, str] | None = None
        self._keys: dict[str, AccessKey] = {}

    def add(self, key: AccessKey) -> None:
        """Accept requests signed with ``key`` (and authorize them for its principal)."""
        self._keys[key.access_key_id] = key
        if self.credentials is None:
            self.credentials = {}
        self.credentials[key.access_key_id] = key.secret_access_key

    def authorize(
        self, key_id: str, token: str | None, action: str, resource: str, source_ip: str
    ) -> tuple[str, str] | None:
        """Why a request signed by ``key_id`` may not do ``action`` on ``resource``: an
        error type and message, or None when it may."""
        key = self.key(key_id)
        if key.session_token is not None and token != key.session_token:
            return "ForbiddenException", "The security token included in the request is invalid."
        decision = key.principal.authorize(action, resource, source_ip)
        if decision.allowed:
            return None
        message = denial_message(key.principal, action, resource, decision)
        _log.warning("refused: %s", message)
        return "AccessDeniedException", message

    def key(self, key_id: str) -> AccessKey:
        """The key ``key_id`` (one the signature check accepted); a key added to
        :attr:`credentials` directly is the developer's."""
        key = self._keys.get(key_id)
        if key is None:
            secret = (self.credentials or {}).get(key_id, "")
            key = self._keys[key_id] = AccessKey(key_id, secret, self.developer)
        return key

    def check_connect(
        self, request: Request, resource: str, source_ip: str
    ) -> dict[str, str] | Response:
        """The ``requestContext.identity`` of a $connect signed by an accepted key allowed
        ``execute-api:Invoke`` on ``resource``, else the 403 refusing the upgrade."""
        assert self.credentials is not None
        headers = list(request.headers.raw_items())
        try:
            if request.headers.get("Authorization") is not None:
                key_id = verify_authorization_header(
                    "GET", request.path, headers, b"", self.credentials
                )
                token = request.headers.get("X-Amz-Security-Token")
            else:
                key_id = verify_presigned("GET", request.path, headers, self.credentials)
                query = request.path.partition("?")[2]
                token = dict(parse_qsl(query)).get("X-Amz-Security-Token")
        except SignatureError as exc:
            _log.info("$connect refused: %s", exc)
            return reject(403, '{"message":"Forbidden"}')
        # https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-control-access-iam.html
        denied = self.authorize(key_id, token, "execute-api:Invoke", resource, source_ip)
        if denied is not None:
            return reject(403, json.dumps({"Message": denied[1]}))
        return self.key(key_id).principal.identity(key_id)
