"""``pylive synth``, ``pylive deploy`` and ``pylive remove``: synthesize the app in deploy mode
(functions bundled with their requirements), then hand the cloud assembly to the AWS CDK
toolkit, which publishes the assets and drives CloudFormation.

The app's stacks live in a ``cdk.Stage`` named ``<app>-<stage>``: CloudFormation stack names
are ``<app>-<stage>-<StackId>``, so stages of several developers share one account. Each stage
keeps its assembly, toolkit log and outputs in ``.pylive/stages/<stage>/``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pylive.aws_account import (
    AwsTarget,
    delete_stack,
    existing_stacks,
    is_bootstrapped,
    resolve_target,
    tagged_stacks,
)
from pylive.cdk.assembly import StackArtifact, construct_paths, stage_stacks
from pylive.cdk.synth import (
    DEBUG_STACK_ID,
    RUNNER_PRINCIPALS_ENV,
    stage_id,
    synthesize_assembly,
    validate_stage,
)
from pylive.cdk.toolkit import run_toolkit, toolkit_command, toolkit_env
from pylive.cdk.toolkit_output import ProgressFilter, failure_line, needs_bootstrap
from pylive.config import DEFAULT_BOOTSTRAP_QUALIFIER, AppConfig
from pylive.console import Console
from pylive.errors import PyliveError, SynthError, UsageError
from pylive.in_lambda.relay_settings import RELAY_VARIABLE, Relay

STAGES_DIR = "stages"
METHODS = ("change-set", "direct")
_SUCCESS_MARK = "✅"


class DeployError(PyliveError):
    """The toolkit reported a failed deploy, remove or bootstrap."""

    exit_code = 5


@dataclass(frozen=True)
class DeployOptions:
    method: str = "change-set"  # how CloudFormation applies changes: "change-set" | "direct"
    concurrency: int = 4  # stacks deployed at once (dependencies are respected)
    mode: str = "deploy"  # synth mode: "deploy" (real code), "dev" (stubs), "debug" (relay)
    synth_env: dict[str, str] = field(default_factory=dict)  # e.g. PYLIVE_RELAY for dev mode


@dataclass(frozen=True)
class DeployResult:
    stacks: list[StackArtifact]
    outputs: dict[str, dict[str, str]]
    unchanged: list[str] = field(default_factory=list)  # stack names the toolkit skipped
    seconds: float = 0.0


def stage_dir(config: AppConfig) -> Path:
    return config.state_dir / STAGES_DIR / config.stage


def synth(config: AppConfig, console: Console, out: Path | None = None) -> list[StackArtifact]:
    """Synthesize the stage in deploy mode into ``out`` (default ``.pylive/stages/<stage>/
    cdk.out``) and return its stacks. Needs no AWS credentials."""
    return _synth(config, console, out or stage_dir(config) / "cdk.out", target=None)


# `pylive synth --dev` writes the stubs before any relay exists: the relay's API id in their
# settings is this (ten characters, like an API Gateway id) until `pylive dev` deploys it.
PLACEHOLDER_API_ID = "relayapiid"
DEV_SUBDIRS = ("debug", "app")  # what `pylive dev` deploys, in its order


@dataclass(frozen=True)
class DevAssemblies:
    """What `pylive synth --dev` wrote: the debug stack's and the app's stacks."""

    debug: list[StackArtifact]
    app: list[StackArtifact]


def placeholder_relay(config: AppConfig) -> Relay:
    """The settings of a relay not deployed yet."""
    host = f"{PLACEHOLDER_API_ID}.execute-api.{config.region}.amazonaws.com"
    return Relay(
        app=config.name,
        stage=config.stage,
        api_id=PLACEHOLDER_API_ID,
        relay_url=f"wss://{host}/{config.stage}",
        callback_url=f"https://{host}/{config.stage}",
    )


def synth_dev(config: AppConfig, console: Console, out: Path) -> DevAssemblies:
    """Synthesize what `pylive dev` deploys, to review and lint it: the stage's debug stack
    into ``out/debug`` and the app in dev mode (the relay stub in place of each function)
    into ``out/app``, with :func:`placeholder_relay`'s settings. Needs no AWS credentials."""
    validate_stage(config.stage)
    debug = _synth(config, console, out / "debug", target=None, mode="debug")
    relay = {RELAY_VARIABLE: json.dumps(placeholder_relay(config).to_context())}
    app = _synth(config, console, out / "app", target=None, mode="dev", env=relay)
    return DevAssemblies(debug=debug, app=app)


