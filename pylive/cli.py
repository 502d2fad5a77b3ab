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
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except PyliveError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
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
    """


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option(
    "--template", "-t", default="starter", show_default=True, help="Which app to start from."
)
@click.option("--name", help="The app's name (default: the directory's name).")
def init(directory: Path, template: str, name: str | None) -> None:
    """Create a new app in DIRECTORY, ready for `pylive dev --local`."""
    from pylive.init import init_project

    created = init_project(directory, template=template, name=name)
    click.echo(f"Created {created} from the {template!r} template. Next:")
    click.echo(f"  cd {directory}\n  pylive dev --local")


@cli.command()
@click.option("--local", "local", is_flag=True, help="Run without AWS: the HTTP API on localhost.")
@click.option("--port", default=3000, show_default=True, help="Port of the local HTTP API.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--stage", help="Stage name (default: [tool.pylive] stage, else 'dev').")
@click.option(
    "--debug",
    is_flag=True,
    help="Let a debugger (debugpy, as VS Code uses) attach to the workers; one worker per "
    "function, timeouts raised to 15 minutes.",
)
@click.option("--debug-port", default=5678, show_default=True, help="First debugger port.")
@click.option("--debug-wait", is_flag=True, help="With --debug: wait for the debugger to attach.")
@click.option("--no-watch", is_flag=True, help="Do not reload on file changes.")
def dev(
    local: bool,
    port: int,
    host: str,
    stage: str | None,
    debug: bool,
    debug_port: int,
    debug_wait: bool,
    no_watch: bool,
) -> None:
    """Run the app with hot reload: every save is served by the new code at once."""
    from pylive.config import load_config
    from pylive.console import Console
    from pylive.dev import DevOptions, LocalDevSession, run_event_loop
    from pylive.errors import UsageError

    if not local:
        raise UsageError(
            "live development against AWS is not available yet; run `pylive dev --local`"
        )
    config = load_config(stage=stage)
    options = DevOptions(
        host=host,
        port=port,
        debug=debug or debug_wait,
        debug_port=debug_port,
        debug_wait=debug_wait,
        watch=not no_watch,
    )
    session = LocalDevSession(config, options, Console())
    run_event_loop(session.run)


@cli.command()
@click.argument("function")
@click.option("--event", "-e", help="The event, as JSON (default: {}).")
@click.option(
    "--event-file",
    "-f",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A file holding the event as JSON ('-' reads standard input).",
)
def invoke(function: str, event: str | None, event_file: Path | None) -> None:
    """Run FUNCTION once locally and print its result as JSON.

    On a function error the Lambda error JSON is printed and the exit code is 1.
    """
    from pylive.config import load_config
    from pylive.dev import run_event_loop
    from pylive.invoke import invoke_once, read_event

    payload = read_event(event, event_file)
    config = load_config()
    result = run_event_loop(lambda: invoke_once(config, function, payload))
    sys.stdout.buffer.write(result.body + b"\n")
    sys.stdout.flush()
    if not result.ok:
        sys.exit(1)
