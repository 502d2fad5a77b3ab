"""The synth process: ``python -m pylive.cdk.synth_main --root APP --mode local --out FILE``.

It imports the app's stacks module, synthesizes the CDK app into ``.pylive/cdk.out`` and
writes the app manifest to FILE. It talks to the runner (``pylive.cdk.synth``) through its exit
code and stderr lines starting with ``pylive:warning:`` / ``pylive:error:``; all other
output is only kept in the synth log.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import traceback
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pylive.cdk.manifest import AppManifest, CorsSettings, FunctionSpec, RouteSpec
from pylive.cdk.synth import (
    CDK_OUT_DIR,
    DEBUG_STACK_ID,
    ERROR_PREFIX,
    MODES,
    PYLIVE_DIR,
    RUNNER_PRINCIPALS_ENV,
    WARNING_PREFIX,
    stage_id,
)
from pylive.config import STATE_DIR_NAME, AppConfig, load_config
from pylive.errors import PyliveError, SynthError
from pylive.in_lambda.relay_settings import RELAY_VARIABLE


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pylive.cdk.synth_main")
    parser.add_argument("--root", required=True, type=Path, help="the app root")
    parser.add_argument("--mode", default="local", choices=MODES)
    parser.add_argument("--out", required=True, type=Path, help="where to write the manifest")
    parser.add_argument("--stage", default=None)
    parser.add_argument(
        "--cdk-out",
        type=Path,
        default=None,
        help="cloud assembly directory (default: .pylive/cdk.out)",
    )
    parser.add_argument(
        "--staged",
        action="store_true",
        help="create the stacks in a cdk.Stage named <app>-<stage> (what deploys use)",
    )
    args = parser.parse_args(argv)
    root = args.root.resolve()
    try:
        config = load_config(root, stage=args.stage)
        cdk_out = args.cdk_out.resolve() if args.cdk_out else None
        manifest = synth_app(config, args.mode, cdk_out=cdk_out, staged=args.staged)
        manifest.write(args.out.resolve())
    except BaseException as exc:  # every failure becomes one line the runner can show
        traceback.print_exc()
        _emit(ERROR_PREFIX + json.dumps(_describe(exc, root)))
        return 130 if isinstance(exc, KeyboardInterrupt) else 1
    return 0


def synth_app(
    config: AppConfig, mode: str, *, cdk_out: Path | None = None, staged: bool = False
) -> AppManifest:
    """Import the stacks module, synthesize the app and describe its functions and routes.

    ``staged`` (what every deploy uses) creates the stacks in a ``cdk.Stage`` named
    ``<app>-<stage>``, so CloudFormation stack names are ``<app>-<stage>-<StackId>`` and the
    stages of several developers live side by side in one account. Otherwise (``pylive dev
    --local``, manifests) they are created directly in the CDK app, with their plain ids.
    """
    if mode == "local":
        # aws-cdk-lib validates every template at synth (seconds, even for a tiny app); a
        # local-only template is never deployed, so skip it there. Read by the jsii Node.js
        # process, which starts on first use below.
        os.environ.setdefault("CDK_VALIDATION", "false")
    import aws_cdk as cdk

    os.chdir(config.root)
    root = str(config.root)
    if root in sys.path:
        sys.path.remove(root)
    sys.path.insert(0, root)
    stacks = _stacks_function(config.stacks_module, config.root)
    app = cdk.App(
        outdir=str(cdk_out or config.root / STATE_DIR_NAME / CDK_OUT_DIR),
        context={
            "pylive:mode": mode,
            "pylive:stage": config.stage,
            "pylive:app": config.name,
            "pylive:root": root,
            "@aws-cdk/core:defaultCrossStackReferences": "strong",
            # the bootstrap stack the templates and assets refer to
            "@aws-cdk/core:bootstrapQualifier": config.bootstrap_qualifier,
            # what the CDK toolkit sets when it runs an app itself: construct paths in the
            # templates, so errors can name the construct behind a logical id
            **({"aws:cdk:enable-path-metadata": True} if staged else {}),
            **_relay_context(),
        },
    )
    scope = stage_scope(app, config) if staged else app
    if mode == "debug":
        from pylive.constructs.debug_stack import DebugStack

        principals = os.environ.get(RUNNER_PRINCIPALS_ENV, "").split(",")
        DebugStack(
            scope,
            DEBUG_STACK_ID,
            app_name=config.name,
            stage=config.stage,
            runner_principals=[p.strip() for p in principals if p.strip()],
        )
    else:
        stacks(scope)
    if scope is not app:
        _check_stack_names(scope)
    app.synth()
    manifest = describe_app(app, config, mode=mode)
    return replace(manifest, infra_files=app_modules(config.root))


# Never the app's infra code, even when they sit below its root.
_NOT_APP_CODE = frozenset({".venv", "venv", "site-packages", STATE_DIR_NAME, "node_modules"})


def app_modules(root: Path) -> tuple[str, ...]:
    """The app's own Python files imported so far (by the stacks module, directly or not),
    relative to ``root``; pylive's own files are not the app's."""
    found: set[str] = set()
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if not file or not file.endswith(".py"):
            continue
        path = Path(file).resolve()
        if not path.is_relative_to(root) or path.is_relative_to(PYLIVE_DIR):
            continue
        relative = path.relative_to(root)
        if _NOT_APP_CODE.isdisjoint(relative.parts):
            found.add(relative.as_posix())
    return tuple(sorted(found))


RELAY_ENV = RELAY_VARIABLE
# Variables whose readers fall back to a local default (pylive.db uses DATABASE_URL or SQLite).
LOCAL_FALLBACK_PREFIX = "PYLIVE_DB_"


def _relay_context() -> dict[str, Any]:
    """Dev mode's relay settings (the debug stack's outputs), passed by `pylive dev` as JSON
    in the environment variable PYLIVE_RELAY."""
    raw = os.environ.get(RELAY_ENV)
    return {"pylive:relay": json.loads(raw)} if raw else {}


def stage_scope(app: Any, config: AppConfig) -> Any:
    """The ``cdk.Stage`` the app's stacks are created in when they are deployed."""
    import aws_cdk as cdk

    stage = cdk.Stage(app, stage_id(config.name, config.stage))
    cdk.Tags.of(stage).add("pylive:app", config.name)
    cdk.Tags.of(stage).add("pylive:stage", config.stage)
    return stage


