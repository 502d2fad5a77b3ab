"""The `pylive` command. Each command parses its options and calls one function."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pylive import __version__
from pylive.errors import PyliveError


def main() -> None:
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        # One line, as every pylive error: the problem and where the command's help is.
        command = exc.ctx.command_path if exc.ctx is not None else "pylive"
        click.echo(f"Error: {exc.format_message()} (see `{command} --help`)", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except PyliveError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except OSError as exc:
        # A path pylive did not foresee (a file where a directory should be, a name too long,
        # a full disk): still one line, naming the path.
        where = f": {exc.filename}" if exc.filename else ""
        click.echo(f"Error: {exc.strerror or exc}{where}", err=True)
        sys.exit(1)
    except RuntimeError as exc:
        if not str(exc).startswith("Symlink loop"):  # Path.resolve() before Python 3.13
            raise
        click.echo(f"Error: a path goes through a symbolic link loop ({exc})", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pylive")
def cli() -> None:
    """Live Lambda development for Python on AWS.

    \b
    pylive init my-app        start a project
    pylive dev --local        run its HTTP API on localhost with hot reload
    pylive invoke hello       run one function once
    pylive deploy --stage prod  deploy it to AWS
    """


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option(
    "--template", "-t", default="starter", show_default=True, help="Which app to start from."
)
@click.option("--name", help="The app's name (default: the directory's name).")
@click.option(
    "--no-env",
    is_flag=True,
    help="Do not create the app's environment (.venv); its functions then run on pylive's "
    "own interpreter.",
)
def init(directory: Path, template: str, name: str | None, no_env: bool) -> None:
    """Create a new app in DIRECTORY, ready for `pylive dev --local`.

    The app gets its own environment, DIRECTORY/.venv, made with uv: its requirements
    (requirements.txt, else pyproject.toml's dependencies), its `dev` dependency group
    (pytest), boto3 (as in Lambda) and pylive's runtime modules (`pylive.db`). Its functions
    run on it, and `pylive dev` keeps it in sync with those files.
    """
    from pylive.init import init_project

    created = init_project(directory, template=template, name=name)
    click.echo(f"Created {created} from the {template!r} template.")
    if not no_env:
        from pylive import appenv

        appenv.create(created, on_status=click.echo)
    click.echo(f"Next:\n  cd {directory}\n  pylive dev --local")


# `pylive dev` runs in one of two modes; these options belong to one of them only, and passing
# one in the other mode is a usage error rather than silently ignored.
_LOCAL_ONLY = ("port", "host", "debug_wait", "relay")
_LIVE_ONLY = ("assume_role",)


def _reject_other_mode(context: click.Context, local: bool) -> None:
    """Fail on an option the chosen mode of `pylive dev` does not use, naming its mode."""
    from click.core import ParameterSource

    for param in context.command.params:
        name = param.name
        if name not in (_LIVE_ONLY if local else _LOCAL_ONLY):
            continue
        if context.get_parameter_source(name) not in (
            ParameterSource.COMMANDLINE,
            ParameterSource.ENVIRONMENT,
        ):
            continue
        # A --on/--off pair: name the spelling that was passed.
        value = context.params[name]
        flag = param.opts[0] if value or not param.secondary_opts else param.secondary_opts[0]
        if local:
            raise click.UsageError(
                f"{flag} belongs to live development (pylive dev without --local); "
                "drop it or --local",
                context,
            )
        raise click.UsageError(
            f"{flag} belongs to local development (pylive dev --local); add --local or drop it",
            context,
        )


@cli.command()
@click.option("--local", "local", is_flag=True, help="Run without AWS: the HTTP API on localhost.")
@click.option(
    "--port", default=3000, show_default=True, help="Port of the local HTTP API. Only with --local."
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Any address other than loopback makes the API (and your "
    "functions, with your credentials) reachable from the network; pylive warns. "
    "Only with --local.",
)
@click.option("--stage", help="Stage name (default: [tool.pylive] stage, else 'dev').")
@click.option(
    "--debug",
    is_flag=True,
    help="Let a debugger (debugpy, as VS Code uses) attach to the workers; one worker per "
    "function, timeouts raised to 15 minutes.",
)
@click.option("--debug-port", default=5678, show_default=True, help="First debugger port.")
@click.option(
    "--debug-wait",
    is_flag=True,
    help="With --debug: wait for the debugger to attach. Only with --local.",
)
@click.option("--no-watch", is_flag=True, help="Do not reload on file changes.")
@click.option(
    "--assume-role",
    is_flag=True,
    help="Run each function with its own execution role's credentials (assumed with yours) "
    "instead of your credentials, so missing permissions show here. Only without --local.",
)
@click.option(
    "--relay/--direct",
    default=False,
    help="Send each request from the HTTP API straight to the workers (--direct, the default: "
    "the fastest path, with the same handlers, context, errors and limits), or the way a "
    "deployed app in live development is served (--relay: HTTP API, stub, local WebSocket "
    "API and router, runner, worker), to try pylive's relay itself. Only with --local.",
)
@click.option(
    "--quiet", "-q", is_flag=True, help="Print only failed invocations and pylive's own messages."
)
@click.option(
    "--verbose", "-v", is_flag=True, help="Also print each invocation's event and result."
)
@click.option(
    "--console-port",
    default=0,
    show_default=True,
    help="Port of the web console on 127.0.0.1 (0: any free port).",
)
@click.option("--no-console", is_flag=True, help="Do not serve the web console.")
def dev(
    local: bool,
    port: int,
    host: str,
    stage: str | None,
    debug: bool,
    debug_port: int,
    debug_wait: bool,
    no_watch: bool,
    assume_role: bool,
    relay: bool,
    quiet: bool,
    verbose: bool,
    console_port: int,
    no_console: bool,
) -> None:
    """Run the app with hot reload: every save is served by the new code at once.

    Without --local: deploy the stage's relay and the functions as stubs to AWS, then run
    every real invocation here. With --local: no AWS at all; the app's HTTP API on localhost.

    Every invocation is recorded (.pylive/invocations.jsonl) and printed as one line. The
    web console (its URL is printed at start, on 127.0.0.1) lists them live, shows each
    one's event, result and output, and replays them; so does `pylive replay`.

    Options marked "Only with --local" or "Only without --local" belong to one mode; passing
    one in the other mode is an error.
    """
    _reject_other_mode(click.get_current_context(), local)
    from pylive.config import load_config
    from pylive.console import Console
    from pylive.emulator.exposure import warn_if_exposed
    from pylive.session.dev import DevSession
    from pylive.session.lock import dev_lock
    from pylive.session.loop import run_event_loop
    from pylive.session.options import DevOptions

    config = load_config(stage=stage)
    if quiet and verbose:
        from pylive.errors import UsageError

        raise UsageError("pass either --quiet or --verbose, not both")
    console = Console(level="quiet" if quiet else "verbose" if verbose else "normal")
    if local:
        warn_if_exposed(host)
    mode = {"mode": "local", "host": host, "port": port} if local else {"mode": "live"}
    options = DevOptions(
        target="local" if local and relay else "direct" if local else "aws",
        host=host,
        port=port,
        debug=debug or debug_wait,
        debug_port=debug_port,
        debug_wait=debug_wait,
        watch=not no_watch,
        assume_role=assume_role,
        web_console=not no_console,
        console_port=console_port,
    )
    with dev_lock(config.state_dir, stage=config.stage, **mode):
        session = DevSession(config, options, console)
        if local:
            run_event_loop(session.run)
            return
        from pylive.aws_account import CredentialsError

        try:
            run_event_loop(session.run)
        except CredentialsError as exc:
            raise CredentialsError(
                f"{exc}; or run `pylive dev --local` to develop without AWS"
            ) from None


@cli.command()
@click.argument("function")
@click.option(
    "--event",
    "-e",
    help="The event, as JSON (default: {}), or a sample event of a source: "
    "sqs, s3, eventbridge, schedule, dynamodb or http.",
)
@click.option(
    "--event-file",
    "-f",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A file holding the event as JSON ('-' reads standard input).",
)
@click.option(
    "--save",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the event to this file (to edit and pass with --event-file) instead of invoking.",
)
def invoke(function: str, event: str | None, event_file: Path | None, save: Path | None) -> None:
    """Run FUNCTION once locally and print its result as JSON.

    On a function error the Lambda error JSON is printed and the exit code is 1.
    `--event sqs` (or s3, eventbridge, schedule, dynamodb, http) sends a realistic sample
    event of that source, shaped like AWS's documented ones.
    """
    from pylive.config import load_config
    from pylive.invoke.once import invoke_once, read_event, sample_payload
    from pylive.session.loop import run_event_loop

    config = load_config()
    payload = sample_payload(event, config.region) or read_event(event, event_file)
    if save is not None:
        save.write_bytes(payload + b"\n")
        click.echo(f"Wrote {save}; edit it, then: pylive invoke {function} --event-file {save}")
        return
    result = run_event_loop(lambda: invoke_once(config, function, payload))
    sys.stdout.buffer.write(result.body + b"\n")
    sys.stdout.flush()
    if not result.ok:
        sys.exit(1)


@cli.command()
@click.argument("request_id", required=False)
@click.option("--function", "-F", "function", help="Replay this function's last invocation.")
def replay(request_id: str | None, function: str | None) -> None:
    """Run a recorded invocation again on the current code and print what changed.

    REQUEST_ID is an invocation's request id (as the console shows it) or `last` (the
    default). With `pylive dev` running, the replay takes the session's path (through the
    local relay, or directly); without it, a one-off worker runs the recorded event. The
    exit code is 1 when the replay fails.
    """
    from pylive.config import load_config
    from pylive.invoke.replay import replay as run_replay
    from pylive.invoke.replay import report

    if request_id is not None and function is not None:
        from pylive.errors import UsageError

        raise UsageError("pass either a request id or --function, not both")
    replayed = run_replay(load_config(), request_id, function)
    for line in report(replayed):
        click.echo(line)
    if replayed.new["status"] != "ok":
        sys.exit(1)


_STAGE_HELP = "Stage name (default: [tool.pylive] stage, else 'dev')."


@cli.command()
@click.option("--stage", "-s", help=_STAGE_HELP)
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to write the cloud assembly (default: cdk.out in the app root; with --dev, "
    "cdk.out-dev).",
)
@click.option(
    "--dev",
    is_flag=True,
    help="Write what `pylive dev` deploys: the debug stack and the app with relay stubs.",
)
def synth(stage: str | None, out: Path | None, dev: bool) -> None:
    """Write the stage's CloudFormation templates and assets (deploy mode) to a folder.

    Functions are bundled with their requirements, as `pylive deploy` does; no AWS
    credentials are needed. With --dev: what `pylive dev` deploys instead, the stage's
    debug stack (in <out>/debug) and the app in dev mode, each function replaced by the
    relay stub (in <out>/app), to review or lint before deploying.
    """
    from pylive.config import load_config
    from pylive.console import Console

    config = load_config(stage=stage)
    if dev:
        from pylive.cdk.deploy import PLACEHOLDER_API_ID, synth_dev

        target = (out or config.root / "cdk.out-dev").resolve()
        written = synth_dev(config, Console(), target)
        for stack in [*written.debug, *written.app]:
            click.echo(f"{stack.stack_name}  {_relative(stack.template)}")
        click.echo(
            f"The stubs name the relay API {PLACEHOLDER_API_ID!r} as a placeholder; "
            "`pylive dev` deploys the debug stack first and gives them its id."
        )
        return
    from pylive.cdk.deploy import synth as synth_stage

    target = (out or config.root / "cdk.out").resolve()
    stacks = synth_stage(config, Console(), target)
    for stack in stacks:
        click.echo(f"{stack.stack_name}  {_relative(stack.template)}")


@cli.command()
@click.option("--stage", "-s", help=_STAGE_HELP)
@click.option(
    "--method",
    type=click.Choice(["change-set", "direct"]),
    default="change-set",
    show_default=True,
    help="How CloudFormation applies the changes: through a change set, or directly "
    "(faster; also what local AWS emulators support best).",
)
@click.option(
    "--concurrency", default=4, show_default=True, help="Stacks deployed at once (at least 1)."
)
def deploy(stage: str | None, method: str, concurrency: int) -> None:
    """Deploy the app to AWS for a stage, with its real code.

    Stacks are named <app>-<stage>-<StackId>; the environment is bootstrapped for the CDK
    when it is not yet. Credentials come from the environment or AWS_PROFILE;
    AWS_ENDPOINT_URL points every AWS call at another endpoint.
    """
    from pylive.cdk.deploy import DeployOptions
    from pylive.cdk.deploy import deploy as deploy_stage
    from pylive.config import load_config
    from pylive.console import Console

    config = load_config(stage=stage)
    options = DeployOptions(method=method, concurrency=max(1, concurrency))
    deploy_stage(config, Console(), options)


@cli.command()
@click.option("--stage", "-s", help=_STAGE_HELP)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def remove(stage: str | None, yes: bool) -> None:
    """Delete every stack of a stage from AWS (asks first unless --yes)."""
    from pylive.aws_account import AwsTarget
    from pylive.cdk.deploy import remove as remove_stage
    from pylive.config import load_config
    from pylive.console import Console
    from pylive.errors import UsageError

    config = load_config(stage=stage)
    if not yes and not sys.stdin.isatty():
        raise UsageError("remove asks for confirmation: run it in a terminal or pass --yes")

    def confirm(stacks: list[str], target: AwsTarget) -> bool:
        if yes:
            return True
        return _confirm(
            f"Delete {len(stacks)} stack(s) of stage {config.stage!r} ({', '.join(stacks)}) "
            f"from {target.describe()}?",
            default=False,
        )

    removed = remove_stage(config, Console(), confirm)
    if removed:
        click.echo(f"Removed stage {config.stage!r}: {', '.join(removed)}")


def _confirm(question: str, default: bool) -> bool:
    agreed = click.confirm(question, default=default)
    if not agreed:
        click.echo("Nothing removed.")
    return agreed


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


from pylive.vpn.cli import vpn  # noqa: E402  (the group registers its own commands)

cli.add_command(vpn)
