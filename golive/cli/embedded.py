"""``golive embedded status|stop``: the embedded PostgreSQL servers ``embedded://DIR`` targets (and the demo) started.

They keep running after golive exits, so the app (or ``psql``) can use the copy; these commands list them and
stop them (the data folder stays: the next ``embedded://DIR`` starts the server again).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from golive.cli import app
from golive.cli._common import echo, handle_errors

embedded_app = typer.Typer(help="The embedded PostgreSQL servers that embedded://DIR started: list, stop.",
                           no_args_is_help=True)
app.add_typer(embedded_app, name="embedded", rich_help_panel="Server")


def _running() -> list:
    from golive.dialects import all_dialects

    return [srv for d in all_dialects() for srv in d.running_servers()]


def _dialect(directory: Path):
    from golive.dialects import dialect_of
    from golive.urls import parse_url

    url = parse_url(f"embedded://{directory.resolve()}")
    return dialect_of(url), url


@embedded_app.command("status")
@handle_errors
def status_cmd(
    directory: Optional[Path] = typer.Argument(None, help="A data folder (default: list every one running).",
                                               show_default=False),
) -> None:
    """List the embedded PostgreSQL servers running (exit 1 when none, or when the one in DIR is not)."""
    running = _running()
    if directory is not None:
        running = [r for r in running if r.data_dir == directory.resolve()]
        if not running:
            echo(f"no embedded PostgreSQL running in {directory.resolve()}")
            raise typer.Exit(1)
    if not running:
        echo("no embedded PostgreSQL running")
        raise typer.Exit(1)
    for r in running:
        echo(f"running: {r.line()}")
    echo("stop one with: golive embedded stop DIR (or --all); the data stays in DIR")


@embedded_app.command("stop")
@handle_errors
def stop_cmd(
    directories: Optional[list[Path]] = typer.Argument(None, help="Data folders whose server to stop.",
                                                       show_default=False),
    all_: bool = typer.Option(False, "--all", help="Stop every embedded PostgreSQL running."),
) -> None:
    """Stop embedded PostgreSQL servers (fast shutdown: sessions end, committed data stays in DIR)."""
    from golive.errors import ConfigError

    if all_ and directories:
        raise ConfigError("give data folders or --all, not both")
    if not all_ and not directories:
        raise ConfigError("name the data folder (golive embedded stop DIR) or pass --all; "
                          "golive embedded status lists the running ones")
    targets = [r.data_dir for r in _running()] if all_ else list(directories or [])
    if all_ and not targets:
        echo("no embedded PostgreSQL running")
        return
    for d in targets:
        dialect, url = _dialect(d)
        stopped = dialect.stop_server(url)
        echo(f"stopped: {stopped.line()}" if stopped else f"not running: {url}")