def _check_stack_names(stage: Any) -> None:
    """Warn about stacks whose explicit ``stack_name`` would be shared by every stage."""
    import aws_cdk as cdk

    prefix = f"{stage.stage_name}-"
    for node in stage.node.find_all():
        if isinstance(node, cdk.Stack) and not node.stack_name.startswith(prefix):
            _warn(
                f"stack {node.node.path} sets stack_name={node.stack_name!r}, which does not "
                f"start with {prefix!r}: every stage would deploy to the same stack"
            )


def describe_app(app: Any, config: AppConfig, *, mode: str = "local") -> AppManifest:
    """The manifest of a synthesized app: every pylive Function and Api in its construct tree.

    Deploy-time environment values are left out with a warning, except in ``deploy`` mode,
    where nothing runs locally."""
    import aws_cdk as cdk

    from pylive.constructs import Api, Function
    from pylive.constructs.function_settings import handler_module_file

    nodes = list(app.node.find_all())
    functions = [n for n in nodes if isinstance(n, Function)]
    assembly = app.synth()  # already synthesized: the same cloud assembly
    ids = _unique_ids(functions, [cdk.Stack.of(fn).node.id for fn in functions])

    specs: dict[str, FunctionSpec] = {}
    deploy_time: dict[str, list[str]] = {}  # variable -> functions that lose it locally
    for fn in functions:
        fid = ids[id(fn)]
        environment: dict[str, str] = {}
        for key, value in fn.environment.items():
            if not cdk.Token.is_unresolved(value):
                environment[key] = str(value)
            elif not key.startswith(LOCAL_FALLBACK_PREFIX):
                deploy_time.setdefault(key, []).append(fid)
        module_file = handler_module_file(fn.handler)
        if not (fn.code_dir / module_file).is_file():
            _warn(f"function {fid!r}: handler module {module_file} not found in {fn.code_dir}")
        specs[fid] = FunctionSpec(
            id=fid,
            handler=fn.handler,
            code_dir=str(fn.code_dir),
            runtime=fn.runtime,
            timeout=fn.timeout,
            memory=fn.memory_size,
            architecture=fn.architecture,
            environment=environment,
            path=fn.path,
            dev_timeout=fn.dev_timeout,
            dev_memory=fn.dev_memory_size,
            role_policies=_role_policies(assembly, fn),
        )

    routes: list[RouteSpec] = []
    seen: dict[str, str] = {}
    for api in (n for n in nodes if isinstance(n, Api)):
        cors = _local_cors(api)
        for route_key, fn in api.routes.items():
            if route_key in seen:
                _warn(
                    f"route {route_key!r} of {api.node.path} is also defined by {seen[route_key]}; "
                    "locally only the first one is served"
                )
                continue
            seen[route_key] = api.node.path
            routes.append(RouteSpec(route_key=route_key, function=ids[id(fn)], cors=cors))

    if deploy_time and mode != "deploy":
        lost = "; ".join(f"{key} ({', '.join(fids)})" for key, fids in sorted(deploy_time.items()))
        _warn(f"deploy-time environment values are left out of local runs: {lost}")
    return AppManifest(
        app=config.name,
        functions=specs,
        routes=routes,
        region=config.region,
        stage=config.stage,
    )


