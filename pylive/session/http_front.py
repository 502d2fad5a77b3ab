"""The local targets of `pylive dev --local`: the app's HTTP API on localhost, calling the
functions' stubs through the local cloud (the default) or the workers themselves (``direct``).
``.pylive/dev.json`` tells other tools where the session is."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from typing import Any

from pylive.cdk.manifest import AppManifest
from pylive.config import AppConfig
from pylive.console import Console
from pylive.emulator import limits
from pylive.emulator.http1 import HttpServer
from pylive.emulator.http_server import HttpApi, HttpApiApp, Invoke, bind
from pylive.emulator.routes import RouteTable
from pylive.runner.invocation import InvokeResult
from pylive.runner.pool import WorkerPool
from pylive.session.local_cloud import LocalCloud
from pylive.session.options import DevOptions

DEV_FILE = "dev.json"


class LocalTarget:
    how_to_stop = "Press Ctrl-C to stop."

    def __init__(
        self, config: AppConfig, options: DevOptions, console: Console, stop: asyncio.Event
    ) -> None:
        self.config = config
        self.options = options
        self.console = console
        self.stop = stop
        self.direct = options.target == "direct"
        self.label = f"dev --local ({'direct' if self.direct else 'relay'})"
        self.url = ""
        self.cloud: LocalCloud | None = None  # the relay path's
        self._sock: socket.socket | None = None
        self._api: HttpApi | None = None
        self._server: HttpServer | None = None
        self._entry: WorkerPool | None = None  # what the HTTP API invokes

    async def prepare(self) -> None:
        self._sock = bind(self.options.host, self.options.port)

    async def start(self, pool: WorkerPool, manifest: AppManifest) -> list[asyncio.Task[Any]]:
        assert self._sock is not None
        tasks: list[asyncio.Task[Any]] = []
        invoke: Invoke = pool.invoke
        self._entry = pool
        if not self.direct:
            cloud = self.cloud = LocalCloud(self.config, pool, self.stop, self.console)
            invoke = await cloud.start(manifest, timeout_override=self.options.timeout_override)
            self._entry = cloud.stubs
            tasks.append(cloud.runner)
        self._api = HttpApi(RouteTable(manifest.routes))
        if self.options.debug:  # a breakpoint may hold an invocation for minutes
            self._api.integration_timeout = None
        server = self._server = HttpServer(
            HttpApiApp(self._api, invoke, self.console.http_answer),
            max_body=limits.MAX_BODY_BYTES,
        )
        await server.start(self._sock)
        tasks.append(asyncio.create_task(server.serve()))
        host, port = self._sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return tasks

    async def replay(self, function_id: str, event: bytes, request_id: str) -> InvokeResult:
        assert self._entry is not None
        return await self._entry.invoke(function_id, event, request_id=request_id)

    def ready(self, manifest: AppManifest, took: float) -> None:
        self._write_dev_file(manifest)
        path = "directly" if self.direct else "through the local relay"
        self.console.info(
            f"pylive dev --local: {manifest.app} serving {len(manifest.functions)} "
            f"function(s) on {self.url} {path} (ready in {took:.2f} s)"
        )
        for route in manifest.routes:
            self.console.info(f"  {route.route_key:<28} -> {route.function}")

    def functions_changed(self, manifest: AppManifest, restarted: list[str]) -> None:
        assert self._api is not None
        if self.cloud is not None:
            self.cloud.set_functions(manifest, self.options.timeout_override)
        self._api.routes = RouteTable(manifest.routes)
        self._write_dev_file(manifest)
        what = f"; restarted {', '.join(restarted)}" if restarted else ""
        self.console.event(f"routes updated ({len(manifest.routes)} routes){what}")

    async def stopping(self) -> None:
        if self._server is not None:
            self._server.stop()

    async def close(self) -> None:
        if self.cloud is not None:
            await self.cloud.close()
        if self._sock is not None:
            self._sock.close()
        self._remove_dev_file()

    def _remove_dev_file(self) -> None:
        """Remove ``dev.json`` when this session wrote it (never another session's)."""
        path = self.config.state_dir / DEV_FILE
        with contextlib.suppress(OSError, ValueError, AttributeError):
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()

    def _write_dev_file(self, manifest: AppManifest) -> None:
        data: dict[str, Any] = {
            "http_url": self.url,
            "pid": os.getpid(),
            "region": self.config.region,
            "functions": sorted(manifest.functions),
            "routes": [r.route_key for r in manifest.routes],
            "path": "direct" if self.direct else "relay",
        }
        if self.cloud is not None:
            site = self.cloud.api.site
            data.update(
                ws_url=site.ws_url,
                connections_url=site.connections_url,
                stage=site.stage,
                credentials={
                    "access_key_id": site.access_key_id,
                    "secret_access_key": site.secret_access_key,
                },
            )
        path = self.config.state_dir / DEV_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        # It holds the emulator's credentials: readable by the developer only.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(data, indent=2))
        tmp.replace(path)
