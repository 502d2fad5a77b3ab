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


# Commands defined with their concern (each module imports only click at load time).
from pylive.session.cli import dev  # noqa: E402
from pylive.vpn.cli import vpn  # noqa: E402  (the group registers its own commands)

cli.add_command(dev)
cli.add_command(vpn)
