"""The app manifest: what the runner needs to know about an app's functions and routes.

It is produced by synthesizing the app's stacks (see ``pylive.cdk.synth``) and cached as
``.pylive/manifest.json``; the long-running runner only ever reads this plain data.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# 2: routes' CORS settings; 3: infra_files; 4: dev_timeout; 5: role_policies; 6: dev_memory
MANIFEST_VERSION = 6


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function as the runner sees it."""

    id: str  # stable, user-facing name: `pylive invoke <id>`
    handler: str  # "functions/hello.handler" (path/module.func, as Lambda accepts it)
    code_dir: str  # absolute directory that holds the handler's module tree (sys.path root)
    runtime: str = "python3.12"
    timeout: float = 3.0  # seconds
    memory: int = 128  # MB
    architecture: str = "x86_64"
    environment: dict[str, str] = field(default_factory=dict)
    function_name: str = ""  # the deployed function name, when known; defaults to the id
    path: str = ""  # construct path below the app's stage ("App/hello"): how stubs name it
    dev_timeout: float = 0.0  # the stub's timeout in dev mode (0: the function's timeout)
    dev_memory: int = 0  # MB, the stub's memory in dev mode (0: the function's memory)
    # The policy documents of the function's role as the template states them (CloudFormation
    # intrinsics unresolved); dev mode adds the relay's grants (pylive.relay_policy).
    role_policies: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class CorsSettings:
    """An HTTP API's CORS configuration as plain data (its ``CorsConfiguration``).

    Empty lists and ``None`` mean "not configured": the matching header is not sent.
    """

    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()  # "GET", ..., or "*"
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None  # seconds
    allow_credentials: bool | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CorsSettings:
        return cls(
            allow_origins=tuple(data.get("allow_origins", ())),
            allow_methods=tuple(data.get("allow_methods", ())),
            allow_headers=tuple(data.get("allow_headers", ())),
            expose_headers=tuple(data.get("expose_headers", ())),
            max_age=data.get("max_age"),
            allow_credentials=data.get("allow_credentials"),
        )


@dataclass(frozen=True)
class RouteSpec:
    """One HTTP API route: ``route_key`` is ``"GET /items/{id}"``, ``"ANY /{proxy+}"`` or
    ``"$default"``; ``function`` is a ``FunctionSpec.id``; ``cors`` is the CORS
    configuration of the Api the route belongs to, if it has one."""

    route_key: str
    function: str
    cors: CorsSettings | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RouteSpec:
        cors = data.get("cors")
        return cls(
            route_key=data["route_key"],
            function=data["function"],
            cors=CorsSettings.from_dict(cors) if cors is not None else None,
        )


@dataclass(frozen=True)
class AppManifest:
    app: str
    functions: dict[str, FunctionSpec]
    routes: list[RouteSpec]
    region: str = "us-east-1"
    stage: str = "dev"
    source_hash: str = ""  # hash of the infra code this manifest was synthesized from
    # The app's own modules that synthesis imported besides the stacks module (helpers of
    # the infra code), relative to the app root: the hash and the watcher cover them too.
    infra_files: tuple[str, ...] = ()

    def code_dirs(self) -> list[str]:
        """The functions' code directories, each once."""
        return sorted({spec.code_dir for spec in self.functions.values()})

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "version": MANIFEST_VERSION,
            "app": self.app,
            "region": self.region,
            "stage": self.stage,
            "source_hash": self.source_hash,
            "functions": {k: asdict(v) for k, v in self.functions.items()},
            "routes": [asdict(r) for r in self.routes],
            "infra_files": list(self.infra_files),
        }
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AppManifest:
        data = json.loads(text)
        if data.get("version") != MANIFEST_VERSION:
            raise ValueError(f"unsupported manifest version {data.get('version')!r}")
        return cls(
            app=data["app"],
            region=data.get("region", "us-east-1"),
            stage=data.get("stage", "dev"),
            source_hash=data.get("source_hash", ""),
            functions={k: FunctionSpec(**v) for k, v in data["functions"].items()},
            routes=[RouteSpec.from_dict(r) for r in data["routes"]],
            infra_files=tuple(data.get("infra_files", ())),
        )

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> AppManifest:
        return cls.from_json(path.read_text())
