"""privpipe server: a local Prefect server, started once, that every flow command uses.

Each flow command otherwise starts Prefect's temporary server (seconds per command);
with ``privpipe server start`` running, ``sanitize``, ``train``, ``run``, ``demo`` and
``serve`` report to it instead, and say so in one stderr line. See ``flows/_server.py``
for where it keeps its state."""

from __future__ import annotations

from typing import Annotated

import typer

from flows.cli.app import app, echo_err

server_app = typer.Typer(
    help="A local Prefect server (127.0.0.1 only, owner-only home under ~/.privpipe) that "
    "flow commands use while it runs, instead of starting a temporary one each time.",
    no_args_is_help=True,
)
app.add_typer(server_app, name="server")


@server_app.command("start")
def server_start(
    port: Annotated[
        int,
        typer.Option("--port", min=0, max=65535, help="Port (0: 4200 when free, else any)."),
    ] = 0,
) -> None:
    """Start the server in the background and return once it answers; its UI shows the
    flow runs and privpipe's artifacts. Stop it with `privpipe server stop`."""
    from flows import _server

    state, started = _server.start(port)
    if not started:
        typer.echo(f"a Prefect server is already running at {state.url} (pid {state.pid})")
        return
    typer.echo(f"started Prefect server at {state.url} (pid {state.pid})")
    typer.echo(f"  UI: {state.ui_url}   log: {state.log}")
    echo_err("flow commands use it until `privpipe server stop`")


@server_app.command("stop")
def server_stop() -> None:
    """Stop the server by its PID (SIGTERM to its process group, SIGKILL after 10 s)."""
    from flows import _server

    state = _server.stop()
    if state is None:
        typer.echo("no privpipe Prefect server is running")
        return
    typer.echo(f"stopped the Prefect server (pid {state.pid})")


@server_app.command("status")
def server_status() -> None:
    """Say whether the server runs and where; exit status 1 when it does not."""
    from flows import _server

    state = _server.running()
    if state is None:
        typer.echo("no privpipe Prefect server is running (start one: privpipe server start)")
        raise typer.Exit(1)
    typer.echo(f"running at {state.url} (pid {state.pid}, since {state.started})")
    typer.echo(f"  UI: {state.ui_url}   home: {state.prefect_home}   log: {state.log}")