def deploy(
    config: AppConfig, console: Console, options: DeployOptions | None = None
) -> DeployResult:
    """Deploy every stack of the stage; bootstraps the environment first when needed."""
    options = options or DeployOptions()
    if options.method not in METHODS:
        raise UsageError(f"method {options.method!r} must be one of: {', '.join(METHODS)}")
    validate_stage(config.stage)
    started = time.perf_counter()
    target = resolve_target(config.region)
    console.event(f"deploying {config.name} stage {config.stage!r} to {target.describe()}")
    work = stage_dir(config)
    cdk_out = work / "cdk.out"
    synth_env = dict(options.synth_env)
    if options.mode == "debug":
        synth_env[RUNNER_PRINCIPALS_ENV] = runner_principals(target.caller_arn)
    stacks = _synth(config, console, cdk_out, target=target, mode=options.mode, env=synth_env)
    toolkit = _Toolkit(config, target, console, stacks)
    outputs_file = work / "outputs.json"
    outputs_file.unlink(missing_ok=True)
    args = [
        "deploy", "--app", str(cdk_out), *(s.display_name for s in stacks),
        "--require-approval", "never", "--progress", "events",
        "--outputs-file", str(outputs_file), "--method", options.method,
        "--concurrency", str(options.concurrency),
    ]  # fmt: skip
    toolkit.ensure_bootstrapped()
    lines = toolkit.run(args, "deploy", retry_after_bootstrap=True)
    outputs = _read_outputs(outputs_file)
    unchanged = [
        s.stack_name
        for s in stacks
        if any(_SUCCESS_MARK in line and s.stack_name in line and "(no changes)" in line
               for line in lines)
    ]  # fmt: skip
    result = DeployResult(
        stacks=stacks,
        outputs=outputs,
        unchanged=unchanged,
        seconds=time.perf_counter() - started,
    )
    _print_outputs(console, result)
    return result


def remove(
    config: AppConfig,
    console: Console,
    confirm: Callable[[list[str], AwsTarget], bool],
) -> list[str]:
    """Delete every stack of the stage, after ``confirm`` agreed. Returns the names of the
    stacks removed (empty when the user declined).

    The toolkit destroys what synthesis says the stage holds. When the app no longer
    synthesizes (broken or deleted infra code), the stacks are found by the tags pylive gives
    every stack and deleted through CloudFormation, newest first."""
    validate_stage(config.stage)
    target = resolve_target(config.region)
    work = stage_dir(config)
    # The app's stacks, and the debug stack `pylive dev` deployed (when there is one).
    plans: list[tuple[Path, list[StackArtifact]]] = []
    try:
        for mode, cdk_out in (("deploy", work / "cdk.out"), ("debug", work / "cdk.out-debug")):
            if mode == "debug" and not existing_stacks(target, [debug_stack_name(config)]):
                continue
            stacks = _synth(config, console, cdk_out, target=target, mode=mode)
            existing = existing_stacks(target, [s.stack_name for s in stacks])
            plans.append((cdk_out, [s for s in stacks if s.stack_name in existing]))
    except SynthError as exc:
        console.warn(f"{exc}; finding the stage's stacks by their tags instead")
        return _remove_tagged(config, console, confirm, target)
    everything = [s.stack_name for _, stacks in plans for s in stacks]
    if not _agreed(config, console, confirm, target, everything):
        return []
    for cdk_out, stacks in plans:
        if stacks:
            toolkit = _Toolkit(config, target, console, stacks)
            toolkit.run(
                ["destroy", "--app", str(cdk_out), *(s.display_name for s in stacks), "--force"],
                "remove",
            )
    (work / "outputs.json").unlink(missing_ok=True)
    return everything


def _remove_tagged(
    config: AppConfig,
    console: Console,
    confirm: Callable[[list[str], AwsTarget], bool],
    target: AwsTarget,
) -> list[str]:
    names = tagged_stacks(target, config.name, config.stage)
    if not _agreed(config, console, confirm, target, names):
        return []
    for name in names:
        console.info(f"  deleting {name}")
        failure = delete_stack(target, name)
        if failure is not None:
            raise DeployError(f"remove failed: {name}: {failure}")
    (stage_dir(config) / "outputs.json").unlink(missing_ok=True)
    return names


def _agreed(
    config: AppConfig,
    console: Console,
    confirm: Callable[[list[str], AwsTarget], bool],
    target: AwsTarget,
    names: list[str],
) -> bool:
    """True when there is something to remove and ``confirm`` agreed (then it says so)."""
    where = target.describe()
    if not names:
        console.event(f"stage {config.stage!r} of {config.name} has no stacks in {where}")
        return False
    if not confirm(names, target):
        return False
    console.event(f"removing {config.name} stage {config.stage!r} from {where}")
    return True


def toolkit_stack_name(qualifier: str) -> str:
    """The CDK bootstrap stack pylive creates for ``qualifier``: the CDK's ``CDKToolkit`` for
    its default qualifier, ``CDKToolkit-<qualifier>`` for any other."""
    if qualifier == DEFAULT_BOOTSTRAP_QUALIFIER:
        return "CDKToolkit"
    return f"CDKToolkit-{qualifier}"


def runner_principals(caller_arn: str) -> str:
    """Who the debug stack lets be the runner: the identity deploying it, and the ARNs the
    developer lists in ``PYLIVE_RUNNER_PRINCIPALS`` (comma-separated), e.g. a teammate's."""
    extra = os.environ.get(RUNNER_PRINCIPALS_ENV, "").split(",")
    arns = [a.strip() for a in [caller_arn, *extra] if a.strip()]
    return ",".join(dict.fromkeys(arns))


