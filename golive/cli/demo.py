"""``golive demo``: a sample app (SQLite + uploads) migrated end to end into embedded services."""

from __future__ import annotations

from pathlib import Path

import typer

from golive.cli import app
from golive.cli._common import echo, handle_errors, status


@app.command("demo")
@handle_errors
def demo(
    directory: Path = typer.Option(Path("demo"), "--dir", help="Where the sample app and the embedded services live."),
    users: int = typer.Option(500, "--users", min=1, help="Size of the sample app."),
) -> None:
    """Build a sample app and migrate it into an embedded PostgreSQL (pgserver), showing every step."""
    from golive import embedded, sample
    from golive.cli.db import run_flow, show_report
    from golive.config import MigrateOptions

    directory = directory.resolve()
    db = directory / "app.db"
    uploads = directory / "uploads"
    with status(f"Building the sample app in {directory}"):
        counts = sample.build(db, users=users, uploads=uploads)
    echo(f"  {sum(counts.values())} rows in {len(counts)} tables: "
         + ", ".join(f"{t} {n}" for t, n in counts.items()))
    with status("Starting the embedded PostgreSQL 16 (pgserver)"):
        target = embedded.start_postgres(directory / "pgdata", database="app")
    options = MigrateOptions(drop_existing=True, max_rejects=2, report=str(directory / "report.json"))
    echo(f"[bold]golive migrate db --source {db} --target {target.masked} --drop-existing --max-rejects 2[/]")
    rep = run_flow(f"sqlite:///{db}", target.raw, options)
    show_report(rep)
    psql = embedded.bin_dir() / "psql"
    echo("")
    echo("[bold]Where the data went[/]")
    echo(f"  PostgreSQL: {target.masked}")
    echo(f"  look at it: {psql} '{target.raw}' -c 'SELECT count(*) FROM images'")
    echo(f"  report:     {directory / 'report.json'}")
    if rep.get("rejects"):
        echo(f"  rejects:    {rep['rejects']} (the demo allows 2: --max-rejects 2)")
    raise typer.Exit(rep.get("exit_code", 1))
