"""``pylive dev``: its options, checked against the mode they belong to, become one
:class:`~pylive.session.options.DevOptions` for :class:`~pylive.session.dev.DevSession`."""

from __future__ import annotations

import click

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


@click.command()
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