def debug_stack_name(config: AppConfig) -> str:
    """The CloudFormation name of the stage's DebugStack."""
    return f"{stage_id(config.name, config.stage)}-{DEBUG_STACK_ID}"


# -- internals ---------------------------------------------------------------------------------


def _synth(
    config: AppConfig,
    console: Console,
    cdk_out: Path,
    *,
    target: AwsTarget | None,
    mode: str = "deploy",
    env: dict[str, str] | None = None,
) -> list[StackArtifact]:
    stage = stage_id(config.name, config.stage)
    started = time.perf_counter()
    env = {**(env or {}), "CDK_DEFAULT_REGION": config.region}
    if target is not None:
        env["CDK_DEFAULT_ACCOUNT"] = target.account
    own = cdk_out.absolute().parent == stage_dir(config).absolute()
    synthesize_assembly(config, cdk_out, mode=mode, env=env, on_warning=console.warn, legacy_ok=own)
    stacks = stage_stacks(cdk_out, stage)
    if not stacks:
        raise UsageError(
            f"the stacks module {config.stacks_module!r} created no stacks: `stacks(app)` must "
            "create at least one `Stack(app, ...)`"
        )
    console.event(
        f"synthesized {len(stacks)} stack(s) in {time.perf_counter() - started:.1f} s: "
        + ", ".join(s.stack_name for s in stacks)
    )
    return stacks


class _Toolkit:
    """The CDK toolkit for one stage: its command, environment, log and output handling."""

    def __init__(
        self, config: AppConfig, target: AwsTarget, console: Console, stacks: list[StackArtifact]
    ) -> None:
        self.console = console
        self.target = target
        self.qualifier = config.bootstrap_qualifier
        self.stacks = stacks
        self.work = stage_dir(config)
        self.work.mkdir(parents=True, exist_ok=True)
        self.log_path = self.work / "toolkit.log"
        self.log_path.write_text("")
        self.command = toolkit_command(console.event)
        self.env = toolkit_env({"AWS_REGION": target.region, "AWS_DEFAULT_REGION": target.region})
        self.bootstrapped = False

    def ensure_bootstrapped(self) -> None:
        if is_bootstrapped(self.target, self.qualifier) is False:
            self.bootstrap()

    def bootstrap(self) -> None:
        self.console.event(f"bootstrapping {self.target.environment} for the CDK (once)")
        args = ["bootstrap", self.target.environment, "--qualifier", self.qualifier]
        if self.qualifier != DEFAULT_BOOTSTRAP_QUALIFIER:
            # A stack of its own: bootstrapping into the default CDKToolkit stack would
            # switch it to this qualifier under every other app of the account.
            args += ["--toolkit-stack-name", toolkit_stack_name(self.qualifier)]
        self.run(args, "bootstrap")
        self.bootstrapped = True

    def run(
        self, args: list[str], action: str, *, retry_after_bootstrap: bool = False
    ) -> list[str]:
        show = ProgressFilter()

        def on_line(line: str) -> None:
            with self.log_path.open("a") as log:
                log.write(line + "\n")
            shown = show(line)
            if shown is not None:
                self.console.info(f"  {shown}" if shown else "")

        command = [*self.command, *args, "--no-notices", "--no-color"]
        with self.log_path.open("a") as log:
            log.write(f"$ {' '.join(command)}\n")
        done = run_toolkit(command, cwd=self.work, env=self.env, on_line=on_line)
        if done.returncode == 0:
            return done.lines
        if retry_after_bootstrap and not self.bootstrapped and needs_bootstrap(done.lines):
            self.bootstrap()
            return self.run(args, action)
        reason = _name_constructs(failure_line(done.lines), construct_paths(self.stacks))
        raise DeployError(f"{action} failed: {reason} (full log: {_display(self.log_path)})")


def _name_constructs(message: str, paths: dict[str, str]) -> str:
    """Add the construct path of the logical ids a message names but does not explain."""
    notes = [
        f"{logical_id} is {path}"
        for logical_id, path in paths.items()
        if re.search(rf"\b{re.escape(logical_id)}\b", message) and path not in message
    ]
    return f"{message} ({'; '.join(notes[:3])})" if notes else message


def _read_outputs(path: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        str(stack): {str(k): str(v) for k, v in values.items()}
        for stack, values in data.items()
        if isinstance(values, dict)
    }


def _print_outputs(console: Console, result: DeployResult) -> None:
    skipped = f" ({len(result.unchanged)} unchanged)" if result.unchanged else ""
    console.event(f"deployed {len(result.stacks)} stack(s) in {result.seconds:.1f} s{skipped}")
    for stack, values in result.outputs.items():
        if not values:
            continue
        console.info(f"Outputs of {stack}:")
        width = max(len(key) for key in values)
        for key, value in sorted(values.items()):
            console.info(f"  {key.ljust(width)}  {value}")


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
