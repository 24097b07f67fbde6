"""``golive server start|stop|status``: a local Prefect server in the background, reused by later commands."""

from __future__ import annotations

import time
from typing import Optional

import typer

from golive.cli import server_app
from golive.cli._common import echo, handle_errors, note


@server_app.command("start")
@handle_errors
def start(
    port: Optional[int] = typer.Option(None, "--port", min=1, max=65535,
                                       help="Port on 127.0.0.1 (default 4200, or a free one when taken)."),
    timeout: float = typer.Option(180, "--timeout", min=5, help="Seconds to wait for the API to answer."),
) -> None:
    """Start a Prefect server in the background (or find the running one); later golive commands use it
    when PREFECT_API_URL is not set."""
    from golive import server

    if not server.read_state():
        note("Starting a Prefect server in the background (the first start on a machine takes 10-30 s) ...")
    state, started = server.start(port=port, timeout=timeout)
    if started:
        echo(f"[green]Prefect server started[/] in {state.start_seconds:.1f} s: UI {state.ui}, API {state.url} "
             f"(pid {state.pid}, log {state.log})")
    else:
        echo(f"Prefect server already running: UI {state.ui}, API {state.url} (pid {state.pid})")
    echo("golive commands without PREFECT_API_URL now report to it; for prefect's own CLI: "
         f"export PREFECT_API_URL={state.url}")


@server_app.command("stop")
@handle_errors
def stop() -> None:
    """Stop the server `golive server start` started."""
    from golive import server

    state = server.stop()
    echo(f"Prefect server at {state.ui} stopped (pid {state.pid})" if state else "no golive Prefect server running")


@server_app.command("status")
@handle_errors
def status() -> None:
    """Show the server `golive server start` started (exit 1 when none runs)."""
    from golive import server

    state = server.read_state()
    if state is None:
        echo("no golive Prefect server running (start one with: golive server start)")
        raise typer.Exit(1)
    age = time.time() - state.started_at
    up = "answers" if server.healthy(state.url) else (
        f"is starting ({age:.0f} s so far)" if age < server.STARTING_SECONDS else "[red]does not answer[/]")
    echo(f"Prefect server {up}: UI {state.ui}, API {state.url}, pid {state.pid}, "
         f"up {age / 60:.0f} min, log {state.log}")
    raise typer.Exit(0 if up == "answers" else 1)