def _role_policies(assembly: Any, fn: Any) -> list[dict[str, Any]]:
    """The policies of ``fn``'s role in its stack's synthesized template."""
    import aws_cdk as cdk

    from pylive.emulator.role_policies import role_policies

    stack = cdk.Stack.of(fn.function)
    resource = fn.function.node.default_child
    if resource is None:
        return []
    template = assembly.get_stack_artifact(stack.artifact_id).template
    return role_policies(template, stack.get_logical_id(resource))


def _local_cors(api: Any) -> CorsSettings | None:
    """The Api's CORS settings without the values that only exist after deployment (such as
    an origin made of a distribution's domain name), left out with a warning."""
    import aws_cdk as cdk

    settings: CorsSettings | None = api.cors
    if settings is None:
        return None

    def known(values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v for v in values if not cdk.Token.is_unresolved(v))

    local = replace(
        settings,
        allow_origins=known(settings.allow_origins),
        allow_headers=known(settings.allow_headers),
        expose_headers=known(settings.expose_headers),
    )
    if local != settings:
        _warn(f"deploy-time CORS values of {api.node.path} are left out of local runs")
    return local


def _stacks_function(module_name: str, root: Path) -> Any:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise SynthError(
                f"stacks module {module_name!r} not found in {root} "
                '(set `stacks = "..."` in [tool.pylive])'
            ) from exc
        raise
    stacks = getattr(module, "stacks", None)
    if not callable(stacks):
        raise SynthError(f"stacks module {module_name!r} must define `def stacks(app)`")
    return stacks


def _unique_ids(functions: list[Any], stack_ids: list[str]) -> dict[int, str]:
    """Function ids that are unique across the app.

    The construct id when it is unique; on a clash, the stack id and the construct id;
    if that still clashes, the whole construct path.
    """
    candidates = [
        (fn.node.id, f"{stack}-{fn.node.id}", fn.node.path.replace("/", "-"))
        for fn, stack in zip(functions, stack_ids, strict=True)
    ]
    levels = [0] * len(functions)
    while True:
        names = [c[level] for c, level in zip(candidates, levels, strict=True)]
        counts = Counter(names)
        escalate = [i for i, name in enumerate(names) if counts[name] > 1 and levels[i] < 2]
        if not escalate:
            break
        for i in escalate:
            levels[i] += 1
    result: dict[int, str] = {}
    taken: set[str] = set()
    for fn, name in zip(functions, names, strict=True):
        unique, n = name, 2
        while unique in taken:
            unique, n = f"{name}-{n}", n + 1
        taken.add(unique)
        result[id(fn)] = unique
    return result


def _describe(exc: BaseException, root: Path) -> dict[str, str]:
    """The failure as the user should see it: type, first line of the message, and the
    innermost file:line of the user's code."""
    if isinstance(exc, PyliveError):
        return {"type": "", "message": _first_line(str(exc)), "location": ""}
    location = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        location = f"{_relative(Path(exc.filename), root)}:{exc.lineno}"
        message = exc.msg
    else:
        message = str(exc)
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if _is_user_file(Path(frame.filename), root):
                location = f"{_relative(Path(frame.filename), root)}:{frame.lineno}"
                break
    return {"type": type(exc).__name__, "message": _first_line(message), "location": location}


def _is_user_file(path: Path, root: Path) -> bool:
    try:
        relative = path.resolve().relative_to(root)
    except (ValueError, OSError):
        return False
    first = relative.parts[0] if relative.parts else ""
    if first in {".venv", "venv", STATE_DIR_NAME} or "site-packages" in relative.parts:
        return False
    return not path.resolve().is_relative_to(PYLIVE_DIR)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except (ValueError, OSError):
        return str(path)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _warn(message: str) -> None:
    _emit(WARNING_PREFIX + message)


def _emit(line: str) -> None:
    sys.stderr.write(line.replace("\n", " ") + "\n")
    sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
