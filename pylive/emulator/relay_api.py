"""The local cloud's DebugStack: the WebSocket API, the router behind it (in the local Lambda
host, its table in memory) and the principals that may call the API, as in AWS:

- the runner signs as the developer (an IAM user allowed ``execute-api:*``), with the
  credentials :attr:`LocalRelayApi.site` holds (random per instance);
- each function's stub signs as a session of that function's role, allowed what dev mode
  grants it (:func:`pylive.relay_policy.stub_grants`, plus any ``extra_policies``):
  :meth:`LocalRelayApi.stub_site`;
- the router signs as its own role, allowed what the DebugStack grants it.

The gateway evaluates every $connect and @connections call against the signer's policies.

As strict as AWS by default: API Gateway's idle and maximum-duration limits (``limits``
shortens them for tests, and can add a NAT's flow timeout), and eventually consistent reads
of the table as stale as ``stale_reads`` seconds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from pylive.emulator.lambda_host import (
    ROUTER,
    LambdaHost,
    RelaySite,
    router_function,
    router_integration,
)
from pylive.emulator.principals import LOCAL_ACCOUNT, AccessKey, Principal, new_key, role_session
from pylive.emulator.store import MemoryTable
from pylive.emulator.ws_gateway import WebSocketGateway
from pylive.emulator.ws_settings import GatewayLimits
from pylive.relay_policy import api_arn, policy_document, router_grants, stub_grants

LOCAL_API_ID = "local"  # the local WebSocket API's id, in its ARNs
STALE_READS_S = 1.0  # DynamoDB replicates a write within about a second


def stub_principal(
    function_id: str,
    *,
    stage: str,
    api: str,
    extra_policies: Sequence[Mapping[str, Any]] = (),
    account: str = LOCAL_ACCOUNT,
) -> Principal:
    """A session of function ``function_id``'s role (Lambda names the session after the
    function), with the policies dev mode gives that role."""
    role = f"{_safe(function_id)}-role"
    policies = [policy_document(api, stub_grants(stage)), *extra_policies]
    return role_session(role, _safe(function_id), policies, account)


def router_principal(*, stage: str, api: str, account: str = LOCAL_ACCOUNT) -> Principal:
    """A session of the router's role, with what the DebugStack grants it."""
    return role_session(
        f"{ROUTER}-role", ROUTER, [policy_document(api, router_grants(stage))], account
    )


def _safe(name: str) -> str:
    """A role or session name from a function id (``App/orders`` → ``App-orders``)."""
    return "".join(ch if ch.isalnum() or ch in "+=,.@_-" else "-" for ch in name)[:64]


class LocalRelayApi:
    def __init__(
        self,
        *,
        app: str,
        stage: str,
        region: str = "us-east-1",
        limits: GatewayLimits | None = None,
        stale_reads: float = STALE_READS_S,
    ) -> None:
        self.app, self.stage, self.region = app, stage, region
        self.account = LOCAL_ACCOUNT
        self.host = LambdaHost(region=region, account=self.account)
        self.table = MemoryTable(stale_reads=stale_reads)  # the router's connection table
        integration = router_integration(self.host)
        self.gateway = WebSocketGateway(
            {"$connect": integration, "$disconnect": integration, "$default": integration},
            stage=stage,
            limits=limits,
            api_id=LOCAL_API_ID,
            region=region,
            account=self.account,
        )
        self.api_arn = api_arn(region, self.account, LOCAL_API_ID)
        self.developer_key = new_key(self.gateway.developer)
        self.gateway.add_key(self.developer_key)
        self.access_key_id = self.developer_key.access_key_id
        self.secret_access_key = self.developer_key.secret_access_key
        self._stub_keys: dict[str, AccessKey] = {}

    async def start(self) -> None:
        await self.gateway.start()
        router = router_principal(stage=self.stage, api=self.api_arn, account=self.account)
        site = self._site_of(self._add(router))
        developer = [self.gateway.developer.arn]  # who the DebugStack lets be the runner
        self.host.add(router_function(site, self.table, runner_principals=developer))

    async def stop(self) -> None:
        self.host.close()
        await self.gateway.stop()

    async def __aenter__(self) -> LocalRelayApi:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    @property
    def site(self) -> RelaySite:
        """What the runner needs to reach this API (signing as the developer)."""
        return self._site_of(self.developer_key)

    def stub_site(
        self, function_id: str, extra_policies: Sequence[Mapping[str, Any]] = ()
    ) -> RelaySite:
        """What the stub of ``function_id`` needs: :attr:`site` with the credentials of a
        session of the function's role (made on first use; ``extra_policies``, the role's
        other policies, replace the ones given before)."""
        key = self._stub_keys.get(function_id)
        if key is None or key.principal.policies[1:] != tuple(extra_policies):
            principal = stub_principal(
                function_id,
                stage=self.stage,
                api=self.api_arn,
                extra_policies=extra_policies,
                account=self.account,
            )
            key = self._stub_keys[function_id] = self._add(principal)
        return self._site_of(key)

    def _add(self, principal: Principal) -> AccessKey:
        key = new_key(principal, temporary=True)
        self.gateway.add_key(key)
        return key

    def _site_of(self, key: AccessKey) -> RelaySite:
        gw = self.gateway
        return dataclasses.replace(
            RelaySite(gw.ws_url, gw.connections_url, self.app, self.stage, self.region, "", ""),
            access_key_id=key.access_key_id,
            secret_access_key=key.secret_access_key,
            session_token=key.session_token,
        )
